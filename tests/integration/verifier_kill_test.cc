// Durability under SIGKILL: the real vigil-verifier binary, under a steady load of Attest
// streams from several nodes, is killed with SIGKILL at varied moments and restarted on the
// same --db, again and again. Every verdict a node saw acknowledged must be in the store
// afterwards, and so must the policy stored before the first kill.

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "tests/testing/attest_load_client.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/killable_verifier.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/reserved_port.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/store/sqlite_store.h"
#include "vigil/v1/attestation.grpc.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil {
namespace {

using testing::TestPki;

constexpr int kNodes = 4;
constexpr int kKills = 10;
constexpr char kPolicyName[] = "baseline";

std::string NodeId(int i) { return absl::StrCat(std::string(62, 'c'), "0", i); }

class VerifierKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("verifier-kill");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
    absl::StatusOr<testing::ReservedPort> port = testing::ReservedPort::Create();
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *std::move(port);
    db_ = dir_.path() + "/db/vigil.db";
  }

  // Starts vigil-verifier on the reserved port and the test's --db; waits until it listens.
  void StartVerifier(bool with_policy) {
    if (verifier_ == nullptr) {
      verifier_ = std::make_unique<testing::KillableVerifier>(
          std::vector<std::string>{"--pki-dir", pki_->dir(), "--listen", port_.address(), "--db",
                                   db_, "--report-interval", "1s",
                                   // The load clients answer every challenge at once, far above
                                   // a real node's rate: this test is about durability, not the
                                   // per-node rate limit.
                                   "--evidence-rate", "0"},
          dir_.path() + "/verifier.log", port_.port());
    }
    std::vector<std::string> extra;
    if (with_policy) {
      extra = {"--policy", vigil::testing::SourceDir() + "/deploy/policies/baseline.yaml"};
    }
    absl::Status started = verifier_->Start(extra);
    ASSERT_TRUE(started.ok()) << started;
  }

  size_t TotalAcknowledged() const {
    size_t n = 0;
    for (const auto& c : clients_) n += c->acknowledged();
    return n;
  }

  // Waits until the clients together saw more than `n` acknowledgements.
  void AwaitAcknowledgedBeyond(size_t n) {
    absl::Status st = verifier_->AwaitWhileRunning([&] { return TotalAcknowledged() > n; },
                                                   absl::StrCat("no acknowledgement beyond ", n));
    ASSERT_TRUE(st.ok()) << st;
  }

  void KillVerifier() {
    absl::Status killed = verifier_->Kill();
    ASSERT_TRUE(killed.ok()) << killed;
  }

  std::string Log() const { return verifier_->LogTail(); }

  std::unique_ptr<TestPki> pki_;
  testing::TestTempDir dir_;
  testing::ReservedPort port_;
  std::string db_;
  std::unique_ptr<testing::KillableVerifier> verifier_;
  std::vector<std::unique_ptr<testing::AttestLoadClient>> clients_;
};

TEST_F(VerifierKillTest, NoAcknowledgedVerdictNorStoredPolicyIsLostToSigkill) {
  // The policy is given only at the first start: later starts find it in the store.
  ASSERT_NO_FATAL_FAILURE(StartVerifier(/*with_policy=*/true));
  for (int i = 0; i < kNodes; ++i) {
    absl::StatusOr<CertAndKey> cert = pki_->IssueNode(NodeId(i));
    ASSERT_TRUE(cert.ok()) << cert.status();
    clients_.push_back(std::make_unique<testing::AttestLoadClient>(
        NodeId(i), *cert, pki_->ca_cert_pem(), std::vector<std::string>{port_.address()}));
    clients_.back()->Start();
  }

  absl::BitGen gen;
  std::vector<size_t> acknowledged_by_round;
  for (int round = 0; round < kKills; ++round) {
    if (round > 0) {
      ASSERT_NO_FATAL_FAILURE(StartVerifier(/*with_policy=*/false));
    }
    // Ready once it acknowledged something; then let it run for a varied number of further
    // acknowledgements (none at all in some rounds) and kill it mid-stream.
    size_t before = TotalAcknowledged();
    ASSERT_NO_FATAL_FAILURE(AwaitAcknowledgedBeyond(before));
    size_t extra = absl::Uniform<size_t>(gen, 0, 3) == 0 ? 0 : absl::Uniform<size_t>(gen, 1, 60);
    ASSERT_NO_FATAL_FAILURE(AwaitAcknowledgedBeyond(before + extra));
    ASSERT_NO_FATAL_FAILURE(KillVerifier());
    acknowledged_by_round.push_back(TotalAcknowledged() - before);
  }

  // One more start, which must serve again; then the clients stop and this verifier is
  // killed too before the file is read.
  ASSERT_NO_FATAL_FAILURE(StartVerifier(/*with_policy=*/false));
  ASSERT_NO_FATAL_FAILURE(AwaitAcknowledgedBeyond(TotalAcknowledged()));
  for (auto& c : clients_) c->Stop();
  ASSERT_NO_FATAL_FAILURE(KillVerifier());

  for (const auto& c : clients_) {
    for (const std::string& p : c->problems()) ADD_FAILURE() << c->node_id() << ": " << p;
  }
  for (int round = 0; round < kKills; ++round) {
    EXPECT_GT(acknowledged_by_round[round], 0u) << "round " << round;
  }

  absl::StatusOr<std::unique_ptr<verifier::SqliteStore>> store = verifier::SqliteStore::Open(db_);
  ASSERT_TRUE(store.ok()) << store.status();
  size_t checked = 0;
  for (const auto& c : clients_) {
    absl::StatusOr<std::set<std::string>> digests =
        testing::StoredEvidenceDigests(**store, c->node_id());
    ASSERT_TRUE(digests.ok()) << digests.status();
    const std::set<std::string>& stored = *digests;
    std::vector<std::string> acked = c->acked();
    ASSERT_FALSE(acked.empty()) << c->node_id();
    size_t missing = 0;
    for (const std::string& sha : acked) {
      if (stored.count(sha) == 0) {
        ++missing;
        ADD_FAILURE() << c->node_id().substr(60) << ": acknowledged evidence " << sha
                      << " is not stored";
      }
    }
    EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged, " << stored.size()
                           << " stored";
    checked += acked.size();
  }
  RecordProperty("acknowledged_verdicts_checked", static_cast<int>(checked));

  absl::StatusOr<std::vector<v1::PolicyInfo>> policies = (*store)->ListPolicies();
  ASSERT_TRUE(policies.ok()) << policies.status();
  ASSERT_EQ(policies->size(), 1u);
  const v1::PolicyInfo& policy = (*policies)[0];
  EXPECT_EQ(policy.name(), kPolicyName);
  EXPECT_EQ(policy.revision(), 1u);
  EXPECT_EQ(policy.sha256(), HexEncode(Sha256(policy.yaml())));
  absl::StatusOr<verifier::AuditPage> audit = (*store)->ListAudit(1000, "");
  ASSERT_TRUE(audit.ok()) << audit.status();
  int puts = 0;
  for (const v1::AuditRecord& r : audit->records) {
    if (r.action() == "policy.put" && r.target() == absl::StrCat(kPolicyName, "@1")) ++puts;
  }
  EXPECT_EQ(puts, 1) << "the policy.put audit record of the first start";
}

}  // namespace
}  // namespace vigil
