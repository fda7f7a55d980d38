#include "node/agent/attest_client.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "tests/testing/temp_dir.h"
#include "vigil/v1/attestation.grpc.pb.h"

namespace vigil::node {
namespace {

// Tests wait for the stream to make progress; this bound only keeps a broken client from
// hanging the suite. No assertion depends on how fast anything happens.
constexpr absl::Duration kProgressBound = absl::Seconds(30);

// A verifier stand-in speaking the Attest protocol: a Challenge first, then for each
// Evidence an Acknowledgement (TRUST_UNVERIFIED, as the real verifier labels unquoted
// evidence) and the next Challenge. It records what it received.
class FakeVerifier final : public v1::Attestation::Service {
 public:
  // With `challenge_before_ack`, the next Challenge goes out before the Acknowledgement, so
  // a client that counted the acknowledgement already holds the challenge and expects
  // nothing more from the verifier.
  explicit FakeVerifier(uint32_t interval_ms, bool challenge_before_ack = false)
      : interval_ms_(interval_ms), challenge_before_ack_(challenge_before_ack) {}

  grpc::Status Attest(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::VerifierMessage, v1::NodeMessage>* stream) override {
    {
      absl::MutexLock lock(&mu_);
      ++streams_;
    }
    if (!stream->Write(Challenge())) return grpc::Status::OK;
    v1::NodeMessage m;
    while (stream->Read(&m)) {
      if (m.has_spool_batch()) {
        v1::VerifierMessage ack;
        ack.mutable_spool_ack()->set_sequence(m.spool_batch().sequence());
        {
          absl::MutexLock lock(&mu_);
          kinds_.push_back('b');
          batches_.push_back(m.spool_batch());
          ack.mutable_spool_ack()->set_accepted(!refuse_batches_);
        }
        if (!stream->Write(ack)) break;
        continue;
      }
      v1::RuntimeReport report;
      bool parsed = report.ParseFromString(m.evidence().payload());
      {
        absl::MutexLock lock(&mu_);
        received_.push_back({m.evidence(), report, parsed, issued_.back()});
        kinds_.push_back('e');
        if (break_before_ack_ > 0) {
          // As a verifier killed between the evidence and its acknowledgement.
          --break_before_ack_;
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "verifier went away");
        }
      }
      v1::VerifierMessage ack;
      ack.mutable_acknowledgement()->set_sequence(report.sequence());
      ack.mutable_acknowledgement()->mutable_verdict()->set_status(v1::TRUST_UNVERIFIED);
      ack.mutable_acknowledgement()->mutable_verdict()->add_reasons(v1::EVIDENCE_UNQUOTED);
      if (challenge_before_ack_) {
        if (!stream->Write(Challenge()) || !stream->Write(ack)) break;
      } else if (!stream->Write(ack) || !stream->Write(Challenge())) {
        break;
      }
    }
    absl::MutexLock lock(&mu_);
    if (!ctx->IsCancelled()) ++half_closed_by_node_;  // the node half-closed the stream
    return grpc::Status::OK;
  }

  struct Received {
    v1::Evidence evidence;
    v1::RuntimeReport report;
    bool parsed;
    std::string challenge_nonce;
  };

  // Waits until at least `n` evidences arrived; false if the bound passed.
  bool WaitForEvidence(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&] { return received_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kProgressBound);
  }
  bool WaitForStreamEnd(int n) {
    absl::MutexLock lock(&mu_);
    auto ended = [&] { return half_closed_by_node_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&ended), kProgressBound);
  }
  std::vector<Received> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  // Spool batches received, and the order of everything ('e' evidence, 'b' batch).
  std::vector<v1::SpoolBatch> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  std::string kinds() {
    absl::MutexLock lock(&mu_);
    return kinds_;
  }
  void RefuseBatches() {
    absl::MutexLock lock(&mu_);
    refuse_batches_ = true;
  }
  // Ends the stream, unacknowledged, at each of the next `n` evidences.
  void BreakBeforeAck(int n) {
    absl::MutexLock lock(&mu_);
    break_before_ack_ = n;
  }

 private:
  v1::VerifierMessage Challenge() {
    v1::VerifierMessage m;
    std::string nonce(32, '\0');
    absl::BitGen gen;
    for (char& c : nonce) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
    m.mutable_challenge()->set_nonce(nonce);
    m.mutable_challenge()->set_report_interval_ms(interval_ms_);
    m.mutable_challenge()->set_expires_unix_nano(absl::GetCurrentTimeNanos() + 60'000'000'000);
    absl::MutexLock lock(&mu_);
    issued_.push_back(nonce);
    return m;
  }

  const uint32_t interval_ms_;
  const bool challenge_before_ack_;
  absl::Mutex mu_;
  int streams_ = 0;
  int half_closed_by_node_ = 0;
  std::vector<std::string> issued_;
  std::vector<Received> received_;
  std::vector<v1::SpoolBatch> batches_;
  std::string kinds_;
  bool refuse_batches_ = false;
  int break_before_ack_ = 0;
};

// Seals like a node without a TPM and remembers each payload and nonce it was given.
class RecordingSealer final : public EvidenceSealer {
 public:
  absl::StatusOr<v1::Evidence> Seal(std::string payload, const v1::Challenge& challenge,
                                    uint64_t log_from_recnum) override {
    {
      absl::MutexLock lock(&mu_);
      sealed_.emplace_back(payload, challenge.nonce());
    }
    return inner_.Seal(std::move(payload), challenge, log_from_recnum);
  }
  std::vector<std::pair<std::string, std::string>> sealed() {
    absl::MutexLock lock(&mu_);
    return sealed_;
  }

 private:
  UnquotedSealer inner_;
  absl::Mutex mu_;
  std::vector<std::pair<std::string, std::string>> sealed_;
};

// Events on demand, for the early-report path. Like the BPF source, it calls the wake-up
// after queueing an event worth a report.
class FakeEventSource final : public EventSource {
 public:
  void Push(v1::RuntimeEvent e) {
    const bool worth = WorthAReport(e);
    {
      absl::MutexLock lock(&mu_);
      events_.push_back(std::move(e));
    }
    absl::MutexLock lock(&wake_mu_);
    if (worth && wake_) wake_();
  }
  void SetWakeup(std::function<void()> wake) override {
    absl::MutexLock lock(&wake_mu_);
    wake_ = std::move(wake);
  }
  void Drain(std::vector<v1::RuntimeEvent>* out) override {
    absl::MutexLock lock(&mu_);
    for (auto& e : events_) out->push_back(std::move(e));
    events_.clear();
  }
  v1::ProbeStatus Status() const override {
    v1::ProbeStatus s;
    s.add_active_hooks("tracepoint/syscalls/sys_enter_ptrace");
    (*s.mutable_dropped_events())["ringbuf_full"] = 3;
    return s;
  }
  std::vector<int> MonitoredPids() const override { return {}; }

 private:
  absl::Mutex mu_;
  std::vector<v1::RuntimeEvent> events_;
  absl::Mutex wake_mu_;
  std::function<void()> wake_;
};

class Server {
 public:
  Server(FakeVerifier* service, int port) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                       &port_);
    b.RegisterService(service);
    server_ = b.BuildAndStart();
  }
  ~Server() { Stop(); }
  void Stop() {
    if (server_ != nullptr) {
      // A deadline of now cancels the open stream, as a verifier going away would.
      server_->Shutdown(std::chrono::system_clock::now());
      server_->Wait();
      server_.reset();
    }
  }
  int port() const { return port_; }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

class AttestClientTest : public ::testing::Test {
 protected:
  void StartClient(int port, absl::Duration default_interval = absl::Seconds(10),
                   absl::Duration min_report_gap = absl::Milliseconds(10),
                   absl::Duration event_poll_interval = absl::Milliseconds(100)) {
    AttestClientOptions o;
    o.address = "127.0.0.1:" + std::to_string(port);
    o.fallback_addresses = fallback_addresses_;
    o.credentials = [] { return grpc::InsecureChannelCredentials(); };
    o.default_report_interval = default_interval;
    o.initial_backoff = absl::Milliseconds(50);
    o.max_backoff = absl::Milliseconds(200);
    o.min_report_gap = min_report_gap;
    o.event_poll_interval = event_poll_interval;
    info_.node_id = "ab12";
    info_.hostname = "test-host";
    builder_ = std::make_unique<ReportBuilder>(info_, &matcher_, &snapshotter_, &events_);
    if (spool_ != nullptr) {
      link_ = std::make_unique<SpoolLink>(spool_.get(), builder_.get(), nullptr, spool_window_);
    }
    client_ = std::make_unique<AttestClient>(o, builder_.get(), &sealer_, nullptr, link_.get());
    run_ = std::thread([this] { run_status_ = client_->Run(); });
  }
  void StopClient() {
    if (client_ == nullptr) return;
    client_->Shutdown();
    run_.join();
    client_stats_ = client_->stats();
    client_.reset();
  }
  void TearDown() override { StopClient(); }

  // Further verifiers the client is given (before StartClient).
  std::vector<std::string> fallback_addresses_;
  ProcessMatcher matcher_{{*ParseSelector("pid=" + std::to_string(getpid()))}};
  FileHashCache hashes_;
  Snapshotter snapshotter_{SnapshotOptions{}, &hashes_};
  FakeEventSource events_;
  RecordingSealer sealer_;
  NodeInfo info_;
  std::unique_ptr<ReportBuilder> builder_;
  std::unique_ptr<spool::Spool> spool_;  // set before StartClient to spool outages
  std::unique_ptr<SpoolLink> link_;
  absl::Duration spool_window_ = absl::Milliseconds(50);
  std::unique_ptr<AttestClient> client_;
  std::thread run_;
  absl::Status run_status_;
  AttestClient::Stats client_stats_;  // as StopClient left them
};

TEST_F(AttestClientTest, AnswersEachChallengeWithTheReportItSerializedOnce) {
  FakeVerifier verifier(/*interval_ms=*/20);
  Server server(&verifier, 0);
  StartClient(server.port());
  ASSERT_TRUE(verifier.WaitForEvidence(3));
  StopClient();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  auto got = verifier.received();
  auto sealed = sealer_.sealed();
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& r = got[i];
    ASSERT_TRUE(r.parsed);
    EXPECT_EQ(r.evidence.nonce(), r.challenge_nonce);
    EXPECT_EQ(r.report.sequence(), i + 1);
    EXPECT_EQ(r.report.node_id(), "ab12");
    EXPECT_EQ(r.report.hostname(), "test-host");
    // The bytes on the wire are exactly the bytes the sealer bound to the challenge.
    ASSERT_LT(i, sealed.size());
    EXPECT_TRUE(sealed[i].first == r.evidence.payload()) << "payload " << i << " differs";
    EXPECT_EQ(sealed[i].second, r.challenge_nonce);
    ASSERT_EQ(r.report.processes_size(), 1);
    EXPECT_EQ(r.report.processes(0).pid(), getpid());
    EXPECT_EQ(r.report.processes(0).matched_by(0), "pid=" + std::to_string(getpid()));
    EXPECT_EQ(r.report.probes().dropped_events().at("ringbuf_full"), 3u);
    EXPECT_FALSE(r.evidence.has_quote());
  }
}

TEST_F(AttestClientTest, CountsAcknowledgementsAndTheirVerdict) {
  FakeVerifier verifier(20);
  Server server(&verifier, 0);
  StartClient(server.port());
  ASSERT_TRUE(verifier.WaitForEvidence(3));
  // The third evidence was sent after the first two acknowledgements were received.
  EXPECT_GE(client_->stats().acks_received, 2u);
  EXPECT_EQ(client_->stats().last_status, v1::TRUST_UNVERIFIED);
  EXPECT_EQ(client_->stats().streams_opened, 1u);
}

TEST_F(AttestClientTest, ReportsAtOnceWhenEventsArriveInsteadOfWaitingForTheInterval) {
  // The verifier asks for a report every hour: only an event can bring the second one.
  FakeVerifier verifier(3'600'000);
  Server server(&verifier, 0);
  StartClient(server.port());
  ASSERT_TRUE(verifier.WaitForEvidence(1));
  v1::RuntimeEvent e;
  e.set_kind(v1::EVENT_KIND_PTRACE);
  e.set_pid(4242);
  e.set_return_value(-1);
  events_.Push(e);
  ASSERT_TRUE(verifier.WaitForEvidence(2));
  auto got = verifier.received();
  ASSERT_EQ(got[1].report.events_size(), 1);
  EXPECT_EQ(got[1].report.events(0).kind(), v1::EVENT_KIND_PTRACE);
  EXPECT_EQ(got[1].report.events(0).pid(), 4242);
  EXPECT_EQ(got[0].report.events_size(), 0);
}

v1::RuntimeEvent DeniedPtrace(int pid) {
  v1::RuntimeEvent e;
  e.set_kind(v1::EVENT_KIND_PTRACE);
  e.set_pid(pid);
  e.set_return_value(-1);
  return e;
}

// Waits until the client counted `n` acknowledgements; false if the bound passed.
bool AwaitAcks(const AttestClient& client, uint64_t n) {
  for (absl::Time limit = absl::Now() + kProgressBound; client.stats().acks_received < n;) {
    if (absl::Now() > limit) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

TEST_F(AttestClientTest, EventWakesTheClientWithoutWaitingForItsNextLook) {
  // Neither the interval nor a look at the event source comes within the hour, and once the
  // first acknowledgement is counted the verifier sends nothing more: only the source's
  // wake-up can bring the second report.
  FakeVerifier verifier(3'600'000, /*challenge_before_ack=*/true);
  Server server(&verifier, 0);
  StartClient(server.port(), absl::Hours(1), absl::Milliseconds(10), absl::Hours(1));
  ASSERT_TRUE(verifier.WaitForEvidence(1));
  ASSERT_TRUE(AwaitAcks(*client_, 1));
  events_.Push(DeniedPtrace(4242));
  ASSERT_TRUE(verifier.WaitForEvidence(2));
  auto got = verifier.received();
  ASSERT_EQ(got[1].report.events_size(), 1);
  EXPECT_EQ(got[1].report.events(0).pid(), 4242);
}

TEST_F(AttestClientTest, FirstEventAfterAQuietSpellGoesOutRightAfterAPeriodicReport) {
  // The gap between event-triggered reports is an hour, and the first report (periodic)
  // has just gone out: the gap counts from event-triggered reports only, so the first
  // event is reported at once.
  FakeVerifier verifier(3'600'000, /*challenge_before_ack=*/true);
  Server server(&verifier, 0);
  StartClient(server.port(), absl::Hours(1), absl::Hours(1), absl::Hours(1));
  ASSERT_TRUE(verifier.WaitForEvidence(1));
  ASSERT_TRUE(AwaitAcks(*client_, 1));
  events_.Push(DeniedPtrace(4343));
  ASSERT_TRUE(verifier.WaitForEvidence(2));
  auto got = verifier.received();
  ASSERT_EQ(got[1].report.events_size(), 1);
  EXPECT_EQ(got[1].report.events(0).pid(), 4343);
  EXPECT_EQ(sealer_.sealed().size(), 2u) << "one seal (and quote) per report";
}

TEST_F(AttestClientTest, ReconnectsToARestartedVerifierAndKeepsCounting) {
  FakeVerifier first(20);
  auto server = std::make_unique<Server>(&first, 0);
  int port = server->port();
  StartClient(port);
  ASSERT_TRUE(first.WaitForEvidence(2));
  server->Stop();
  FakeVerifier second(20);
  server = std::make_unique<Server>(&second, port);
  ASSERT_EQ(server->port(), port);
  ASSERT_TRUE(second.WaitForEvidence(2));
  auto before = first.received();
  auto after = second.received();
  EXPECT_GT(after[0].report.sequence(), before.back().report.sequence());
  EXPECT_EQ(after[0].evidence.nonce(), after[0].challenge_nonce);
  EXPECT_GE(client_->stats().streams_opened, 2u);
  // The server must stop before the verifier it serves goes out of scope.
  StopClient();
  server.reset();
}

TEST_F(AttestClientTest, KeepsRetryingWhileNoVerifierListensThenConnects) {
  // Reserve a port, close it, and start the client before anything listens there.
  int port;
  {
    FakeVerifier placeholder(20);
    Server s(&placeholder, 0);
    port = s.port();
  }
  StartClient(port);
  FakeVerifier late(20);
  Server server(&late, port);
  ASSERT_EQ(server.port(), port);
  ASSERT_TRUE(late.WaitForEvidence(1));
  EXPECT_GE(client_->stats().streams_opened, 1u);
}

TEST_F(AttestClientTest, MovesToTheNextAddressWhenOneRefusesConnections) {
  int dead_port;
  {
    FakeVerifier placeholder(20);
    Server s(&placeholder, 0);
    dead_port = s.port();
  }
  FakeVerifier live(20);
  Server server(&live, 0);
  fallback_addresses_ = {"127.0.0.1:" + std::to_string(server.port())};
  StartClient(dead_port);
  ASSERT_TRUE(live.WaitForEvidence(2));
  EXPECT_EQ(client_->stats().address, fallback_addresses_[0]);
}

TEST_F(AttestClientTest, FailsOverToTheSecondVerifierWhenTheFirstGoesAway) {
  FakeVerifier first(20);
  FakeVerifier second(20);
  auto first_server = std::make_unique<Server>(&first, 0);
  Server second_server(&second, 0);
  fallback_addresses_ = {"127.0.0.1:" + std::to_string(second_server.port())};
  StartClient(first_server->port());
  ASSERT_TRUE(first.WaitForEvidence(2));
  EXPECT_TRUE(second.received().empty()) << "the first address is used while it works";
  first_server->Stop();
  ASSERT_TRUE(second.WaitForEvidence(2));
  EXPECT_EQ(client_->stats().address, fallback_addresses_[0]);
  auto before = first.received();
  auto after = second.received();
  EXPECT_GT(after[0].report.sequence(), before.back().report.sequence());
  StopClient();
  first_server.reset();
}

TEST_F(AttestClientTest, ShutdownHalfClosesTheStreamAndReturnsOk) {
  FakeVerifier verifier(20);
  Server server(&verifier, 0);
  StartClient(server.port());
  ASSERT_TRUE(verifier.WaitForEvidence(1));
  StopClient();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  // The verifier's Read ended because the node half-closed, not because it was cancelled.
  EXPECT_TRUE(verifier.WaitForStreamEnd(1));
}

// A port nothing listens on (yet).
int FreePort() {
  FakeVerifier placeholder(20);
  Server s(&placeholder, 0);
  return s.port();
}

v1::RuntimeEvent PtraceEvent(int pid) {
  v1::RuntimeEvent e;
  e.set_pid(pid);
  e.set_kind(v1::EVENT_KIND_PTRACE);
  e.set_target_pid(1);
  return e;
}

TEST_F(AttestClientTest, SpoolsWhileNoVerifierListensThenSendsTheBacklogInOrder) {
  auto dir = testing::TestTempDir::Create("attest-spool");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto spool = spool::Spool::Open({dir->path() + "/spool", 1 << 20});
  ASSERT_TRUE(spool.ok()) << spool.status();
  spool_ = *std::move(spool);
  const int port = FreePort();
  StartClient(port);
  // Events during the outage: each must reach the verifier in some batch or report.
  const absl::Time deadline = absl::Now() + kProgressBound;
  for (int pid = 1000; pid < 1005; ++pid) {
    events_.Push(PtraceEvent(pid));
    const uint64_t before = client_->stats().batches_spooled;
    while (client_->stats().batches_spooled <= before) {
      ASSERT_LT(absl::Now(), deadline);
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  const std::vector<uint64_t> spooled = spool_->Sequences();
  ASSERT_GE(spooled.size(), 5u);

  FakeVerifier verifier(20);
  Server server(&verifier, port);
  ASSERT_EQ(server.port(), port);
  while (verifier.batches().size() < spooled.size()) {
    ASSERT_LT(absl::Now(), deadline) << verifier.kinds();
    absl::SleepFor(absl::Milliseconds(10));
  }
  // Batches written after `spooled` was read (the outage went on meanwhile) drain too.
  while (!spool_->Sequences().empty()) {
    ASSERT_LT(absl::Now(), deadline);
    absl::SleepFor(absl::Milliseconds(10));
  }
  StopClient();

  // The stream's first message is a report (it proves the log); the batches follow, oldest
  // first, each once.
  EXPECT_EQ(verifier.kinds().front(), 'e');
  std::vector<v1::SpoolBatch> batches = verifier.batches();
  std::set<int> pids;
  ASSERT_GE(batches.size(), spooled.size());
  for (size_t i = 0; i < batches.size(); ++i) {
    if (i < spooled.size()) {
      EXPECT_EQ(batches[i].sequence(), spooled[i]);
    }
    v1::RuntimeReport report;
    ASSERT_TRUE(report.ParseFromString(batches[i].payload()));
    for (const v1::RuntimeEvent& e : report.events()) pids.insert(e.pid());
  }
  // An event pushed while a batch was being built goes in the next batch or, once the
  // verifier is back, in a live report.
  for (const FakeVerifier::Received& r : verifier.received()) {
    for (const v1::RuntimeEvent& e : r.report.events()) pids.insert(e.pid());
  }
  EXPECT_EQ(pids, (std::set<int>{1000, 1001, 1002, 1003, 1004}));
  EXPECT_EQ(spool_->counters(), spool::SpoolCounters{});
}

TEST_F(AttestClientTest, StoppingDuringAnOutageSpoolsWhatWasObservedSinceTheLastBatch) {
  auto dir = testing::TestTempDir::Create("attest-spool");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto spool = spool::Spool::Open({dir->path() + "/spool", 1 << 20});
  ASSERT_TRUE(spool.ok()) << spool.status();
  spool_ = *std::move(spool);
  spool_window_ = absl::Hours(1);  // no batch is due before the stop
  StartClient(FreePort());
  const absl::Time deadline = absl::Now() + kProgressBound;
  while (client_->stats().streams_opened == 0) {
    ASSERT_LT(absl::Now(), deadline);
    absl::SleepFor(absl::Milliseconds(5));
  }
  events_.Push(PtraceEvent(4242));
  StopClient();
  ASSERT_EQ(spool_->size(), 1u);
  std::set<int> pids;
  for (uint64_t sequence : spool_->Sequences()) {
    auto batch = spool_->Read(sequence);
    ASSERT_TRUE(batch.ok()) << batch.status();
    v1::RuntimeReport report;
    ASSERT_TRUE(report.ParseFromString(batch->payload));
    for (const v1::RuntimeEvent& e : report.events()) pids.insert(e.pid());
  }
  EXPECT_TRUE(pids.contains(4242));
}

TEST_F(AttestClientTest, RefusedSpoolBatchIsSetAsideNotDeleted) {
  auto dir = testing::TestTempDir::Create("attest-spool");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto spool = spool::Spool::Open({dir->path() + "/spool", 1 << 20});
  ASSERT_TRUE(spool.ok()) << spool.status();
  spool_ = *std::move(spool);
  ASSERT_TRUE(spool_->Append(1, spool::kUnmeasured, 0, "not measured").ok());
  FakeVerifier verifier(20);
  verifier.RefuseBatches();
  Server server(&verifier, 0);
  StartClient(server.port());
  const absl::Time deadline = absl::Now() + kProgressBound;
  while (spool_->counters().refused_batches == 0) {
    ASSERT_LT(absl::Now(), deadline);
    absl::SleepFor(absl::Milliseconds(10));
  }
  StopClient();
  EXPECT_TRUE(spool_->Sequences().empty());
  EXPECT_TRUE(std::filesystem::exists(dir->path() + "/spool/refused/" + spool::BatchFileName(1)));
}

TEST_F(AttestClientTest, ReportUnacknowledgedWhenTheStreamBrokeIsSpooledAndDelivered) {
  auto dir = testing::TestTempDir::Create("attest-spool");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto spool = spool::Spool::Open({dir->path() + "/spool", 1 << 20});
  ASSERT_TRUE(spool.ok()) << spool.status();
  spool_ = *std::move(spool);
  spool_window_ = absl::Hours(1);  // no outage batch: only the unacknowledged report is spooled
  FakeVerifier verifier(20);
  verifier.BreakBeforeAck(1);
  Server server(&verifier, 0);
  events_.Push(PtraceEvent(5151));
  StartClient(server.port());
  const absl::Time deadline = absl::Now() + kProgressBound;
  while (verifier.batches().empty() || !spool_->Sequences().empty() ||
         client_->stats().acks_received < 3) {
    ASSERT_LT(absl::Now(), deadline) << verifier.kinds();
    absl::SleepFor(absl::Milliseconds(10));
  }
  StopClient();

  // The first report reached the verifier, which went away before acknowledging it: the
  // node sent the same bytes again as a spool batch on the next stream, and deleted the
  // batch once it was acknowledged. Acknowledged reports were not spooled.
  std::vector<FakeVerifier::Received> received = verifier.received();
  ASSERT_GE(received.size(), 2u);
  std::vector<v1::SpoolBatch> batches = verifier.batches();
  ASSERT_EQ(batches.size(), 1u) << verifier.kinds();
  EXPECT_EQ(batches[0].payload(), received[0].evidence.payload());
  std::set<int> pids;
  for (const v1::RuntimeEvent& e : received[0].report.events()) pids.insert(e.pid());
  EXPECT_TRUE(pids.contains(5151));
  EXPECT_EQ(client_stats_.unacknowledged_spooled, 1u);
  EXPECT_EQ(client_stats_.batches_spooled, 0u);
  EXPECT_EQ(spool_->counters(), spool::SpoolCounters{});
}

TEST(FullJitterBackoffTest, StaysWithinTheDoublingCeilingAndTheCap) {
  absl::BitGen gen;
  const absl::Duration initial = absl::Milliseconds(500), cap = absl::Seconds(30);
  for (int attempt = 0; attempt < 12; ++attempt) {
    absl::Duration ceiling = std::min(initial * (1 << attempt), cap);
    absl::Duration longest;
    for (int i = 0; i < 200; ++i) {
      absl::Duration d = FullJitterBackoff(attempt, initial, cap, gen);
      EXPECT_GE(d, absl::ZeroDuration());
      EXPECT_LE(d, ceiling);
      longest = std::max(longest, d);
    }
    // 200 uniform draws all below half the ceiling would be a broken generator.
    EXPECT_GT(longest, ceiling / 2) << attempt;
  }
  EXPECT_LE(FullJitterBackoff(1000, initial, cap, gen), cap);
}

TEST(NodeChannelCredentialsTest, RefusesMissingFilesNamingThem) {
  auto c = MakeNodeChannelCredentials("/nonexistent/ca.crt", "/nonexistent/n.crt", "/x.key");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/ca.crt"), std::string::npos);
  EXPECT_FALSE(MakeNodeChannelCredentials("", "", "").ok());
}

}  // namespace
}  // namespace vigil::node
