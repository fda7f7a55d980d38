// End to end under a reference policy: the real verifier started with
// deploy/policies/strict.yaml, the real node on swtpm with BPF probes, and the two demo agents.
// The hardened agent is affirmed on every rule; the naive one is contraindicated, each failed
// rule named with what was observed and the controls it evidences; the evidence's own trust
// (identity, measurements) stays affirmed beside it, and the verdict is signed.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/fabric_fixture.h"

namespace vigil {
namespace {

using testing::Fabric;

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
  options.verifier_args = {"--policy", VIGIL_SOURCE_DIR "/deploy/policies/strict.yaml"};
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
}

}  // namespace
}  // namespace vigil
