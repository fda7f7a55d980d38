// The appraisal pool on its own, and the Attest stream running appraisals on it: a node
// whose appraisal blocks holds up neither another node's verdict nor the pool's queue bound,
// and evidence beyond the queue waits on its stream instead of ending it.

#include "verifier/appraisal_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/attestation_service.h"
#include "verifier/evidence_appraiser.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

using testing::TestPki;
using testing::TestVerifier;
using testing::TestVerifierOptions;
using Stream = grpc::ClientReaderWriter<v1::NodeMessage, v1::VerifierMessage>;

TEST(AppraisalPoolTest, ZeroThreadsMeansOnePerCore) {
  AppraisalPool pool(0, 4);
  EXPECT_EQ(pool.threads(), std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(pool.queue_capacity(), 4u);
}

TEST(AppraisalPoolTest, ShutdownRunsEveryQueuedAndHeldTaskThenRefuses) {
  std::atomic<int> ran{0};
  AppraisalPool pool(2, 10);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(pool.Submit([&ran] { ++ran; }));
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 100);
  EXPECT_FALSE(pool.Submit([&ran] { ++ran; }));
  pool.Shutdown();  // idempotent
  EXPECT_EQ(ran.load(), 100);
  EXPECT_EQ(pool.held(), 0u);
}

// The only thread is blocked by the first task; returns once it is.
void Occupy(AppraisalPool& pool, absl::Notification& release) {
  absl::Notification started;
  ASSERT_TRUE(pool.Submit([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();
}

TEST(AppraisalPoolTest, HoldsTasksBeyondTheQueueAndRunsThemInArrivalOrder) {
  AppraisalPool pool(1, 2);
  absl::Notification release;
  Occupy(pool, release);
  std::mutex mu;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(pool.Submit([&, i] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
    }));
  }
  EXPECT_EQ(pool.held(), 3u);  // two queued, the rest held, none dropped
  release.Notify();
  pool.Shutdown();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(pool.held(), 0u);
}

TEST(AppraisalPoolTest, CompletionsRunBeforeQueuedTasks) {
  AppraisalPool pool(1, 4);
  absl::Notification release;
  Occupy(pool, release);
  std::mutex mu;
  std::vector<std::string> order;
  auto record = [&](std::string what) {
    return [&, what] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(what);
    };
  };
  ASSERT_TRUE(pool.Submit(record("task")));
  pool.RunCompletion(record("completion"));
  release.Notify();
  pool.Shutdown();
  EXPECT_EQ(order, (std::vector<std::string>{"completion", "task"}));
}

TEST(AppraisalPoolTest, ACompletionAfterShutdownRunsOnTheCallingThread) {
  AppraisalPool pool(1, 1);
  pool.Shutdown();
  std::thread::id ran_on;
  pool.RunCompletion([&ran_on] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

// Appraises every node at once, except `blocked_node`, whose appraisals wait until Release.
class BlockingAppraiser final : public EvidenceAppraiser {
 public:
  explicit BlockingAppraiser(std::string blocked_node) : blocked_node_(std::move(blocked_node)) {}

  v1::Verdict Appraise(const AppraisalInput& input) override {
    if (input.node_id == blocked_node_) {
      std::call_once(entered_once_, [this] { entered_.Notify(); });
      release_.WaitForNotification();
      blocked_returned_ = true;
    }
    v1::Verdict verdict;
    verdict.set_status(v1::TRUST_UNVERIFIED);
    return verdict;
  }

  void AwaitBlocked() { entered_.WaitForNotification(); }
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }
  bool blocked_returned() const { return blocked_returned_; }

 private:
  const std::string blocked_node_;
  std::once_flag entered_once_;
  absl::Notification entered_, release_;
  std::atomic<bool> blocked_returned_{false};
};

std::string Report(const std::string& node_id, uint64_t sequence) {
  v1::RuntimeReport report;
  report.set_node_id(node_id);
  report.set_sequence(sequence);
  return report.SerializeAsString();
}

class AppraisalOffTheStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    absl::StatusOr<CertAndKey> other = pki_->IssueNode(kOtherNode);
    ASSERT_TRUE(other.ok()) << other.status();
    other_ = *std::move(other);
  }

  void TearDown() override {
    appraiser_.Release();  // a failed assertion must not leave the shutdown waiting
    verifier_.reset();
  }

  void StartVerifier(size_t threads, size_t queue) {
    TestVerifierOptions options;
    options.appraiser = &appraiser_;
    options.attestation.appraisal_threads = threads;
    options.attestation.appraisal_queue = queue;
    absl::StatusOr<std::unique_ptr<TestVerifier>> v = TestVerifier::Start(*pki_, options);
    ASSERT_TRUE(v.ok()) << v.status();
    verifier_ = *std::move(v);
  }

  // An open stream for `identity` that has read its first challenge.
  struct Open {
    std::unique_ptr<v1::Attestation::Stub> stub;
    std::unique_ptr<grpc::ClientContext> ctx = std::make_unique<grpc::ClientContext>();
    std::unique_ptr<Stream> stream;
    std::string nonce;
  };
  Open Connect(const CertAndKey& identity) {
    Open o;
    o.stub = v1::Attestation::NewStub(verifier_->Channel(identity));
    o.ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    o.stream = o.stub->Attest(o.ctx.get());
    v1::VerifierMessage m;
    EXPECT_TRUE(o.stream->Read(&m));
    EXPECT_TRUE(m.has_challenge());
    o.nonce = m.challenge().nonce();
    return o;
  }
  static void Send(Open& o, const std::string& node_id) {
    v1::NodeMessage m;
    m.mutable_evidence()->set_nonce(o.nonce);
    m.mutable_evidence()->set_payload(Report(node_id, 1));
    EXPECT_TRUE(o.stream->Write(m));
  }
  static v1::Acknowledgement ReadAck(Open& o) {
    v1::VerifierMessage m;
    EXPECT_TRUE(o.stream->Read(&m));
    EXPECT_TRUE(m.has_acknowledgement()) << m.DebugString();
    return m.acknowledgement();
  }

  static constexpr char kOtherNode[] =
      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  BlockingAppraiser appraiser_{TestPki::kNodeId};
  std::unique_ptr<TestPki> pki_;
  CertAndKey other_;
  std::unique_ptr<TestVerifier> verifier_;
};

TEST_F(AppraisalOffTheStreamTest, ASlowNodeDoesNotDelayAnotherNodesVerdict) {
  StartVerifier(/*threads=*/2, /*queue=*/16);
  Open slow = Connect(pki_->node());
  Send(slow, TestPki::kNodeId);
  appraiser_.AwaitBlocked();  // the slow node's appraisal now occupies a pool thread

  Open fast = Connect(other_);
  Send(fast, kOtherNode);
  v1::Acknowledgement ack = ReadAck(fast);
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_UNVERIFIED);
  EXPECT_EQ(ack.sequence(), 1u);
  EXPECT_FALSE(appraiser_.blocked_returned()) << "the other node's verdict waited for it";

  appraiser_.Release();
  EXPECT_EQ(ReadAck(slow).verdict().status(), v1::TRUST_UNVERIFIED);
  slow.ctx->TryCancel();
  fast.ctx->TryCancel();
}

TEST_F(AppraisalOffTheStreamTest, ClosingWhileAppraisingFinishesTheStreamAfterTheAppraisal) {
  StartVerifier(/*threads=*/2, /*queue=*/16);
  Open slow = Connect(pki_->node());
  Send(slow, TestPki::kNodeId);
  appraiser_.AwaitBlocked();

  // Shutdown's first step. The appraisal holds the stream: it cannot finish (and its reactor
  // cannot go away) while a pool thread still works for it.
  verifier_->attestation().CloseStreams();
  EXPECT_EQ(verifier_->attestation().OpenStreams(), 1u);

  appraiser_.Release();
  // The verdict is recorded; the acknowledgement is dropped because the stream is closing.
  v1::VerifierMessage m;
  EXPECT_FALSE(slow.stream->Read(&m)) << m.DebugString();
  grpc::Status status = slow.stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  ASSERT_EQ(verifier_->recorded().records().size(), 1u);
  EXPECT_EQ(verifier_->recorded().records()[0].node_id, TestPki::kNodeId);
  verifier_.reset();  // the server and the pool shut down cleanly
}

TEST_F(AppraisalOffTheStreamTest, AFullQueueHoldsTheStreamUntilAPlaceFrees) {
  StartVerifier(/*threads=*/1, /*queue=*/1);
  Open slow = Connect(pki_->node());
  Send(slow, TestPki::kNodeId);
  appraiser_.AwaitBlocked();  // the only thread is busy

  // Two more streams send evidence: one takes the only queue slot, the other is held.
  Open b = Connect(pki_->node());
  Open c = Connect(other_);
  ASSERT_EQ(verifier_->attestation().OpenStreams(), 3u);
  Send(b, TestPki::kNodeId);
  Send(c, kOtherNode);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (verifier_->attestation().HeldAppraisals() != 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(verifier_->attestation().HeldAppraisals(), 1u);
  EXPECT_EQ(verifier_->attestation().OpenStreams(), 3u) << "a held stream must not end";
  EXPECT_FALSE(appraiser_.blocked_returned());

  // Once the thread frees, every stream's evidence is appraised and acknowledged in turn.
  appraiser_.Release();
  EXPECT_EQ(ReadAck(slow).verdict().status(), v1::TRUST_UNVERIFIED);
  for (Open* o : {&b, &c}) {
    v1::Acknowledgement ack = ReadAck(*o);
    EXPECT_EQ(ack.verdict().status(), v1::TRUST_UNVERIFIED);
    EXPECT_EQ(ack.sequence(), 1u);
    v1::VerifierMessage next;
    ASSERT_TRUE(o->stream->Read(&next));
    EXPECT_TRUE(next.has_challenge()) << next.DebugString();
  }
  EXPECT_EQ(verifier_->attestation().HeldAppraisals(), 0u);
  EXPECT_EQ(verifier_->recorded().records().size(), 3u);
  for (Open* o : {&slow, &b, &c}) o->ctx->TryCancel();
}

}  // namespace
}  // namespace vigil::verifier
