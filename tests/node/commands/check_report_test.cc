// node/commands/check_report: the engine's outcomes folded into one row per rule and
// workload, the exit code, and the three renderings (table, JSON field names, JUnit XML
// escaping of what a workload controls).

#include "node/commands/check_report.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"

#include "nlohmann/json.hpp"

namespace vigil::node {
namespace {

v1::RuleOutcome Outcome(const std::string& id, const std::string& kind, int pid,
                        v1::TrustStatus status, const std::string& observed) {
  v1::RuleOutcome o;
  o.set_rule_id(id);
  o.set_kind(kind);
  o.set_pid(pid);
  o.set_status(status);
  o.set_reason(absl::StrCat(id, " reason"));
  o.set_observed(observed);
  o.set_expected(absl::StrCat(id, " expected"));
  o.add_controls("NIST-800-53r5:AC-6");
  return o;
}

v1::WorkloadVerdict Workload(std::vector<int> pids) {
  v1::WorkloadVerdict w;
  w.set_workload_id("w1");
  w.set_policy_id("strict@1");
  w.mutable_identity()->set_name("agent");
  for (int p : pids) w.add_pids(p);
  return w;
}

TEST(CheckReportTest, RowIsTheWorstFindingWithTheFailingObservations) {
  v1::WorkloadVerdict w = Workload({10, 11});
  *w.add_rules() = Outcome("caps", "capabilities", 10, v1::TRUST_AFFIRMING, "dropped");
  *w.add_rules() = Outcome("caps", "capabilities", 11, v1::TRUST_CONTRAINDICATED, "held");
  *w.add_rules() = Outcome("events", "events", 0, v1::TRUST_WARNING, "denied ptrace");
  *w.add_rules() = Outcome("nnp", "no_new_privs", 10, v1::TRUST_AFFIRMING, "NoNewPrivs: 1");
  const std::vector<CheckRow> rows = FoldVerdicts({w}, {});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].rule_id, "caps");
  EXPECT_EQ(rows[0].outcome, CheckOutcome::kFail);
  EXPECT_EQ(rows[0].observed, "pid 11: held");
  EXPECT_EQ(rows[0].findings.size(), 2u);
  EXPECT_EQ(rows[1].outcome, CheckOutcome::kWarning);
  EXPECT_EQ(rows[1].observed, "denied ptrace");
  EXPECT_EQ(rows[2].outcome, CheckOutcome::kPass);
  EXPECT_EQ(rows[2].observed, "pid 10: NoNewPrivs: 1");
  EXPECT_EQ(rows[2].workload, "agent");
  EXPECT_EQ(rows[2].policy_id, "strict@1");
}

TEST(CheckReportTest, UnobservedProcessMakesLiveRulesNotObservedButNotEventRules) {
  v1::WorkloadVerdict w = Workload({10});
  *w.add_rules() = Outcome("seccomp", "seccomp", 10, v1::TRUST_CONTRAINDICATED, "unknown");
  *w.add_rules() = Outcome("mem", "memory", 10, v1::TRUST_CONTRAINDICATED, "VmLck 0 B");
  *w.add_rules() = Outcome("userns", "user_namespaces", 10, v1::TRUST_CONTRAINDICATED, "x");
  // A memory rule with nothing to find on an empty snapshot passes in the engine: not here.
  *w.add_rules() = Outcome("mem-empty", "memory", 10, v1::TRUST_AFFIRMING, "VmLck 0 B");
  const std::vector<CheckRow> rows = FoldVerdicts({w}, {10});
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].outcome, CheckOutcome::kNotObserved);
  EXPECT_EQ(rows[0].observed, "not observed");
  EXPECT_EQ(rows[1].outcome, CheckOutcome::kNotObserved);
  EXPECT_EQ(rows[2].outcome, CheckOutcome::kFail) << "events were observed";
  EXPECT_EQ(rows[3].outcome, CheckOutcome::kNotObserved);
}

TEST(CheckReportTest, ExitCodes) {
  CheckResult r;
  FinishResult(r);
  EXPECT_EQ(r.exit_code, kCheckFailed) << "no rule applied is not a pass";
  EXPECT_FALSE(r.problem.empty());

  CheckResult pass;
  pass.rows.push_back(CheckRow{});
  FinishResult(pass);
  EXPECT_EQ(pass.exit_code, kCheckPassed);

  pass.command.emplace();
  pass.command->exit_code = 3;
  FinishResult(pass);
  EXPECT_EQ(pass.exit_code, kCheckCommandFailed);
  pass.command->ended_by_check = true;  // ended at the end of --duration: not its failure
  FinishResult(pass);
  EXPECT_EQ(pass.exit_code, kCheckPassed);

  pass.rows.back().outcome = CheckOutcome::kNotObserved;
  FinishResult(pass);
  EXPECT_EQ(pass.exit_code, kCheckFailed);
  pass.rows.back().outcome = CheckOutcome::kWarning;
  FinishResult(pass);
  EXPECT_EQ(pass.exit_code, kCheckFailed);
}

CheckResult Failing() {
  v1::WorkloadVerdict w = Workload({10});
  // Text a workload controls (a path it ran), already escaped by the engine but still
  // holding markup characters.
  *w.add_rules() = Outcome("progs", "interpreters", 10, v1::TRUST_CONTRAINDICATED,
                           "'/tmp/<x>&\"y\"' executed by pid 10");
  CheckResult r;
  r.policy_file = "strict.yaml";
  r.policy_ids = {"strict@1"};
  r.target_mode = "pid";
  r.target = "10";
  r.rows = FoldVerdicts({w}, {});
  FinishResult(r);
  return r;
}

TEST(CheckReportTest, JunitEscapesMarkupAndCountsFailures) {
  const std::string xml = RenderJunit(Failing());
  EXPECT_NE(xml.find("tests=\"1\" failures=\"1\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("&apos;/tmp/&lt;x&gt;&amp;&quot;y&quot;&apos;"), std::string::npos) << xml;
  EXPECT_EQ(xml.find("<x>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<failure type=\"fail\" message=\"progs reason\">"), std::string::npos) << xml;
}

TEST(CheckReportTest, NoRuleAppliedIsOneFailedTestcaseAndAnErrorIsOneInError) {
  CheckResult none;
  none.target = "/bin/echo hi";
  FinishResult(none);
  const std::string xml = RenderJunit(none);
  EXPECT_NE(xml.find("<testsuites name=\"vigil-node check\" tests=\"1\" failures=\"1\" "
                     "errors=\"0\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("name=\"policy-selects-checked-processes\""), std::string::npos) << xml;

  CheckResult error;
  error.error = "the probes could not be loaded: <EPERM>";
  FinishResult(error);
  EXPECT_EQ(error.exit_code, kCheckNotRun);
  const std::string err_xml = RenderJunit(error);
  EXPECT_NE(err_xml.find("tests=\"1\" failures=\"0\" errors=\"1\""), std::string::npos) << err_xml;
  EXPECT_NE(err_xml.find("<error type=\"not_run\" message=\"the probes could not be loaded: "
                         "&lt;EPERM&gt;\">"),
            std::string::npos)
      << err_xml;
  EXPECT_EQ(nlohmann::json::parse(RenderJson(error))["result"], "error");
}

TEST(CheckReportTest, JsonHasTheDocumentedFields) {
  const nlohmann::json j = nlohmann::json::parse(RenderJson(Failing()));
  for (const char* key : {"result", "exit_code", "attested", "policy", "target", "observation",
                          "rules", "summary", "problem"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["result"], "fail");
  EXPECT_EQ(j["exit_code"], 1);
  const nlohmann::json& rule = j["rules"][0];
  for (const char* key : {"rule_id", "kind", "policy_id", "workload", "workload_id", "pids",
                          "outcome", "observed", "expected", "controls", "findings"}) {
    EXPECT_TRUE(rule.contains(key)) << key;
  }
  EXPECT_EQ(rule["outcome"], "fail");
  EXPECT_EQ(rule["findings"][0]["reason"], "progs reason");
}

TEST(CheckReportTest, TableNamesRuleWorkloadOutcomeAndSaysItIsNotAttestation) {
  const std::string table = RenderTable(Failing());
  EXPECT_NE(table.find("progs"), std::string::npos);
  EXPECT_NE(table.find("agent (pid 10)"), std::string::npos);
  EXPECT_NE(table.find("    expected: progs expected"), std::string::npos);
  EXPECT_NE(table.find("FAIL: 1 rule(s): 0 passed, 1 failed"), std::string::npos) << table;
  EXPECT_NE(table.find("not attestation"), std::string::npos);
}

// A passing check with the verifier's answer `status` (acknowledged).
CheckResult PassingWithVerdict(v1::TrustStatus status) {
  CheckResult r;
  r.rows.push_back(CheckRow{});
  r.verifier.emplace();
  r.verifier->address = "127.0.0.1:7443";
  r.verifier->outcome = VerifierOutcome::kAcknowledged;
  r.verifier->verdict.set_status(status);
  r.verifier->verdict.set_node_id("n1");
  r.verifier->verdict.set_evidence_sha256(std::string(64, 'a'));
  r.verifier->verdict.set_report_sequence(1);
  r.verifier->verdict.add_policy_ids("strict@1");
  return r;
}

TEST(CheckReportTest, VerifierThatDoesNotAffirmMakesItOneAndUnreachableThree) {
  CheckResult affirmed = PassingWithVerdict(v1::TRUST_AFFIRMING);
  FinishResult(affirmed);
  EXPECT_EQ(affirmed.exit_code, kCheckPassed);
  affirmed.command.emplace();
  affirmed.command->exit_code = 3;
  FinishResult(affirmed);
  EXPECT_EQ(affirmed.exit_code, kCheckCommandFailed) << "the command's own failure still shows";

  for (v1::TrustStatus s : {v1::TRUST_WARNING, v1::TRUST_CONTRAINDICATED, v1::TRUST_REJECTED,
                            v1::TRUST_NONE, v1::TRUST_UNVERIFIED}) {
    CheckResult r = PassingWithVerdict(s);
    FinishResult(r);
    EXPECT_EQ(r.exit_code, kCheckFailed) << v1::TrustStatus_Name(s);
  }
  CheckResult refused = PassingWithVerdict(v1::TRUST_AFFIRMING);
  refused.verifier->outcome = VerifierOutcome::kRefused;
  FinishResult(refused);
  EXPECT_EQ(refused.exit_code, kCheckFailed) << "a refused stream is not an affirmation";

  CheckResult unreachable = PassingWithVerdict(v1::TRUST_AFFIRMING);
  unreachable.verifier->outcome = VerifierOutcome::kUnreachable;
  unreachable.rows.back().outcome = CheckOutcome::kFail;
  FinishResult(unreachable);
  EXPECT_EQ(unreachable.exit_code, kCheckNotRun) << "unreachable wins over a failed rule";
}

TEST(CheckReportTest, VerifierVerdictInJsonTableAndOneJunitTestcase) {
  CheckResult r = PassingWithVerdict(v1::TRUST_CONTRAINDICATED);
  v1::WorkloadVerdict* w = r.verifier->verdict.add_workloads();
  *w->add_rules() = Outcome("caps", "capabilities", 10, v1::TRUST_CONTRAINDICATED, "all");
  *w->add_rules() = Outcome("nnp", "no_new_privs", 10, v1::TRUST_AFFIRMING, "yes");
  FinishResult(r);
  const nlohmann::json j = nlohmann::json::parse(RenderJson(r));
  ASSERT_TRUE(j.contains("verifier")) << j.dump(2);
  EXPECT_EQ(j["verifier"]["status"], "CONTRAINDICATED");
  EXPECT_EQ(j["verifier"]["outcome"], "acknowledged");
  EXPECT_EQ(j["verifier"]["verdict_id"], std::string(64, 'a'));
  EXPECT_EQ(j["verifier"]["report_sequence"], 1);
  ASSERT_EQ(j["verifier"]["failing_rules"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["verifier"]["failing_rules"][0]["rule_id"], "caps");
  EXPECT_EQ(j["attested"], true);
  EXPECT_EQ(j["exit_code"], kCheckFailed);

  const std::string table = RenderTable(r);
  EXPECT_NE(table.find("verifier 127.0.0.1:7443: CONTRAINDICATED; node n1, report 1"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("    CONTRAINDICATED caps (pid 10): caps reason"), std::string::npos)
      << table;
  EXPECT_EQ(table.find("nnp (pid"), std::string::npos) << table;

  const std::string xml = RenderJunit(r);
  EXPECT_NE(xml.find("tests=\"2\" failures=\"1\" errors=\"0\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("name=\"verifier verdict\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<failure type=\"contraindicated\""), std::string::npos) << xml;

  CheckResult unreachable = PassingWithVerdict(v1::TRUST_AFFIRMING);
  unreachable.verifier->outcome = VerifierOutcome::kUnreachable;
  unreachable.verifier->error = "connection refused";
  FinishResult(unreachable);
  const nlohmann::json u = nlohmann::json::parse(RenderJson(unreachable));
  EXPECT_EQ(u["verifier"]["outcome"], "unreachable");
  EXPECT_EQ(u["verifier"]["status"], nullptr);
  EXPECT_EQ(u["verifier"]["error"], "connection refused");
  EXPECT_EQ(u["attested"], false);
  EXPECT_EQ(u["result"], "error");
  EXPECT_EQ(u["error"], "the verifier has nothing on record: connection refused");
  EXPECT_NE(RenderJunit(unreachable).find("<failure type=\"unreachable\""), std::string::npos);
}

}  // namespace
}  // namespace vigil::node
