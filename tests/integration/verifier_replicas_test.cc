// Two real vigil-verifier replicas sharing one real PostgreSQL (--store): a WatchVerdicts
// client of replica A sees what replica B appraised, and the EAR token B signed verifies with
// A's JWKS; when A is killed with SIGKILL under load its nodes (given both addresses, as
// `vigil-node run --verifier A --verifier B`) move to B, which serves them on; every verdict a
// node saw acknowledged is in the store. An enrollment begun at one replica completes at the
// other, once.

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ear_verify.h"
#include "tests/testing/attest_load_client.h"
#include "tests/testing/killable_verifier.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/reserved_port.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tpm2_tools_node.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/store/postgres_store.h"
#include "vigil/v1/enrollment.grpc.pb.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil {
namespace {

using testing::AttestLoadClient;
using testing::TestPki;

constexpr int kNodes = 4;

std::string NodeId(int i) { return absl::StrCat(std::string(62, 'e'), "0", i); }

class VerifierReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::PostgresServer*> server = testing::PostgresServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<std::string> url = (*server)->CreateDatabase("replicas");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("replicas");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<testing::ReservedPort> port = testing::ReservedPort::Create();
      ASSERT_TRUE(port.ok()) << port.status();
      ports_[i] = *std::move(port);
      replicas_[i] = std::make_unique<testing::KillableVerifier>(
          std::vector<std::string>{"--pki-dir", pki_->dir(), "--listen", ports_[i].address(),
                                   "--store", url_, "--report-interval", "1s",
                                   // Each replica's own signing keys.
                                   "--ear-key-dir", absl::StrCat(dir_.path(), "/ear-keys-", i),
                                   // The load clients answer every challenge at once: this test
                                   // is about replicas, not the per-node rate limit.
                                   "--evidence-rate", "0"},
          absl::StrCat(dir_.path(), "/replica-", i, ".log"), ports_[i].port());
    }
  }

  void TearDown() override {
    for (auto& c : clients_) c->Stop();
  }

  // A Fleet client of replica `i`.
  std::unique_ptr<v1::Fleet::Stub> Fleet(int i) {
    if (!watcher_cert_.has_value()) {
      absl::StatusOr<CertAndKey> cert = pki_->IssueClient("watcher", "orchestrator");
      EXPECT_TRUE(cert.ok()) << cert.status();
      if (!cert.ok()) return nullptr;
      watcher_cert_ = *std::move(cert);
    }
    return v1::Fleet::NewStub(testing::MakeChannel(
        ports_[i].address(), testing::ClientCredentials(pki_->ca_cert_pem(), *watcher_cert_)));
  }

  // Replica `i`'s JWKS.
  absl::StatusOr<std::string> Jwks(int i) {
    std::unique_ptr<v1::Fleet::Stub> fleet = Fleet(i);
    if (fleet == nullptr) return absl::InternalError("no client certificate");
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    v1::GetJwksResponse response;
    grpc::Status st = fleet->GetJwks(&ctx, v1::GetJwksRequest(), &response);
    if (!st.ok()) return absl::UnavailableError(st.error_message());
    return response.jwks_json();
  }

  std::string url_;
  std::unique_ptr<TestPki> pki_;
  testing::TestTempDir dir_;
  testing::ReservedPort ports_[2];
  std::unique_ptr<testing::KillableVerifier> replicas_[2];
  std::vector<std::unique_ptr<AttestLoadClient>> clients_;
  std::optional<CertAndKey> watcher_cert_;
};

TEST_F(VerifierReplicasTest, WatchSeesOtherReplicaAndNodesMoveWhenOneIsKilled) {
  // Both replicas start together on an empty database: one applies the migrations.
  absl::Status started_b;
  std::thread start_b([&] { started_b = replicas_[1]->Start(); });
  absl::Status started_a = replicas_[0]->Start();
  start_b.join();
  ASSERT_TRUE(started_a.ok()) << started_a << replicas_[0]->LogTail();
  ASSERT_TRUE(started_b.ok()) << started_b << replicas_[1]->LogTail();

  // A watcher on A, from now on.
  std::unique_ptr<v1::Fleet::Stub> fleet_a = Fleet(0);
  ASSERT_NE(fleet_a, nullptr);
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
  v1::WatchVerdictsRequest watch_request;
  auto watch = fleet_a->WatchVerdicts(&watch_ctx, watch_request);
  watch->WaitForInitialMetadata();

  // A node that only ever talks to B: its first verdict is a change, appraised on B.
  const std::string b_only = NodeId(9);
  absl::StatusOr<CertAndKey> b_only_cert = pki_->IssueNode(b_only);
  ASSERT_TRUE(b_only_cert.ok()) << b_only_cert.status();
  clients_.push_back(std::make_unique<AttestLoadClient>(
      b_only, *b_only_cert, pki_->ca_cert_pem(), std::vector<std::string>{ports_[1].address()}));
  clients_.back()->Start();
  v1::VerdictChange change;
  ASSERT_TRUE(watch->Read(&change)) << "the watch on A ended: " << replicas_[0]->LogTail();
  EXPECT_EQ(change.node_id(), b_only);
  EXPECT_EQ(change.status(), v1::TRUST_REJECTED);  // unquoted evidence
  // B signed that verdict; A's JWKS (every replica's keys) verifies it.
  ASSERT_FALSE(change.verdict().ear_token().empty());
  absl::StatusOr<std::string> jwks_a = Jwks(0);
  ASSERT_TRUE(jwks_a.ok()) << jwks_a.status();
  EXPECT_EQ(nlohmann::json::parse(*jwks_a)["keys"].size(), 2u) << *jwks_a;
  absl::StatusOr<nlohmann::json> claims = VerifyEarToken(change.verdict().ear_token(), *jwks_a);
  EXPECT_TRUE(claims.ok()) << claims.status();
  // B acknowledges once the verdict is durable, the same moment A's watcher is woken: the
  // acknowledgement may reach the node after the change reached the watcher.
  absl::Status acknowledged_by_b = replicas_[1]->AwaitWhileRunning(
      [&] { return clients_.back()->last_acknowledged_by() == ports_[1].address(); },
      "the node that talks to B only acknowledged by B");
  EXPECT_TRUE(acknowledged_by_b.ok()) << acknowledged_by_b;
  watch_ctx.TryCancel();
  while (watch->Read(&change)) {
  }
  watch->Finish();

  // Nodes that prefer A and fall back to B.
  for (int i = 0; i < kNodes; ++i) {
    absl::StatusOr<CertAndKey> cert = pki_->IssueNode(NodeId(i));
    ASSERT_TRUE(cert.ok()) << cert.status();
    clients_.push_back(std::make_unique<AttestLoadClient>(
        NodeId(i), *cert, pki_->ca_cert_pem(),
        std::vector<std::string>{ports_[0].address(), ports_[1].address()}));
    clients_.back()->Start();
  }
  auto all_acknowledged_beyond = [this](const std::vector<size_t>& counts) {
    for (size_t i = 1; i < clients_.size(); ++i) {
      if (clients_[i]->acknowledged() <= counts[i]) return false;
    }
    return true;
  };
  absl::Status loaded = replicas_[0]->AwaitWhileRunning(
      [&] { return all_acknowledged_beyond(std::vector<size_t>(clients_.size(), 20)); },
      "every node acknowledged on A");
  ASSERT_TRUE(loaded.ok()) << loaded;

  // SIGKILL A under load; its nodes move to B. Counted from after A is gone, and each node's
  // latest acknowledgement must be B's (one A sent just before dying may still be read).
  const absl::Time killed_at = absl::Now();
  ASSERT_TRUE(replicas_[0]->Kill().ok());
  std::vector<size_t> at_kill;
  for (const auto& c : clients_) at_kill.push_back(c->acknowledged());
  absl::Status moved = replicas_[1]->AwaitWhileRunning(
      [&] {
        for (size_t i = 1; i < clients_.size(); ++i) {
          if (clients_[i]->last_acknowledged_by() != ports_[1].address()) return false;
        }
        return all_acknowledged_beyond(at_kill);
      },
      "every node of A acknowledged on B");
  ASSERT_TRUE(moved.ok()) << moved;
  const absl::Duration move_time = absl::Now() - killed_at;
  RecordProperty("nodes_moved_after_ms", static_cast<int>(absl::ToInt64Milliseconds(move_time)));
  for (size_t i = 1; i < clients_.size(); ++i) {
    EXPECT_EQ(clients_[i]->last_acknowledged_by(), ports_[1].address()) << clients_[i]->node_id();
  }
  // More load on B, then everything stops and B is killed too before the store is read.
  std::vector<size_t> after_move;
  for (const auto& c : clients_) after_move.push_back(c->acknowledged() + 10);
  ASSERT_TRUE(replicas_[1]
                  ->AwaitWhileRunning([&] { return all_acknowledged_beyond(after_move); },
                                      "more acknowledgements on B")
                  .ok());
  for (auto& c : clients_) c->Stop();
  ASSERT_TRUE(replicas_[1]->Kill().ok());

  absl::StatusOr<std::unique_ptr<verifier::PostgresStore>> store =
      verifier::PostgresStore::Open(url_);
  ASSERT_TRUE(store.ok()) << store.status();
  size_t checked = 0;
  for (const auto& c : clients_) {
    for (const std::string& p : c->problems()) ADD_FAILURE() << c->node_id() << ": " << p;
    absl::StatusOr<std::set<std::string>> stored =
        testing::StoredEvidenceDigests(**store, c->node_id());
    ASSERT_TRUE(stored.ok()) << stored.status();
    std::vector<std::string> acked = c->acked();
    ASSERT_FALSE(acked.empty()) << c->node_id();
    size_t missing = 0;
    for (const std::string& sha : acked) {
      if (stored->count(sha) == 0) ++missing;
    }
    EXPECT_EQ(missing, 0u) << c->node_id() << ": of " << acked.size() << " acknowledged, "
                           << stored->size() << " stored";
    checked += acked.size();
  }
  RecordProperty("acknowledged_verdicts_checked", static_cast<int>(checked));
}

// BeginEnrollment at A, CompleteEnrollment at B, over the replicas' enrollment listeners, for
// a node played by tpm2-tools on a swtpm; a second Complete of the same enrollment, at A, is
// refused.
TEST_F(VerifierReplicasTest, EnrollmentBegunAtOneReplicaCompletesAtTheOther) {
  absl::StatusOr<std::unique_ptr<testing::ToolsNode>> node = testing::ToolsNode::Create("rsa");
  ASSERT_TRUE(node.ok()) << node.status();
  testing::ReservedPort enroll_ports[2];
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<testing::ReservedPort> port = testing::ReservedPort::Create();
    ASSERT_TRUE(port.ok()) << port.status();
    enroll_ports[i] = *std::move(port);
    absl::Status started = replicas_[i]->Start({"--enroll-listen", enroll_ports[i].address(),
                                                "--ek-ca-bundle", (*node)->tpm().ek_ca_path()});
    ASSERT_TRUE(started.ok()) << started << replicas_[i]->LogTail();
  }
  auto enrollment = [&](int i) {
    // Server-authenticated TLS: the node has no certificate yet.
    return v1::Enrollment::NewStub(testing::MakeChannel(
        enroll_ports[i].address(), testing::ClientCredentials(pki_->ca_cert_pem(), {})));
  };
  absl::StatusOr<KeyAndCsr> csr = MakeKeyAndCsr("node");
  ASSERT_TRUE(csr.ok()) << csr.status();
  v1::BeginEnrollmentResponse begin;
  {
    grpc::ClientContext ctx;
    grpc::Status st =
        enrollment(0)->BeginEnrollment(&ctx, (*node)->BeginRequest(csr->csr_pem), &begin);
    ASSERT_TRUE(st.ok()) << st.error_message() << replicas_[0]->LogTail();
  }
  absl::StatusOr<v1::CompleteEnrollmentRequest> answer = (*node)->Answer(begin);
  ASSERT_TRUE(answer.ok()) << answer.status();
  const v1::CompleteEnrollmentRequest& complete = *answer;
  v1::CompleteEnrollmentResponse done;
  {
    grpc::ClientContext ctx;
    grpc::Status st = enrollment(1)->CompleteEnrollment(&ctx, complete, &done);
    ASSERT_TRUE(st.ok()) << st.error_message() << replicas_[1]->LogTail();
  }
  EXPECT_EQ(done.node_id(), begin.node_id());
  EXPECT_TRUE(VerifyCertificate(done.certificate_chain_pem(), pki_->ca_cert_pem()).ok());
  {
    grpc::ClientContext ctx;
    v1::CompleteEnrollmentResponse again;
    grpc::Status st = enrollment(0)->CompleteEnrollment(&ctx, complete, &again);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  }
  // A knows the node B enrolled.
  std::unique_ptr<v1::Fleet::Stub> fleet_a = Fleet(0);
  ASSERT_NE(fleet_a, nullptr);
  grpc::ClientContext ctx;
  v1::ListNodesResponse nodes;
  ASSERT_TRUE(fleet_a->ListNodes(&ctx, v1::ListNodesRequest(), &nodes).ok());
  bool listed = false;
  for (const auto& n : nodes.nodes())
    listed = listed || (n.node_id() == begin.node_id() && n.enrolled());
  EXPECT_TRUE(listed) << nodes.DebugString();
}

}  // namespace
}  // namespace vigil
