// Pending enrollments shared by replicas in PostgreSQL: two Enrollers, each with its own
// registry on one database (two replicas), and a node played by tpm2-tools on a swtpm. An
// enrollment begun on one completes on the other, at most once, never after it expired, and
// the bounds on pending enrollments hold across the replicas.
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/pki.h"
#include "tests/testing/manual_clock.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/tpm2_tools_node.h"
#include "verifier/enrollment_service.h"
#include "verifier/pending_enrollments.h"

namespace vigil::verifier {
namespace {

using ::vigil::testing::PostgresServer;
using ::vigil::testing::ToolsNode;

class PendingEnrollmentsPostgresTest : public ::testing::Test {
 protected:
  struct Replica {
    std::unique_ptr<NodeRegistry> registry;
    std::unique_ptr<EkVerifier> ek_verifier;
    std::unique_ptr<Enroller> enroller;
  };

  void SetUp() override {
    absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<std::string> url = (*server)->CreateDatabase("pending");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
    auto node = ToolsNode::Create("rsa");
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto ca = CreateCa("vigil.test", absl::Hours(1));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::move(*ca);
    auto csr = MakeKeyAndCsr("node");
    ASSERT_TRUE(csr.ok()) << csr.status();
    csr_ = *csr;
    a_ = Open();
    b_ = Open();
  }

  Replica Open(size_t max_pending = 8, size_t max_pending_per_ek = 4) {
    Replica r;
    auto registry = NodeRegistry::OpenPostgres(url_);
    EXPECT_TRUE(registry.ok()) << registry.status();
    if (!registry.ok()) return r;
    r.registry = *std::move(registry);
    auto ek = EkVerifier::Create({node_->tpm().ek_ca_path(), false}, r.registry.get());
    EXPECT_TRUE(ek.ok()) << ek.status();
    if (!ek.ok()) return r;
    r.ek_verifier = *std::move(ek);
    Enroller::Options options;
    options.max_pending = max_pending;
    options.max_pending_per_ek = max_pending_per_ek;
    options.clock = [this] { return clock_.Now(); };
    r.enroller = std::make_unique<Enroller>(&ca_, r.registry.get(), r.ek_verifier.get(), options);
    return r;
  }

  v1::BeginEnrollmentRequest Request() const { return node_->BeginRequest(csr_.csr_pem); }

  // The node's answer to `begin`: what CompleteEnrollment sends.
  v1::CompleteEnrollmentRequest Answer(const v1::BeginEnrollmentResponse& begin) {
    absl::StatusOr<v1::CompleteEnrollmentRequest> complete = node_->Answer(begin);
    EXPECT_TRUE(complete.ok()) << complete.status();
    return complete.ok() ? *complete : v1::CompleteEnrollmentRequest();
  }

  absl::StatusOr<int64_t> Query(const std::string& sql) const {
    return PostgresServer::QueryInt(url_, sql);
  }

  std::string url_;
  std::unique_ptr<ToolsNode> node_;
  CaMaterial ca_;
  KeyAndCsr csr_;
  testing::AtomicManualClock clock_;
  Replica a_;
  Replica b_;
};

TEST_F(PendingEnrollmentsPostgresTest, BegunOnOneReplicaCompletesOnTheOther) {
  ASSERT_NE(a_.enroller, nullptr);
  ASSERT_NE(b_.enroller, nullptr);
  auto begin = a_.enroller->Begin(Request());
  ASSERT_TRUE(begin.ok()) << begin.status();
  EXPECT_EQ(b_.enroller->pending(), 1u);
  v1::CompleteEnrollmentRequest complete = Answer(*begin);
  ASSERT_EQ(complete.activated_secret().size(), 32u);

  // The table holds the secret's SHA-256, never the secret.
  const std::string secret_hex = HexEncode(complete.activated_secret());
  const std::string digest_hex = HexEncode(Sha256(complete.activated_secret()));
  EXPECT_EQ(Query("SELECT COUNT(*) FROM pending_enrollments p WHERE strpos(p::text, '" +
                  secret_hex + "') > 0")
                .value(),
            0);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM pending_enrollments WHERE secret_sha256 = decode('" +
                  digest_hex + "', 'hex')")
                .value(),
            1);

  auto done = b_.enroller->Complete(complete);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->node_id(), begin->node_id());
  ASSERT_TRUE(VerifyCertificate(done->certificate_chain_pem(), ca_.cert_pem).ok());
  EXPECT_EQ(a_.enroller->pending(), 0u);
  // The binding is shared too: replica A finds it once it reads the node again.
  ASSERT_NE(b_.registry->Find(begin->node_id()), nullptr);
  a_.registry->Refresh(begin->node_id());
  auto bound = a_.registry->Find(begin->node_id());
  ASSERT_NE(bound, nullptr);
  EXPECT_EQ(bound->node().ak_public, node_->ak_public());
}

TEST_F(PendingEnrollmentsPostgresTest, ACompleteRacingOnBothReplicasSucceedsOnce) {
  ASSERT_NE(a_.enroller, nullptr);
  ASSERT_NE(b_.enroller, nullptr);
  for (int round = 0; round < 5; ++round) {
    auto begin = (round % 2 == 0 ? a_ : b_).enroller->Begin(Request());
    ASSERT_TRUE(begin.ok()) << begin.status();
    const v1::CompleteEnrollmentRequest complete = Answer(*begin);
    std::promise<void> go;
    std::shared_future<void> start = go.get_future().share();
    auto on = [&](Enroller* enroller) {
      return std::async(std::launch::async, [enroller, start, complete] {
        start.wait();
        return enroller->Complete(complete).status();
      });
    };
    auto on_a = on(a_.enroller.get());
    auto on_b = on(b_.enroller.get());
    go.set_value();
    const absl::Status from_a = on_a.get();
    const absl::Status from_b = on_b.get();
    EXPECT_NE(from_a.ok(), from_b.ok()) << "round " << round << ": " << from_a << " / " << from_b;
    const absl::Status& refused = from_a.ok() ? from_b : from_a;
    EXPECT_EQ(refused.code(), absl::StatusCode::kNotFound) << refused;
  }
  EXPECT_EQ(a_.enroller->pending(), 0u);
}

TEST_F(PendingEnrollmentsPostgresTest, AnExpiredEnrollmentIsRefusedOnEitherReplica) {
  ASSERT_NE(a_.enroller, nullptr);
  ASSERT_NE(b_.enroller, nullptr);
  auto first = a_.enroller->Begin(Request());
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = b_.enroller->Begin(Request());
  ASSERT_TRUE(second.ok()) << second.status();
  const v1::CompleteEnrollmentRequest first_answer = Answer(*first);
  const v1::CompleteEnrollmentRequest second_answer = Answer(*second);

  clock_.Advance(Enroller::Options().pending_ttl + absl::Seconds(1));
  auto on_b = b_.enroller->Complete(first_answer);
  EXPECT_EQ(on_b.status().code(), absl::StatusCode::kNotFound) << on_b.status();
  auto on_a = a_.enroller->Complete(second_answer);
  EXPECT_EQ(on_a.status().code(), absl::StatusCode::kNotFound) << on_a.status();
  EXPECT_EQ(a_.registry->Find(first->node_id()), nullptr);
  EXPECT_EQ(b_.registry->Find(first->node_id()), nullptr);

  // The next Begin on either replica sweeps what expired.
  auto third = a_.enroller->Begin(Request());
  ASSERT_TRUE(third.ok());
  clock_.Advance(Enroller::Options().pending_ttl + absl::Seconds(1));
  auto fourth = b_.enroller->Begin(Request());
  ASSERT_TRUE(fourth.ok());
  EXPECT_EQ(a_.enroller->pending(), 1u);
  EXPECT_TRUE(a_.enroller->Complete(Answer(*fourth)).ok());
}

TEST_F(PendingEnrollmentsPostgresTest, TheBoundPerEkHoldsAcrossReplicas) {
  a_ = Open(/*max_pending=*/8, /*max_pending_per_ek=*/2);
  b_ = Open(/*max_pending=*/8, /*max_pending_per_ek=*/2);
  ASSERT_NE(a_.enroller, nullptr);
  ASSERT_NE(b_.enroller, nullptr);
  std::vector<v1::BeginEnrollmentResponse> begun;
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Seconds(1));  // distinct expiries: "oldest" is well defined
    auto begin = (i % 2 == 0 ? a_ : b_).enroller->Begin(Request());
    ASSERT_TRUE(begin.ok()) << begin.status();
    begun.push_back(*begin);
  }
  EXPECT_EQ(b_.enroller->pending(), 2u);
  EXPECT_EQ(a_.enroller->evicted_per_ek(), 1u);  // the third Begin, on A, evicted the first
  EXPECT_EQ(b_.enroller->Complete(Answer(begun[0])).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(b_.enroller->Complete(Answer(begun[2])).ok());
}

TEST_F(PendingEnrollmentsPostgresTest, TheTotalBoundHoldsAcrossReplicas) {
  auto other = ToolsNode::Create("ecc384");  // the same TPM's other EK: another node id
  ASSERT_TRUE(other.ok()) << other.status();
  a_ = Open(/*max_pending=*/2, /*max_pending_per_ek=*/4);
  b_ = Open(/*max_pending=*/2, /*max_pending_per_ek=*/4);
  ASSERT_NE(a_.enroller, nullptr);
  ASSERT_NE(b_.enroller, nullptr);
  ASSERT_TRUE(a_.enroller->Begin(Request()).ok());
  ASSERT_TRUE(b_.enroller->Begin(Request()).ok());
  const v1::BeginEnrollmentRequest theirs = (*other)->BeginRequest(csr_.csr_pem);
  EXPECT_EQ(a_.enroller->Begin(theirs).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(b_.enroller->Begin(theirs).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(a_.enroller->refused_full() + b_.enroller->refused_full(), 2u);
}

TEST_F(PendingEnrollmentsPostgresTest, ReplicasAgreeThatAWrongAnswerVoidsTheEnrollment) {
  ASSERT_NE(a_.enroller, nullptr);
  ASSERT_NE(b_.enroller, nullptr);
  auto begin = a_.enroller->Begin(Request());
  ASSERT_TRUE(begin.ok()) << begin.status();
  v1::CompleteEnrollmentRequest right = Answer(*begin);
  v1::CompleteEnrollmentRequest wrong = right;
  std::string guess = right.activated_secret();
  guess[0] ^= 0x01;
  wrong.set_activated_secret(guess);
  EXPECT_EQ(b_.enroller->Complete(wrong).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(a_.enroller->Complete(right).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PendingEnrollmentsPostgresTest, ADatabaseOutageIsUnavailableAndThenPassesWithNothingLost) {
  ASSERT_NE(a_.enroller, nullptr);
  ASSERT_NE(b_.enroller, nullptr);
  auto begin = a_.enroller->Begin(Request());
  ASSERT_TRUE(begin.ok()) << begin.status();
  const v1::CompleteEnrollmentRequest complete = Answer(*begin);
  absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Stop().ok());
  auto during = a_.enroller->Begin(Request());
  auto completed_during = b_.enroller->Complete(complete);
  ASSERT_TRUE((*server)->Start().ok());
  EXPECT_EQ(during.status().code(), absl::StatusCode::kUnavailable) << during.status();
  EXPECT_EQ(completed_during.status().code(), absl::StatusCode::kUnavailable)
      << completed_during.status();
  // The enrollment begun before the outage is still there, and completes once (B's registry
  // connection, idle through the outage, is replaced on its first use).
  auto done = b_.enroller->Complete(complete);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(a_.enroller->Complete(complete).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace vigil::verifier
