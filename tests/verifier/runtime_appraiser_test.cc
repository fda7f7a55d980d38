// The runtime stage of appraisal: genuine evidence judged against the reference policies,
// the evidence's own trust kept apart in the trust vector, revoked nodes refused, and every
// verdict signed as an EAR token that verifies against the verifier's JWKS.

#include "verifier/runtime_appraiser.h"

#include <gtest/gtest.h>

#include <atomic>

#include "common/ear_verify.h"
#include "common/policy/node_self.h"
#include "tests/common/policy/policy_test_util.h"
#include "tests/testing/temp_dir.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

using policy::testing::CompliantProcess;
using policy::testing::PolicyWithRules;

const char kNodeId[] = "1111111111111111111111111111111111111111111111111111111111111111";
const char kNnp[] = "{id: nnp, kind: no_new_privs, controls: {nist_800_53: [AC-6(10)]}}";

// Returns a fixed verdict and counts calls: the quote checks are tested elsewhere.
class FixedAppraiser final : public EvidenceAppraiser {
 public:
  explicit FixedAppraiser(v1::TrustStatus status, v1::AppraisalReason reason = {}) {
    verdict_.set_status(status);
    if (reason != v1::APPRAISAL_REASON_UNSPECIFIED) verdict_.add_reasons(reason);
  }
  v1::Verdict Appraise(const AppraisalInput& input) override {
    ++calls;
    given_report = input.report != nullptr ? input.report->SerializeAsString() : "";
    given_report_null = input.report == nullptr;
    return verdict_;
  }
  std::atomic<int> calls{0};
  // The report the last call was handed, serialized, and whether it was null.
  std::string given_report;
  bool given_report_null = true;

 private:
  v1::Verdict verdict_;
};

class RuntimeAppraiserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(policies_.Reset({PolicyWithRules({kNnp})}).ok());
    digest_ = policies_.Current()->bundle.sha256();
  }

  v1::Verdict Appraise(EvidenceAppraiser& inner, const v1::RuntimeReport& report,
                       RuntimeAppraiser::Options options) {
    v1::Evidence evidence;
    evidence.set_payload(report.SerializeAsString());
    RuntimeAppraiser appraiser(&inner, std::move(options));
    return appraiser.Appraise(AppraisalInput{kNodeId, nullptr, &evidence});
  }

  v1::RuntimeReport Report(bool no_new_privs) {
    v1::RuntimeReport report;
    report.set_node_id(kNodeId);
    report.set_sequence(7);
    report.set_policy_digest(digest_);
    v1::ProcessSnapshot* p = report.add_processes();
    *p = CompliantProcess();
    p->mutable_seccomp()->set_no_new_privs(no_new_privs);
    report.mutable_probes()->add_active_hooks("tracepoint/syscalls/sys_exit_ptrace");
    return report;
  }

  RuntimeAppraiser::Options WithPolicies() {
    RuntimeAppraiser::Options o;
    o.policies = &policies_;
    return o;
  }

  PolicySet policies_;
  std::string digest_;
};

TEST_F(RuntimeAppraiserTest, HandsTheInnerAppraiserThePayloadParsedOnce) {
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  const v1::RuntimeReport report = Report(true);
  v1::Verdict v = Appraise(inner, report, WithPolicies());
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  ASSERT_FALSE(inner.given_report_null);
  EXPECT_EQ(inner.given_report, report.SerializeAsString());

  // A payload that is not a RuntimeReport is left for the inner appraiser to refuse.
  v1::Evidence garbage;
  garbage.set_payload("\xff\xff\xff");
  RuntimeAppraiser appraiser(&inner, WithPolicies());
  appraiser.Appraise(AppraisalInput{kNodeId, nullptr, &garbage});
  EXPECT_EQ(inner.calls, 2);
  EXPECT_TRUE(inner.given_report_null);
}

TEST_F(RuntimeAppraiserTest, WithoutPoliciesTheVerdictIsTheEvidences) {
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  v1::RuntimeReport report = Report(false);
  report.clear_policy_digest();
  v1::Verdict v = Appraise(inner, report, {});
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(v.node_id(), kNodeId);
  EXPECT_EQ(v.report_sequence(), 7u);
  EXPECT_TRUE(v.workloads().empty());
  EXPECT_EQ(v.trust_vector().instance_identity(), 2);
  EXPECT_EQ(v.trust_vector().executables(), 2);
  EXPECT_EQ(v.trust_vector().hardware(), 2);
  EXPECT_EQ(v.trust_vector().configuration(), 0);
  EXPECT_EQ(v.trust_vector().sourced_data(), 2);
  EXPECT_TRUE(v.ear_token().empty());
}

TEST_F(RuntimeAppraiserTest, CompliantWorkloadAffirmsUnderItsBundle) {
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  v1::Verdict v = Appraise(inner, Report(true), WithPolicies());
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.detail();
  EXPECT_TRUE(v.reasons().empty());
  ASSERT_EQ(v.workloads_size(), 1);
  EXPECT_EQ(v.workloads(0).identity().name(), "agent");
  EXPECT_EQ(v.workloads(0).policy_id(), "t@3");
  ASSERT_EQ(v.rules_size(), 1);
  EXPECT_EQ(v.rules(0).rule_id(), "nnp");
  EXPECT_EQ(v.policy_digest(), digest_);
  ASSERT_EQ(v.policy_ids_size(), 1);
  EXPECT_EQ(v.policy_ids(0), "t@3");
  EXPECT_EQ(v.trust_vector().configuration(), 2);
}

TEST_F(RuntimeAppraiserTest, FailedRuleContraindicatesAndIsNamed) {
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  v1::Verdict v = Appraise(inner, Report(false), WithPolicies());
  EXPECT_EQ(v.status(), v1::TRUST_CONTRAINDICATED);
  ASSERT_EQ(v.reasons_size(), 1);
  EXPECT_EQ(v.reasons(0), v1::POLICY_VIOLATION);
  EXPECT_NE(v.detail().find("agent/nnp"), std::string::npos) << v.detail();
  ASSERT_EQ(v.rules_size(), 1);
  EXPECT_EQ(v.rules(0).status(), v1::TRUST_CONTRAINDICATED);
  EXPECT_FALSE(v.rules(0).controls().empty());
  // The evidence itself stays genuine: only the configuration claim is contraindicated.
  EXPECT_EQ(v.trust_vector().configuration(), 96);
  EXPECT_EQ(v.trust_vector().instance_identity(), 2);
  EXPECT_EQ(v.trust_vector().executables(), 2);
}

TEST_F(RuntimeAppraiserTest, NoSelectedWorkloadIsNone) {
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  v1::RuntimeReport report = Report(true);
  report.mutable_processes(0)->set_exe_path("/usr/bin/other");
  report.mutable_processes(0)->clear_matched_by();
  v1::Verdict v = Appraise(inner, report, WithPolicies());
  EXPECT_EQ(v.status(), v1::TRUST_NONE);
  EXPECT_TRUE(v.workloads().empty());
}

TEST_F(RuntimeAppraiserTest, BundleTheVerifierDoesNotHoldIsNotEvaluated) {
  // The binding check (QuoteAppraiser) passes only the node's own measured bundle here.
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  v1::RuntimeReport report = Report(false);
  report.set_policy_digest(std::string(64, 'e'));
  v1::Verdict v = Appraise(inner, report, WithPolicies());
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING);
  EXPECT_TRUE(v.workloads().empty());
  EXPECT_TRUE(v.policy_digest().empty());
  EXPECT_NE(v.detail().find("not appraised"), std::string::npos) << v.detail();
}

TEST_F(RuntimeAppraiserTest, RejectedEvidenceIsNotEvaluated) {
  FixedAppraiser inner(v1::TRUST_REJECTED, v1::AK_UNKNOWN);
  v1::Verdict v = Appraise(inner, Report(false), WithPolicies());
  EXPECT_EQ(v.status(), v1::TRUST_REJECTED);
  EXPECT_TRUE(v.workloads().empty());
  EXPECT_TRUE(v.rules().empty());
  EXPECT_EQ(v.trust_vector().instance_identity(), 96);
  EXPECT_EQ(v.trust_vector().configuration(), 0);
  EXPECT_EQ(v.node_id(), kNodeId);
}

TEST_F(RuntimeAppraiserTest, RevokedNodeIsRefusedBeforeTheQuoteIsChecked) {
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  RuntimeAppraiser::Options o = WithPolicies();
  o.is_revoked = [](const std::string& id) { return id == kNodeId; };
  v1::Verdict v = Appraise(inner, Report(true), o);
  EXPECT_EQ(v.status(), v1::TRUST_REJECTED);
  ASSERT_EQ(v.reasons_size(), 1);
  EXPECT_EQ(v.reasons(0), v1::NODE_REVOKED);
  EXPECT_EQ(inner.calls, 0);
}

TEST_F(RuntimeAppraiserTest, LostEventsAndUnsafeClockAreWarnings) {
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  v1::RuntimeReport report = Report(true);
  (*report.mutable_probes()->mutable_dropped_events())["ringbuf_full"] = 3;
  v1::Verdict v = Appraise(inner, report, WithPolicies());
  EXPECT_EQ(v.status(), v1::TRUST_WARNING);
  EXPECT_EQ(v.trust_vector().sourced_data(), 32);
  EXPECT_NE(v.detail().find("lost 3 events"), std::string::npos) << v.detail();

  FixedAppraiser unsafe(v1::TRUST_WARNING, v1::CLOCK_UNSAFE);
  v1::Verdict w = Appraise(unsafe, Report(true), WithPolicies());
  EXPECT_EQ(w.status(), v1::TRUST_WARNING);
  ASSERT_EQ(w.reasons_size(), 1);
  EXPECT_EQ(w.reasons(0), v1::CLOCK_UNSAFE);
}

TEST_F(RuntimeAppraiserTest, UnquotedEvidenceIsNeverAffirmed) {
  FixedAppraiser inner(v1::TRUST_UNVERIFIED);
  v1::Verdict v = Appraise(inner, Report(true), WithPolicies());
  EXPECT_EQ(v.status(), v1::TRUST_UNVERIFIED);
  EXPECT_EQ(v.trust_vector().instance_identity(), 0);
  EXPECT_EQ(v.trust_vector().hardware(), 0);
  v1::Verdict bad = Appraise(inner, Report(false), WithPolicies());
  EXPECT_EQ(bad.status(), v1::TRUST_CONTRAINDICATED);
}

TEST_F(RuntimeAppraiserTest, VerdictIsSignedAndVerifiesAgainstTheJwks) {
  absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("runtime-appraiser");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EarSignerConfig config;
  config.key_dir = dir->path() + "/keys";
  auto signer = EarSigner::Open(config);
  ASSERT_TRUE(signer.ok()) << signer.status();
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  RuntimeAppraiser::Options o = WithPolicies();
  o.signer = signer->get();
  v1::Verdict v = Appraise(inner, Report(false), o);
  ASSERT_FALSE(v.ear_token().empty());
  absl::StatusOr<nlohmann::json> claims = VerifyEarToken(v.ear_token(), (*signer)->Jwks().value());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ((*claims)["vigil.node-id"], kNodeId);
  EXPECT_EQ((*claims)["submods"]["agent"]["ear.status"], "contraindicated");
  EXPECT_EQ((*claims)["submods"]["vigil-node"]["ear.appraisal-policy-id"], "sha256:" + digest_);
}

// The node's own state as a node split by privilege reports it.
v1::NodeSelfState ProtectedNode() {
  v1::NodeSelfState self;
  self.set_privilege_separated(true);
  v1::NodeProcessState* main = self.mutable_main();
  main->set_pid(100);
  main->mutable_capabilities()->set_effective(policy::kNodeMainCapabilities);
  main->mutable_capabilities()->set_permitted(policy::kNodeMainCapabilities);
  main->mutable_capabilities()->set_bounding(policy::kNodeMainCapabilities);
  main->mutable_seccomp()->set_mode(2);
  main->mutable_seccomp()->set_filter_count(1);
  main->mutable_seccomp()->set_no_new_privs(true);
  v1::NodeProcessState* priv = self.mutable_privileged();
  priv->set_pid(101);
  priv->mutable_capabilities()->set_effective(policy::kNodePrivilegedCapabilities);
  priv->mutable_capabilities()->set_permitted(policy::kNodePrivilegedCapabilities);
  priv->mutable_capabilities()->set_bounding(policy::kNodePrivilegedCapabilities);
  priv->mutable_seccomp()->set_no_new_privs(true);
  return self;
}

TEST_F(RuntimeAppraiserTest, ProtectedNodeMeetsTheBuiltInRuleListedFirst) {
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  v1::RuntimeReport report = Report(true);
  *report.mutable_node_self() = ProtectedNode();
  RuntimeAppraiser::Options o = WithPolicies();
  o.require_node_self_protection = true;
  v1::Verdict v = Appraise(inner, report, o);
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.detail();
  ASSERT_EQ(v.rules_size(), 2);
  EXPECT_EQ(v.rules(0).rule_id(), policy::kNodeSelfRuleId);
  EXPECT_EQ(v.rules(0).kind(), policy::kNodeSelfRuleKind);
  EXPECT_EQ(v.rules(0).status(), v1::TRUST_AFFIRMING) << v.rules(0).reason();
  EXPECT_EQ(v.rules(0).pid(), 100);
  EXPECT_NE(
      std::find(v.rules(0).controls().begin(), v.rules(0).controls().end(), "NIST-800-53r5:AC-6"),
      v.rules(0).controls().end());
  EXPECT_EQ(v.rules(1).rule_id(), "nnp");
}

TEST_F(RuntimeAppraiserTest, NodeHoldingMoreThanItsSetIsAWarningUnlessRequired) {
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  v1::RuntimeReport report = Report(true);
  *report.mutable_node_self() = ProtectedNode();
  // CAP_SYS_ADMIN (21) left in the main process's bounding set.
  report.mutable_node_self()->mutable_main()->mutable_capabilities()->set_bounding(
      policy::kNodeMainCapabilities | policy::CapabilityBit(21));
  v1::Verdict warned = Appraise(inner, report, WithPolicies());
  EXPECT_EQ(warned.status(), v1::TRUST_WARNING);
  ASSERT_GE(warned.rules_size(), 1);
  EXPECT_EQ(warned.rules(0).status(), v1::TRUST_WARNING);
  EXPECT_NE(warned.rules(0).reason().find("main process bounding set holds CAP_SYS_ADMIN"),
            std::string::npos)
      << warned.rules(0).reason();
  EXPECT_NE(warned.detail().find(policy::kNodeSelfRuleId), std::string::npos);

  RuntimeAppraiser::Options o = WithPolicies();
  o.require_node_self_protection = true;
  v1::Verdict refused = Appraise(inner, report, o);
  EXPECT_EQ(refused.status(), v1::TRUST_CONTRAINDICATED);
  EXPECT_EQ(refused.trust_vector().configuration(), 96);
}

TEST_F(RuntimeAppraiserTest, EachBreachOfTheNodeSelfRuleIsNamed) {
  struct Breach {
    std::function<void(v1::NodeSelfState&)> apply;
    std::string reason;
  };
  const std::vector<Breach> breaches = {
      {[](v1::NodeSelfState& s) { s.clear_privileged(); }, "runs as one process"},
      {[](v1::NodeSelfState& s) { s.mutable_main()->mutable_seccomp()->set_mode(0); },
       "main process has no seccomp filter"},
      {[](v1::NodeSelfState& s) { s.mutable_main()->mutable_seccomp()->set_no_new_privs(false); },
       "main process lacks no_new_privs"},
      {[](v1::NodeSelfState& s) {
         s.mutable_main()->mutable_capabilities()->set_ambient(policy::CapabilityBit(39));
       },
       "main process ambient set holds CAP_BPF"},
      {[](v1::NodeSelfState& s) {
         s.mutable_privileged()->mutable_capabilities()->set_effective(policy::CapabilityBit(1));
       },
       "privileged process effective set holds CAP_DAC_OVERRIDE"},
      {[](v1::NodeSelfState& s) {
         s.mutable_privileged()->mutable_seccomp()->set_no_new_privs(false);
       },
       "privileged process lacks no_new_privs"},
      {[](v1::NodeSelfState& s) { s.mutable_main()->set_read_error("gone"); },
       "main process state unreadable: gone"},
  };
  for (const Breach& b : breaches) {
    v1::RuntimeReport report;
    *report.mutable_node_self() = ProtectedNode();
    b.apply(*report.mutable_node_self());
    v1::RuleOutcome o = policy::EvaluateNodeSelf(report, v1::TRUST_CONTRAINDICATED);
    EXPECT_EQ(o.status(), v1::TRUST_CONTRAINDICATED) << b.reason;
    EXPECT_NE(o.reason().find(b.reason), std::string::npos) << o.reason();
  }
}

TEST_F(RuntimeAppraiserTest, ReportWithoutNodeStateIsAppraisedAsBeforeUnlessRequired) {
  FixedAppraiser inner(v1::TRUST_AFFIRMING);
  v1::Verdict as_before = Appraise(inner, Report(true), WithPolicies());
  EXPECT_EQ(as_before.status(), v1::TRUST_AFFIRMING);
  ASSERT_EQ(as_before.rules_size(), 1);
  EXPECT_EQ(as_before.rules(0).rule_id(), "nnp");

  RuntimeAppraiser::Options o = WithPolicies();
  o.require_node_self_protection = true;
  v1::Verdict required = Appraise(inner, Report(true), o);
  EXPECT_EQ(required.status(), v1::TRUST_CONTRAINDICATED);
  ASSERT_EQ(required.rules_size(), 2);
  EXPECT_EQ(required.rules(0).rule_id(), policy::kNodeSelfRuleId);
  EXPECT_EQ(required.rules(0).observed(), "not reported");
  // Without policies too: the rule is the node's, not a workload's.
  RuntimeAppraiser::Options required_only;
  required_only.require_node_self_protection = true;
  v1::Verdict no_policies = Appraise(inner, Report(true), required_only);
  EXPECT_EQ(no_policies.status(), v1::TRUST_CONTRAINDICATED);
}

}  // namespace
}  // namespace vigil::verifier
