#include "verifier/console/console_json.h"

#include <set>
#include <tuple>

#include "absl/strings/ascii.h"

namespace vigil::verifier::console {
namespace {

int64_t Millis(int64_t unix_nano) { return unix_nano / 1000000; }

bool Failing(v1::TrustStatus status) {
  return status != v1::TRUST_AFFIRMING && status != v1::TRUST_STATUS_UNSPECIFIED &&
         status != v1::TRUST_NONE;
}

nlohmann::json Strings(const google::protobuf::RepeatedPtrField<std::string>& items) {
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& s : items) out.push_back(s);
  return out;
}

// The failing rule outcomes of a verdict, one per (workload, rule, status, reason).
nlohmann::json FailingRules(const v1::Verdict& verdict) {
  nlohmann::json out = nlohmann::json::array();
  std::set<std::tuple<std::string, std::string, int, std::string>> seen;
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    for (const v1::RuleOutcome& r : w.rules()) {
      if (!Failing(r.status())) continue;
      if (!seen.emplace(w.identity().name(), r.rule_id(), r.status(), r.reason()).second) continue;
      out.push_back({{"workload", w.identity().name()},
                     {"rule", r.rule_id()},
                     {"status", StatusName(r.status())},
                     {"reason", r.reason()},
                     {"observed", r.observed()},
                     {"expected", r.expected()},
                     {"controls", Strings(r.controls())}});
    }
  }
  return out;
}

nlohmann::json Workloads(const v1::Verdict& verdict) {
  nlohmann::json out = nlohmann::json::array();
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    nlohmann::json pids = nlohmann::json::array();
    for (int p : w.pids()) pids.push_back(p);
    out.push_back({{"id", w.workload_id()},
                   {"name", w.identity().name()},
                   {"exe", w.identity().exe_path()},
                   {"status", StatusName(w.status())},
                   {"pids", pids}});
  }
  return out;
}

}  // namespace

std::string StatusName(v1::TrustStatus status) {
  if (status == v1::TRUST_STATUS_UNSPECIFIED) return "unknown";
  std::string name = v1::TrustStatus_Name(status);
  if (name.rfind("TRUST_", 0) == 0) name = name.substr(6);
  return absl::AsciiStrToLower(name);
}

nlohmann::json NodeRow(const v1::NodeSummary& node) {
  const v1::Verdict& v = node.latest_verdict();
  return {{"node_id", node.node_id()},
          {"hostname", node.hostname()},
          {"enrolled", node.enrolled()},
          {"connected", node.connected()},
          {"revoked", node.revoked()},
          {"status", StatusName(v.status())},
          {"appraised_ms", Millis(v.appraised_unix_nano())},
          {"last_seen_ms", Millis(node.last_seen_unix_nano())},
          {"workloads", Workloads(v)},
          {"failing", FailingRules(v)}};
}

nlohmann::json FleetJson(const v1::ListNodesResponse& nodes, int64_t now_ms) {
  nlohmann::json rows = nlohmann::json::array();
  for (const v1::NodeSummary& n : nodes.nodes()) rows.push_back(NodeRow(n));
  return {{"nodes", std::move(rows)}, {"now_ms", now_ms}};
}

nlohmann::json VerdictJson(const v1::Verdict& verdict) {
  nlohmann::json reasons = nlohmann::json::array();
  for (int r : verdict.reasons()) reasons.push_back(v1::AppraisalReason_Name(r));
  return {{"appraised_ms", Millis(verdict.appraised_unix_nano())},
          {"status", StatusName(verdict.status())},
          {"reasons", std::move(reasons)},
          {"detail", verdict.detail()},
          {"failing", FailingRules(verdict)},
          {"workloads", Workloads(verdict)},
          {"policies", Strings(verdict.policy_ids())},
          {"from_spool", verdict.from_spool()},
          {"report_sequence", verdict.report_sequence()},
          {"evidence_sha256", verdict.evidence_sha256()}};
}

nlohmann::json NodeDetailJson(const v1::GetNodeResponse& node,
                              const v1::ListVerdictsResponse& history, int64_t now_ms) {
  nlohmann::json timeline = nlohmann::json::array();
  for (const v1::Verdict& v : history.verdicts()) timeline.push_back(VerdictJson(v));
  return {{"node", NodeRow(node.node())},
          {"detail", node.node().latest_verdict().detail()},
          {"enrolled_ms", Millis(node.enrolled_unix_nano())},
          {"ek_trust", node.ek_trust()},
          {"policies", Strings(node.policy_ids())},
          {"history", std::move(timeline)},
          {"now_ms", now_ms}};
}

nlohmann::json ChangeJson(const v1::VerdictChange& change) {
  return {{"node_id", change.node_id()},
          {"workload_id", change.workload_id()},
          {"workload", change.workload_name()},
          {"previous", StatusName(change.previous_status())},
          {"status", StatusName(change.status())},
          {"appraised_ms", Millis(change.verdict().appraised_unix_nano())}};
}

}  // namespace vigil::verifier::console
