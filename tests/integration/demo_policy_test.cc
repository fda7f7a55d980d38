// End to end under a reference policy: the real verifier started with
// deploy/policies/strict.yaml, the real node on swtpm with BPF probes, and the two demo agents.
// The hardened agent is affirmed on every rule; the naive one is contraindicated, each failed
// rule named with what was observed and the controls it evidences; the evidence's own trust
// (identity, measurements) stays affirmed beside it, and the verdict is signed.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/testing/build_paths.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/temp_dir.h"
#include "tests/verifier/results/ear_test_util.h"

namespace vigil {
namespace {

using testing::Fabric;

const std::string kResultsTestDir = vigil::testing::SourceDir() + "/tests/verifier/results/";

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc | std::ios::binary) << text;
}

grpc::Status Call(Fabric& f, auto method, const auto& request, auto* response) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  return (f.fleet().*method)(&ctx, request, response);
}

const v1::WorkloadVerdict* WorkloadWithPid(const v1::Verdict& verdict, pid_t pid) {
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    for (int p : w.pids()) {
      if (p == pid) return &w;
    }
  }
  return nullptr;
}

TEST(DemoPolicyTest, StrictPolicyAffirmsTheHardenedAgentAndContraindicatesTheNaiveOne) {
  Fabric::Options options;
  options.verifier_args = {"--policy",
                           vigil::testing::SourceDir() + "/deploy/policies/strict.yaml"};
  options.demo_agents = true;
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNode().ok());

  // Wait for a verdict that covers both agents (the first reports may precede their setup).
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_CONTRAINDICATED);
  ASSERT_TRUE(node_id.ok()) << node_id.status();
  v1::Verdict verdict;
  const v1::WorkloadVerdict* hardened = nullptr;
  const v1::WorkloadVerdict* naive = nullptr;
  for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
    absl::StatusOr<v1::GetLatestEvidenceResponse> latest = f.LatestEvidence(*node_id);
    ASSERT_TRUE(latest.ok()) << latest.status();
    verdict = latest->verdict();
    hardened = WorkloadWithPid(verdict, f.hardened_agent_pid());
    naive = WorkloadWithPid(verdict, f.naive_agent_pid());
    if (hardened != nullptr && naive != nullptr) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_NE(hardened, nullptr) << verdict.DebugString() << f.Logs();
  ASSERT_NE(naive, nullptr) << verdict.DebugString() << f.Logs();

  EXPECT_EQ(verdict.status(), v1::TRUST_CONTRAINDICATED);
  EXPECT_NE(std::find(verdict.reasons().begin(), verdict.reasons().end(), v1::POLICY_VIOLATION),
            verdict.reasons().end());
  ASSERT_EQ(verdict.policy_ids_size(), 1);
  EXPECT_EQ(verdict.policy_ids(0), "strict@1");
  EXPECT_EQ(verdict.policy_digest().size(), 64u);
  EXPECT_EQ(verdict.node_id(), *node_id);
  EXPECT_FALSE(verdict.ear_token().empty());
  // The evidence is genuine; only the configuration is contraindicated.
  EXPECT_EQ(verdict.trust_vector().instance_identity(), 2);
  EXPECT_EQ(verdict.trust_vector().executables(), 2);
  EXPECT_EQ(verdict.trust_vector().configuration(), 96);

  EXPECT_EQ(hardened->status(), v1::TRUST_AFFIRMING) << hardened->DebugString();
  EXPECT_EQ(hardened->policy_id(), "strict@1");
  EXPECT_GE(hardened->rules_size(), 8);
  for (const v1::RuleOutcome& rule : hardened->rules()) {
    EXPECT_EQ(rule.status(), v1::TRUST_AFFIRMING) << rule.DebugString();
  }
  EXPECT_NE(hardened->identity().exe_path().find("vigil-demo-hardened-agent"), std::string::npos);

  EXPECT_EQ(naive->status(), v1::TRUST_CONTRAINDICATED);
  std::set<std::string> failed;
  for (const v1::RuleOutcome& rule : naive->rules()) {
    if (rule.status() != v1::TRUST_CONTRAINDICATED) continue;
    failed.insert(rule.rule_id());
    EXPECT_FALSE(rule.controls().empty()) << rule.DebugString();
    EXPECT_FALSE(rule.observed().empty()) << rule.DebugString();
    EXPECT_FALSE(rule.expected().empty()) << rule.DebugString();
  }
  for (const char* id : {"seccomp-denies-process-access", "capabilities-dropped", "no-new-privs",
                         "secrets-locked-no-wx"}) {
    EXPECT_TRUE(failed.count(id) == 1) << id << " not failed; failed: " << naive->DebugString();
  }

  // The verdict's EAR token verifies with an independent JWT implementation (PyJWT) against
  // the JWKS the verifier publishes, and its submodules carry both workloads' statuses.
  v1::GetJwksResponse jwks;
  grpc::Status st = Call(f, &v1::Fleet::Stub::GetJwks, v1::GetJwksRequest(), &jwks);
  ASSERT_TRUE(st.ok()) << st.error_message();
  absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("demo-policy");
  ASSERT_TRUE(dir.ok()) << dir.status();
  WriteText(dir->path() + "/token", verdict.ear_token());
  WriteText(dir->path() + "/jwks.json", jwks.jwks_json());
  testing::CommandResult pyjwt = testing::RunCommand(
      absl::StrCat(testing::kSystemPython, " ", kResultsTestDir, "ear_pyjwt_check.py ", dir->path(),
                   "/token ", dir->path(), "/jwks.json"));
  ASSERT_EQ(pyjwt.exit_code, 0) << pyjwt.out;
  nlohmann::json claims = nlohmann::json::parse(pyjwt.out);
  EXPECT_EQ(claims["vigil.node-id"], *node_id);
  EXPECT_EQ(claims["submods"]["vigil-node"]["ear.status"], "contraindicated");
  std::set<std::string> workload_statuses;
  for (const auto& [key, submod] : claims["submods"].items()) {
    if (absl::StartsWith(key, "agent#")) {
      workload_statuses.insert(submod["ear.status"].get<std::string>());
      EXPECT_EQ(submod["ear.appraisal-policy-id"], "strict@1");
    }
  }
  EXPECT_TRUE(workload_statuses.count("affirming") == 1) << claims.dump(2);
  EXPECT_TRUE(workload_statuses.count("contraindicated") == 1) << claims.dump(2);

  // The OSCAL export of the run validates against the assessment-results schema and finds
  // the naive agent's controls not satisfied.
  v1::ExportAssessmentRequest range;
  range.set_since_unix_nano(absl::ToUnixNanos(absl::Now() - absl::Hours(1)));
  range.set_until_unix_nano(absl::ToUnixNanos(absl::Now() + absl::Minutes(1)));
  v1::ExportAssessmentResponse oscal;
  st = Call(f, &v1::Fleet::Stub::ExportAssessment, range, &oscal);
  ASSERT_TRUE(st.ok()) << st.error_message();
  WriteText(dir->path() + "/oscal.json", oscal.oscal_json());
  testing::CommandResult schema = testing::RunCommand(absl::StrCat(
      testing::kSystemPython, " ", kResultsTestDir, "oscal_schema_check.py ", kResultsTestDir,
      "testdata/oscal_assessment_results.schema.json ", dir->path(), "/oscal.json"));
  EXPECT_EQ(schema.exit_code, 0) << schema.out;
  nlohmann::json doc = nlohmann::json::parse(oscal.oscal_json());
  bool ac6_not_satisfied = false;
  for (const auto& finding : doc["assessment-results"]["results"][0]["findings"]) {
    if (finding["target"]["target-id"] == "ac-6_obj" &&
        finding["target"]["status"]["state"] == "not-satisfied") {
      ac6_not_satisfied = true;
    }
  }
  EXPECT_TRUE(ac6_not_satisfied) << oscal.oscal_json().substr(0, 4000);
}

// RevokeNode cuts a node off at once: its open stream is closed, its reconnection refused
// and no verdict is recorded for it until an operator approves it again.
TEST(DemoPolicyTest, RevokedNodeIsCutOffUntilApprovedAgain) {
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start({});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNode().ok());
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status();

  v1::RevokeNodeRequest revoke;
  revoke.set_node_id(*node_id);
  revoke.set_reason("lost laptop");
  v1::RevokeNodeResponse revoked;
  grpc::Status st = Call(f, &v1::Fleet::Stub::RevokeNode, revoke, &revoked);
  ASSERT_TRUE(st.ok()) << st.error_message();

  // The open stream ends PERMISSION_DENIED, and so does the node's next attempt.
  auto refusals = [&] {
    std::string log = f.NodeLog();
    size_t n = 0;
    for (size_t at = 0; (at = log.find("PERMISSION_DENIED", at)) != std::string::npos; ++at) ++n;
    return n;
  };
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (refusals() < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_GE(refusals(), 2u) << f.Logs();
  v1::GetNodeRequest get;
  get.set_node_id(*node_id);
  v1::GetNodeResponse node;
  st = Call(f, &v1::Fleet::Stub::GetNode, get, &node);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(node.node().revoked());
  EXPECT_FALSE(node.node().connected());
  const int64_t last_before_approval = node.node().latest_verdict().appraised_unix_nano();

  // Approved again, the node reconnects by itself and is affirmed on new evidence.
  v1::ApproveNodeRequest approve;
  approve.set_node_id(*node_id);
  v1::ApproveNodeResponse approved;
  st = Call(f, &v1::Fleet::Stub::ApproveNode, approve, &approved);
  ASSERT_TRUE(st.ok()) << st.error_message();
  absl::StatusOr<std::string> again = f.AwaitVerdict(v1::TRUST_AFFIRMING, last_before_approval);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *node_id);

  // The operator's actions are in the audit log.
  v1::ListAuditResponse audit;
  st = Call(f, &v1::Fleet::Stub::ListAudit, v1::ListAuditRequest(), &audit);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::set<std::string> actions;
  for (const v1::AuditRecord& r : audit.records()) actions.insert(r.action());
  EXPECT_TRUE(actions.count("node.revoke") == 1 && actions.count("node.approve") == 1)
      << audit.DebugString();
}

}  // namespace
}  // namespace vigil
