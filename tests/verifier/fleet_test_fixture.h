#pragma once

// A real vigil-verifier stack for Fleet API tests: a SQLite store and node registry in one
// file, a policy set, an EAR signer, the FleetService on a mutual-TLS server on port 0, and
// client certificates of every role.

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/fleet_service.h"
#include "verifier/node_registry.h"
#include "verifier/policy_set.h"
#include "verifier/results/ear_signer.h"
#include "verifier/store/sqlite_store.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil::verifier {

class FleetFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = testing::TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    auto tmp = ::vigil::testing::TestTempDir::Create("fleet");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    dir_ = tmp_.path();
    ASSERT_NO_FATAL_FAILURE(Start());
  }

  void TearDown() override { Stop(); }

  /// (Re)starts the stack over a fresh database with `store_options`; `adjust` may change
  /// the FleetService's options before it is made.
  void Start(SqliteStore::Options store_options = {},
             std::function<void(FleetServiceOptions&)> adjust = nullptr) {
    Stop();
    const std::string db = dir_ + "/vigil-" + std::to_string(++generation_) + ".db";
    auto store = SqliteStore::Open(db, store_options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto registry = NodeRegistry::Open(db);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    policies_ = std::make_unique<PolicySet>();
    EarSignerConfig signer_config;
    signer_config.key_dir = dir_ + "/ear-keys";
    signer_config.verifier_id.developer = "vigil.test";
    signer_config.verifier_id.build = "fleet-test";
    auto signer = EarSigner::Open(signer_config);
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = *std::move(signer);

    FleetServiceOptions options;
    options.trust_domain = testing::TestPki::kTrustDomain;
    options.store = store_.get();
    options.registry = registry_.get();
    options.policies = policies_.get();
    options.signer = signer_.get();
    options.on_revoked = [this](const std::string& node_id) {
      absl::MutexLock lock(&revoked_mu_);
      revoked_calls_.push_back(node_id);
    };
    if (adjust) adjust(options);
    fleet_ = std::make_unique<FleetService>(std::move(options));
    testing::TestVerifierOptions verifier_options;
    verifier_options.sink = store_.get();
    verifier_options.services = {fleet_.get()};
    auto verifier = testing::TestVerifier::Start(*pki_, verifier_options);
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
  }

  void Stop() {
    verifier_.reset();
    fleet_.reset();
    signer_.reset();
    policies_.reset();
    registry_.reset();
    store_.reset();
  }

  /// A Fleet stub presenting a client certificate of `role` ("operator", "auditor",
  /// "orchestrator"), or the node's certificate for "node".
  std::unique_ptr<v1::Fleet::Stub> Stub(const std::string& role) {
    if (role == "node") return v1::Fleet::NewStub(verifier_->Channel(pki_->node()));
    if (role == "operator") return v1::Fleet::NewStub(verifier_->Channel(pki_->client()));
    auto it = clients_.find(role);
    if (it == clients_.end()) {
      absl::StatusOr<CertAndKey> cert = pki_->IssueClient("fleet-" + role, role);
      EXPECT_TRUE(cert.ok()) << cert.status();
      it = clients_.emplace(role, cert.ok() ? *cert : CertAndKey{}).first;
    }
    return v1::Fleet::NewStub(verifier_->Channel(it->second));
  }

  /// Stores `verdict` for `node_id` (with `hostname` in its evidence) and waits until it is
  /// durable.
  void Record(const std::string& node_id, const v1::Verdict& verdict,
              const std::string& hostname = "host") {
    v1::RuntimeReport report;
    report.set_node_id(node_id);
    report.set_hostname(hostname);
    v1::Evidence evidence;
    evidence.set_payload(report.SerializeAsString());
    std::promise<absl::Status> durable;
    store_->RecordVerdict(node_id, evidence, verdict,
                          [&durable](absl::Status st) { durable.set_value(st); });
    absl::Status st = durable.get_future().get();
    ASSERT_TRUE(st.ok()) << st;
  }

  std::vector<std::string> RevokedCalls() {
    absl::MutexLock lock(&revoked_mu_);
    return revoked_calls_;
  }

  std::unique_ptr<testing::TestPki> pki_;
  ::vigil::testing::TestTempDir tmp_;
  std::string dir_;
  int generation_ = 0;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<NodeRegistry> registry_;
  std::unique_ptr<PolicySet> policies_;
  std::unique_ptr<EarSigner> signer_;
  std::unique_ptr<FleetService> fleet_;
  std::unique_ptr<testing::TestVerifier> verifier_;
  std::map<std::string, CertAndKey> clients_;

  absl::Mutex revoked_mu_;
  std::vector<std::string> revoked_calls_ ABSL_GUARDED_BY(revoked_mu_);
};

/// A node id of one repeated hex digit.
inline std::string FleetNodeId(char c) { return std::string(64, c); }

/// A verdict about `node_id` with `status`, appraised at `appraised`, and the given
/// workloads (name -> status). A workload that is not affirming fails the rule
/// "seccomp-denies-ptrace" evidencing NIST-800-53r5:AC-6(10) and SOC2:CC6.1.
inline v1::Verdict FleetVerdict(const std::string& node_id, v1::TrustStatus status,
                                absl::Time appraised,
                                const std::map<std::string, v1::TrustStatus>& workloads = {}) {
  v1::Verdict v;
  v.set_node_id(node_id);
  v.set_status(status);
  v.set_appraised_unix_nano(absl::ToUnixNanos(appraised));
  v.set_evidence_sha256(std::string(64, '5'));
  v.set_policy_digest(std::string(64, '6'));
  v.add_policy_ids("agents@3");
  v.set_ear_token("token-for-" + node_id.substr(0, 4));
  if (status == v1::TRUST_REJECTED) v.add_reasons(v1::NONCE_EXPIRED);
  for (const auto& [name, ws] : workloads) {
    v1::WorkloadVerdict* w = v.add_workloads();
    w->set_workload_id(std::string(63, '0') + name.substr(0, 1));
    w->mutable_identity()->set_name(name);
    w->mutable_identity()->set_exe_path("/usr/bin/" + name);
    w->set_status(ws);
    w->set_policy_id("agents@3");
    v1::RuleOutcome* r = w->add_rules();
    r->set_rule_id("seccomp-denies-ptrace");
    r->set_kind("seccomp");
    r->set_status(ws);
    r->set_workload_id(w->workload_id());
    r->add_controls("NIST-800-53r5:AC-6(10)");
    r->add_controls("SOC2:CC6.1");
    if (ws != v1::TRUST_AFFIRMING) r->set_reason("ptrace is allowed by the seccomp filter");
    *v.add_rules() = *r;
  }
  return v;
}

}  // namespace vigil::verifier
