#include "node/commands/check_report.h"

#include <string.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/escape.h"
#include "nlohmann/json.hpp"

namespace vigil::node {
namespace {

int Severity(CheckOutcome o) {
  switch (o) {
    case CheckOutcome::kPass:
      return 0;
    case CheckOutcome::kWarning:
      return 1;
    case CheckOutcome::kNotObserved:
      return 2;
    case CheckOutcome::kFail:
      return 3;
  }
  return 3;
}

CheckOutcome FromStatus(v1::TrustStatus status) {
  switch (status) {
    case v1::TRUST_AFFIRMING:
      return CheckOutcome::kPass;
    case v1::TRUST_WARNING:
      return CheckOutcome::kWarning;
    default:
      return CheckOutcome::kFail;
  }
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
}

std::string CommandLine(const CommandResult& c) {
  if (c.exit_code.has_value()) return absl::StrCat("exited with code ", *c.exit_code);
  if (c.signal.has_value()) return absl::StrCat("killed by ", SignalName(*c.signal));
  return "still running";
}

std::string CommandSummary(const CommandResult& c) {
  return absl::StrCat("command: pid ", c.pid, " ", CommandLine(c),
                      c.ended_by_check ? " (ended by the check at the end of observation)"
                      : c.failed()     ? " (a failure of the command itself)"
                                       : "");
}

struct Counts {
  int passed = 0, warnings = 0, failed = 0, not_observed = 0;
};
Counts CountRows(const std::vector<CheckRow>& rows) {
  Counts c;
  for (const CheckRow& r : rows) {
    switch (r.outcome) {
      case CheckOutcome::kPass:
        ++c.passed;
        break;
      case CheckOutcome::kWarning:
        ++c.warnings;
        break;
      case CheckOutcome::kFail:
        ++c.failed;
        break;
      case CheckOutcome::kNotObserved:
        ++c.not_observed;
        break;
    }
  }
  return c;
}

}  // namespace

const char* CheckOutcomeName(CheckOutcome outcome) {
  switch (outcome) {
    case CheckOutcome::kPass:
      return "pass";
    case CheckOutcome::kWarning:
      return "warning";
    case CheckOutcome::kFail:
      return "fail";
    case CheckOutcome::kNotObserved:
      return "not_observed";
  }
  return "fail";
}

bool CommandResult::failed() const {
  if (ended_by_check) return false;
  if (exit_code.has_value()) return *exit_code != 0;
  return signal.has_value();
}

bool NeedsLiveProcess(const std::string& kind) {
  return kind == "seccomp" || kind == "capabilities" || kind == "no_new_privs" ||
         kind == "read_only_root" || kind == "memory";
}

std::vector<CheckRow> FoldVerdicts(const std::vector<v1::WorkloadVerdict>& verdicts,
                                   const std::set<int>& unobserved) {
  std::vector<CheckRow> rows;
  for (const v1::WorkloadVerdict& w : verdicts) {
    std::map<std::string, size_t> by_rule;
    const size_t first = rows.size();
    for (const v1::RuleOutcome& o : w.rules()) {
      auto [it, inserted] = by_rule.emplace(o.rule_id(), rows.size());
      if (inserted) {
        CheckRow& r = rows.emplace_back();
        r.rule_id = o.rule_id();
        r.kind = o.kind();
        r.policy_id = w.policy_id();
        r.workload = w.identity().name();
        r.workload_id = w.workload_id();
        r.pids.assign(w.pids().begin(), w.pids().end());
        r.expected = o.expected();
        r.controls.assign(o.controls().begin(), o.controls().end());
      }
      CheckFinding f;
      f.pid = o.pid();
      f.tid = o.tid();
      f.outcome = FromStatus(o.status());
      // Whatever the engine made of the little known about such a process, a pass included.
      if (NeedsLiveProcess(o.kind()) && unobserved.count(o.pid()) != 0) {
        f.outcome = CheckOutcome::kNotObserved;
        f.reason = absl::StrCat("pid ", o.pid(),
                                " was not snapshotted alive (it exited first): not observed");
        f.observed = "not observed";
      } else {
        f.reason = o.reason();
        f.observed = o.observed();
      }
      rows[it->second].findings.push_back(std::move(f));
    }
    for (size_t i = first; i < rows.size(); ++i) {
      CheckRow& r = rows[i];
      std::vector<std::string> observed;
      for (const CheckFinding& f : r.findings) {
        if (Severity(f.outcome) > Severity(r.outcome)) r.outcome = f.outcome;
      }
      const bool several = r.pids.size() > 1;
      for (const CheckFinding& f : r.findings) {
        if (f.outcome == CheckOutcome::kPass && r.outcome != CheckOutcome::kPass) continue;
        observed.push_back(several && f.pid != 0 ? absl::StrCat("pid ", f.pid, ": ", f.observed)
                                                 : f.observed);
        if (r.outcome == CheckOutcome::kPass) break;
      }
      r.observed = absl::StrJoin(observed, "; ");
    }
  }
  return rows;
}

const char* VerifierOutcomeName(VerifierOutcome outcome) {
  switch (outcome) {
    case VerifierOutcome::kAcknowledged:
      return "acknowledged";
    case VerifierOutcome::kRefused:
      return "refused";
    case VerifierOutcome::kUnreachable:
      return "unreachable";
  }
  return "unreachable";
}

bool VerifierResult::affirming() const {
  return outcome == VerifierOutcome::kAcknowledged && verdict.status() == v1::TRUST_AFFIRMING;
}

namespace {

// "AFFIRMING" for TRUST_AFFIRMING.
std::string TrustName(v1::TrustStatus status) {
  std::string name = v1::TrustStatus_Name(status);
  return name.rfind("TRUST_", 0) == 0 ? name.substr(6) : name;
}

// The rule outcomes of `verdict` that are not AFFIRMING, workload by workload.
std::vector<const v1::RuleOutcome*> FailingRules(const v1::Verdict& verdict) {
  std::vector<const v1::RuleOutcome*> out;
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    for (const v1::RuleOutcome& r : w.rules()) {
      if (r.status() != v1::TRUST_AFFIRMING) out.push_back(&r);
    }
  }
  return out;
}

// The verifier's answer as lines for the table and JUnit.
std::string VerifierSummary(const VerifierResult& v) {
  if (v.outcome != VerifierOutcome::kAcknowledged) {
    return absl::StrCat("verifier ", v.address, ": ", VerifierOutcomeName(v.outcome), ": ", v.error,
                        " (nothing on record)\n");
  }
  const v1::Verdict& d = v.verdict;
  std::string out = absl::StrCat(
      "verifier ", v.address, ": ", TrustName(d.status()), "; node ", d.node_id(), ", report ",
      d.report_sequence(), ", verdict ", d.evidence_sha256(), "; policies ",
      d.policy_ids().empty() ? "none" : absl::StrJoin(d.policy_ids(), ", "), "\n");
  if (!d.detail().empty()) absl::StrAppend(&out, "    detail: ", d.detail(), "\n");
  for (const v1::RuleOutcome* r : FailingRules(d)) {
    absl::StrAppend(&out, "    ", TrustName(r->status()), " ", r->rule_id(), " (pid ", r->pid(),
                    "): ", r->reason(), "\n");
  }
  return out;
}

}  // namespace

void FinishResult(CheckResult& result) {
  if (!result.error.empty() ||
      (result.verifier.has_value() && result.verifier->outcome == VerifierOutcome::kUnreachable)) {
    result.exit_code = kCheckNotRun;
    return;
  }
  if (result.rows.empty() && result.problem.empty()) {
    result.problem =
        "no rule applied: no workload of the policy selects the checked processes (the "
        "workload selectors decide, as on the verifier)";
  }
  const bool all_pass = result.problem.empty() &&
                        std::all_of(result.rows.begin(), result.rows.end(),
                                    [](auto& r) { return r.outcome == CheckOutcome::kPass; });
  if (!all_pass || (result.verifier.has_value() && !result.verifier->affirming())) {
    result.exit_code = kCheckFailed;
  } else if (result.command.has_value() && result.command->failed()) {
    result.exit_code = kCheckCommandFailed;
  } else {
    result.exit_code = kCheckPassed;
  }
}

std::string RenderTable(const CheckResult& result) {
  size_t rule_w = 4, workload_w = 8;
  std::vector<std::string> workloads;
  for (const CheckRow& r : result.rows) {
    rule_w = std::max(rule_w, r.rule_id.size());
    workloads.push_back(absl::StrCat(r.workload, " (pid ", absl::StrJoin(r.pids, ","), ")"));
    workload_w = std::max(workload_w, workloads.back().size());
  }
  std::string out =
      absl::StrCat("policy ", absl::StrJoin(result.policy_ids, ", "), " (", result.policy_file,
                   "); ", result.target_mode, " ", result.target, "\n");
  absl::StrAppend(
      &out, absl::StrFormat("%-*s  %-*s  %s\n", rule_w, "RULE", workload_w, "WORKLOAD", "OUTCOME"));
  for (size_t i = 0; i < result.rows.size(); ++i) {
    const CheckRow& r = result.rows[i];
    absl::StrAppend(&out, absl::StrFormat("%-*s  %-*s  %s\n", rule_w, r.rule_id, workload_w,
                                          workloads[i], CheckOutcomeName(r.outcome)));
    absl::StrAppend(&out, "    observed: ", r.observed, "\n", "    expected: ", r.expected, "\n",
                    "    controls: ", absl::StrJoin(r.controls, ", "), "\n");
  }
  if (!result.error.empty()) {
    return absl::StrCat(out, "ERROR: the check could not run: ", result.error, "\n");
  }
  if (result.verifier.has_value()) absl::StrAppend(&out, VerifierSummary(*result.verifier));
  const Counts c = CountRows(result.rows);
  if (!result.problem.empty()) absl::StrAppend(&out, "problem: ", result.problem, "\n");
  if (result.command.has_value()) absl::StrAppend(&out, CommandSummary(*result.command), "\n");
  for (const std::string& g : result.gaps) absl::StrAppend(&out, "gap: ", g, "\n");
  absl::StrAppend(
      &out, absl::StrFormat("%s: %d rule(s): %d passed, %d failed, %d warning(s), %d not observed; "
                            "observed %.1f s, %d process(es), %d event(s), %d hooks active, %d "
                            "refused (%s)\n",
                            result.exit_code == kCheckPassed ? "PASS" : "FAIL", result.rows.size(),
                            c.passed, c.failed, c.warnings, c.not_observed, result.observed_seconds,
                            result.processes.size(), result.events,
                            result.probes.active_hooks_size(), result.probes.refused_hooks_size(),
                            result.verifier.has_value()
                                ? "the verifier's answer to the quoted report is above"
                                : "local check, not attestation: no TPM quote"));
  return out;
}

std::string RenderJson(const CheckResult& result) {
  using nlohmann::json;
  json j;
  j["result"] = result.exit_code == kCheckPassed   ? "pass"
                : result.exit_code == kCheckNotRun ? "error"
                                                   : "fail";
  j["exit_code"] = result.exit_code;
  j["attested"] =
      result.verifier.has_value() && result.verifier->outcome == VerifierOutcome::kAcknowledged;
  j["policy"] = {{"file", result.policy_file}, {"ids", result.policy_ids}};
  j["target"] = {{"mode", result.target_mode}, {"text", result.target}};
  if (result.command.has_value()) {
    const CommandResult& c = *result.command;
    json cmd = {{"argv", c.argv},
                {"pid", c.pid},
                {"exit_code", nullptr},
                {"signal", nullptr},
                {"ended_by_check", c.ended_by_check},
                {"failed", c.failed()}};
    if (c.exit_code.has_value()) cmd["exit_code"] = *c.exit_code;
    if (c.signal.has_value()) cmd["signal"] = SignalName(*c.signal);
    j["command"] = std::move(cmd);
  }
  json processes = json::array();
  for (const ObservedProcess& p : result.processes) {
    processes.push_back({{"pid", p.pid},
                         {"exe", p.exe},
                         {"snapshots", p.snapshots},
                         {"snapshot_ms", p.snapshot_ms},
                         {"exited", p.exited}});
  }
  json drops = json::object();
  for (const auto& [reason, n] : result.probes.dropped_events()) drops[reason] = n;
  j["observation"] = {
      {"seconds", result.observed_seconds},
      {"processes", std::move(processes)},
      {"events", result.events},
      {"active_hooks", std::vector<std::string>(result.probes.active_hooks().begin(),
                                                result.probes.active_hooks().end())},
      {"refused_hooks", std::vector<std::string>(result.probes.refused_hooks().begin(),
                                                 result.probes.refused_hooks().end())},
      {"dropped_events", std::move(drops)},
      {"gaps", result.gaps}};
  json rules = json::array();
  for (const CheckRow& r : result.rows) {
    json findings = json::array();
    for (const CheckFinding& f : r.findings) {
      findings.push_back({{"pid", f.pid},
                          {"tid", f.tid},
                          {"outcome", CheckOutcomeName(f.outcome)},
                          {"reason", f.reason},
                          {"observed", f.observed}});
    }
    rules.push_back({{"rule_id", r.rule_id},
                     {"kind", r.kind},
                     {"policy_id", r.policy_id},
                     {"workload", r.workload},
                     {"workload_id", r.workload_id},
                     {"pids", r.pids},
                     {"outcome", CheckOutcomeName(r.outcome)},
                     {"observed", r.observed},
                     {"expected", r.expected},
                     {"controls", r.controls},
                     {"findings", std::move(findings)}});
  }
  j["rules"] = std::move(rules);
  const Counts c = CountRows(result.rows);
  j["summary"] = {{"rules", result.rows.size()},
                  {"passed", c.passed},
                  {"failed", c.failed},
                  {"warnings", c.warnings},
                  {"not_observed", c.not_observed}};
  j["problem"] = result.problem.empty() ? json(nullptr) : json(result.problem);
  j["error"] = result.error.empty() ? json(nullptr) : json(result.error);
  if (result.error.empty() && result.verifier.has_value() &&
      result.verifier->outcome == VerifierOutcome::kUnreachable) {
    j["error"] = absl::StrCat("the verifier has nothing on record: ", result.verifier->error);
  }
  if (result.verifier.has_value()) {
    const VerifierResult& v = *result.verifier;
    const v1::Verdict& d = v.verdict;
    json failing = json::array();
    for (const v1::RuleOutcome* r : FailingRules(d)) {
      failing.push_back({{"rule_id", r->rule_id()},
                         {"workload_id", r->workload_id()},
                         {"pid", r->pid()},
                         {"status", TrustName(r->status())},
                         {"reason", r->reason()}});
    }
    json reasons = json::array();
    for (int r : d.reasons()) {
      reasons.push_back(v1::AppraisalReason_Name(static_cast<v1::AppraisalReason>(r)));
    }
    const bool acked = v.outcome == VerifierOutcome::kAcknowledged;
    j["verifier"] = {
        {"address", v.address},
        {"outcome", VerifierOutcomeName(v.outcome)},
        {"error", v.error.empty() ? json(nullptr) : json(v.error)},
        {"bundle", {{"sha256", v.bundle_sha256}, {"policy_ids", v.bundle_policy_ids}}},
        {"status", acked ? json(TrustName(d.status())) : json(nullptr)},
        {"node_id", d.node_id()},
        {"verdict_id", d.evidence_sha256()},
        {"report_sequence", d.report_sequence()},
        {"appraised_unix_nano", d.appraised_unix_nano()},
        {"policy_digest", d.policy_digest()},
        {"policy_ids", std::vector<std::string>(d.policy_ids().begin(), d.policy_ids().end())},
        {"reasons", std::move(reasons)},
        {"detail", d.detail()},
        {"failing_rules", std::move(failing)}};
  }
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string RenderJunit(const CheckResult& result) {
  // Rows in workload order: one testsuite per workload (policy, name, workload id).
  std::vector<std::vector<const CheckRow*>> suites;
  for (const CheckRow& r : result.rows) {
    if (suites.empty() || suites.back().front()->workload_id != r.workload_id ||
        suites.back().front()->policy_id != r.policy_id) {
      suites.emplace_back();
    }
    suites.back().push_back(&r);
  }
  int tests = static_cast<int>(result.rows.size());
  int failures = 0;
  for (const CheckRow& r : result.rows) failures += r.outcome != CheckOutcome::kPass;
  if (!result.problem.empty()) {
    ++tests;
    ++failures;
  }
  const int errors = result.error.empty() ? 0 : 1;
  tests += errors;
  const bool verifier_case = result.verifier.has_value() && result.error.empty();
  if (verifier_case) {
    ++tests;
    failures += !result.verifier->affirming();
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  absl::StrAppend(&out, "<testsuites name=\"vigil-node check\" tests=\"", tests, "\" failures=\"",
                  failures, "\" errors=\"", errors, "\" time=\"",
                  absl::StrFormat("%.3f", result.observed_seconds), "\">\n");
  for (const auto& suite : suites) {
    const CheckRow& head = *suite.front();
    int suite_failures = 0;
    for (const CheckRow* r : suite) suite_failures += r->outcome != CheckOutcome::kPass;
    const std::string name = absl::StrCat(head.policy_id, " ", head.workload, " (pid ",
                                          absl::StrJoin(head.pids, ","), ")");
    absl::StrAppend(&out, "  <testsuite name=\"", XmlEscape(name), "\" tests=\"", suite.size(),
                    "\" failures=\"", suite_failures, "\" errors=\"0\" skipped=\"0\">\n");
    absl::StrAppend(&out, "    <properties>\n      <property name=\"workload_id\" value=\"",
                    XmlEscape(head.workload_id),
                    "\"/>\n      <property name=\"attested\" "
                    "value=\"false\"/>\n    </properties>\n");
    for (const CheckRow* r : suite) {
      absl::StrAppend(&out, "    <testcase classname=\"",
                      XmlEscape(absl::StrCat(head.policy_id, ".", head.workload)), "\" name=\"",
                      XmlEscape(r->rule_id), "\">\n");
      const std::string detail =
          absl::StrCat("observed: ", r->observed, "\nexpected: ", r->expected,
                       "\ncontrols: ", absl::StrJoin(r->controls, ", "));
      if (r->outcome != CheckOutcome::kPass) {
        std::string message;
        for (const CheckFinding& f : r->findings) {
          if (f.outcome == r->outcome) {
            message = f.reason;
            break;
          }
        }
        absl::StrAppend(&out, "      <failure type=\"", CheckOutcomeName(r->outcome),
                        "\" message=\"", XmlEscape(message), "\">", XmlEscape(detail),
                        "</failure>\n");
      } else {
        absl::StrAppend(&out, "      <system-out>", XmlEscape(detail), "</system-out>\n");
      }
      absl::StrAppend(&out, "    </testcase>\n");
    }
    absl::StrAppend(&out, "  </testsuite>\n");
  }
  if (!result.problem.empty()) {
    absl::StrAppend(&out,
                    "  <testsuite name=\"vigil-node check\" tests=\"1\" failures=\"1\" "
                    "errors=\"0\" skipped=\"0\">\n    <testcase classname=\"vigil-node.check\" "
                    "name=\"policy-selects-checked-processes\">\n      <failure "
                    "type=\"no_rule_applied\" message=\"",
                    XmlEscape(result.problem), "\">", XmlEscape(result.target),
                    "</failure>\n    </testcase>\n"
                    "  </testsuite>\n");
  }
  if (errors > 0) {
    absl::StrAppend(&out,
                    "  <testsuite name=\"vigil-node check\" tests=\"1\" failures=\"0\" "
                    "errors=\"1\" skipped=\"0\">\n    <testcase classname=\"vigil-node.check\" "
                    "name=\"check-runs\">\n      <error type=\"not_run\" message=\"",
                    XmlEscape(result.error), "\">", XmlEscape(result.target),
                    "</error>\n    </testcase>\n", "  </testsuite>\n");
  }
  if (verifier_case) {
    const VerifierResult& v = *result.verifier;
    const bool failed = !v.affirming();
    absl::StrAppend(&out, "  <testsuite name=\"vigil-verifier ", XmlEscape(v.address),
                    "\" tests=\"1\" failures=\"", failed ? 1 : 0,
                    "\" errors=\"0\" skipped=\"0\">\n    <testcase "
                    "classname=\"vigil-node.check\" name=\"verifier verdict\">\n");
    const std::string summary = VerifierSummary(v);
    if (failed) {
      const std::string type = v.outcome == VerifierOutcome::kAcknowledged
                                   ? absl::AsciiStrToLower(TrustName(v.verdict.status()))
                                   : VerifierOutcomeName(v.outcome);
      absl::StrAppend(&out, "      <failure type=\"", XmlEscape(type), "\" message=\"",
                      XmlEscape(summary.substr(0, summary.find('\n'))), "\">", XmlEscape(summary),
                      "</failure>\n");
    } else {
      absl::StrAppend(&out, "      <system-out>", XmlEscape(summary), "</system-out>\n");
    }
    absl::StrAppend(&out, "    </testcase>\n  </testsuite>\n");
  }
  absl::StrAppend(&out, "</testsuites>\n");
  return out;
}

}  // namespace vigil::node
