// RunAuditCompare (cli/audit_compare.h): fetching the evidence and reporting.

#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/audit_compare.h"
#include "cli/audit_output.h"
#include "cli/fleet_client.h"
#include "cli/output_file.h"
#include "cli/table.h"
#include "common/digest.h"
#include "common/escape.h"

namespace vigil::cli {
namespace {

struct Observations {
  std::vector<ObservedProcess> processes;
  std::vector<ObservedNode> nodes;
};

// The latest evidence of `node_ids` (every listed node when empty). Returns an exit code
// other than kExitOk when a call fails.
int Observe(FleetClient& client, const std::string& node_id, Observations* out, std::ostream& err) {
  std::vector<std::string> ids;
  if (!node_id.empty()) {
    ids.push_back(node_id);
  } else {
    v1::ListNodesResponse nodes;
    const grpc::Status st = client.ListAllNodes(&nodes);
    if (!st.ok()) return client.Fail(err, "ListNodes", st);
    for (const v1::NodeSummary& n : nodes.nodes()) ids.push_back(n.node_id());
  }
  for (const std::string& id : ids) {
    v1::GetLatestEvidenceRequest request;
    request.set_node_id(id);
    v1::GetLatestEvidenceResponse latest;
    const grpc::Status st = client.Call(&v1::Fleet::Stub::GetLatestEvidence, request, &latest);
    if (st.error_code() == grpc::StatusCode::NOT_FOUND && node_id.empty()) {
      err << "vigilctl: node " << id
          << " has sent no evidence yet; its processes are not compared\n";
      continue;
    }
    if (!st.ok()) return client.Fail(err, "GetLatestEvidence", st, "unknown node " + id);
    v1::RuntimeReport report;
    if (!report.ParseFromString(latest.evidence().payload())) {
      err << "vigilctl: node " << id << ": the latest evidence's payload is not a RuntimeReport; "
          << "its processes are not compared\n";
      continue;
    }
    std::map<int32_t, std::string> workloads;
    for (const v1::WorkloadVerdict& w : latest.verdict().workloads()) {
      for (int32_t pid : w.pids()) workloads[pid] = w.identity().name();
    }
    ObservedNode node;
    node.node_id = id;
    node.hostname = report.hostname();
    node.evidence_sha256 = HexEncode(Sha256(latest.evidence().payload()));
    node.policy_digest = report.policy_digest();
    node.report_sequence = report.sequence();
    out->nodes.push_back(node);
    for (v1::ProcessSnapshot& s : *report.mutable_processes()) {
      ObservedProcess p;
      p.node_id = id;
      p.hostname = report.hostname();
      p.workload = workloads[s.pid()];
      p.snapshot = std::move(s);
      out->processes.push_back(std::move(p));
    }
  }
  return kExitOk;
}

Color AgreementColor(Agreement a) {
  switch (a) {
    case Agreement::kAgree:
      return Color::kGreen;
    case Agreement::kDisagree:
      return Color::kRed;
    case Agreement::kUnknown:
      return Color::kYellow;
    default:
      return Color::kNone;
  }
}

std::string Pids(const Pairing& p) {
  std::vector<std::string> out;
  for (const ObservedProcess* o : p.processes) {
    out.push_back(absl::StrCat(
        o->hostname.empty() ? o->node_id.substr(0, 12) : EscapeUntrusted(o->hostname, 64), ":",
        o->snapshot.pid()));
  }
  return out.empty() ? "-" : absl::StrJoin(out, ",");
}

nlohmann::json ComparisonJson(const Comparison& c) {
  const DeclaredContainer& d = *c.pairing.declared;
  nlohmann::json processes = nlohmann::json::array();
  for (const ObservedProcess* p : c.pairing.processes) {
    processes.push_back({{"node_id", p->node_id},
                         {"hostname", EscapeUntrusted(p->hostname)},
                         {"pid", p->snapshot.pid()},
                         {"cgroup", EscapeUntrusted(p->snapshot.cgroup())},
                         {"container_id", EscapeUntrusted(p->snapshot.container_id())},
                         {"workload", p->workload}});
  }
  nlohmann::json checks = nlohmann::json::array();
  for (const ComparisonCheck& k : c.checks) {
    checks.push_back({{"check", k.check},
                      {"result", AgreementName(k.agreement)},
                      {"declared", k.declared},
                      {"observed", k.observed},
                      {"message", k.message},
                      {"controls", k.controls}});
  }
  return {{"file", d.file},
          {"line", d.line},
          {"kind", d.kind},
          {"name", d.name},
          {"namespace", d.namespace_name},
          {"container", d.container},
          {"paired_by", c.pairing.paired_by},
          {"processes", std::move(processes)},
          {"checks", std::move(checks)}};
}

}  // namespace

int RunAuditCompare(const CompareOptions& options, std::ostream& out, std::ostream& err) {
  std::vector<PairRule> rules;
  for (const std::string& text : options.pairs) {
    absl::StatusOr<PairRule> rule = ParsePairRule(text);
    if (!rule.ok()) {
      err << "vigilctl: " << rule.status().message() << "\n";
      return kExitUsage;
    }
    rules.push_back(*std::move(rule));
  }
  absl::StatusOr<ManifestSet> manifests = LoadManifests(options.manifests);
  if (!manifests.ok()) {
    err << "vigilctl: " << manifests.status().message() << "\n";
    return kExitUsage;
  }
  std::unique_ptr<FleetClient> client = FleetClient::Connect(options.connection, err);
  if (client == nullptr) return kExitUsage;
  Observations observed;
  if (int code = Observe(*client, options.node_id, &observed, err); code != kExitOk) return code;

  const std::vector<Comparison> comparisons =
      CompareAll(PairContainers(*manifests, observed.processes, rules));
  int paired = 0, disagreements = 0, unknown = 0;
  std::vector<JunitCase> cases;
  for (const Comparison& c : comparisons) {
    const DeclaredContainer& d = *c.pairing.declared;
    const std::string classname = absl::StrCat(d.file, ":", d.ObjectName());
    if (c.pairing.processes.empty()) {
      cases.push_back({classname,
                       absl::StrCat(d.container, ": pairing"),
                       {},
                       "no observed process paired with this container"});
      continue;
    }
    ++paired;
    for (const ComparisonCheck& k : c.checks) {
      JunitCase tc{classname, absl::StrCat(d.container, ": ", k.check), {}, ""};
      if (k.agreement == Agreement::kDisagree) {
        ++disagreements;
        tc.failures.emplace_back(absl::StrCat("spec-", k.check),
                                 absl::StrCat("declared ", k.declared, "; ", k.message));
      } else if (k.agreement == Agreement::kUnknown) {
        ++unknown;
        tc.skipped = k.message;
      } else if (k.agreement == Agreement::kNotDeclared) {
        tc.skipped = k.message;
      }
      cases.push_back(std::move(tc));
    }
  }

  if (!options.junit_path.empty()) {
    if (absl::Status st = WriteJunit(options.junit_path, "vigilctl audit compare", cases);
        !st.ok()) {
      err << "vigilctl: --junit: " << st.message() << "\n";
      return kExitUsage;
    }
  }
  if (!options.oscal_path.empty()) {
    const nlohmann::json doc = ComparisonOscal(comparisons, observed.nodes, absl::Now());
    if (absl::Status st = WriteFileAtomically(
            options.oscal_path,
            doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", true);
        !st.ok()) {
      err << "vigilctl: --oscal: " << st.message() << "\n";
      return kExitUsage;
    }
  }

  if (options.json) {
    nlohmann::json doc;
    doc["comparisons"] = nlohmann::json::array();
    for (const Comparison& c : comparisons) doc["comparisons"].push_back(ComparisonJson(c));
    doc["summary"] = {{"containers", comparisons.size()}, {"paired", paired},
                      {"disagreements", disagreements},   {"unknown", unknown},
                      {"nodes", observed.nodes.size()},   {"processes", observed.processes.size()}};
    out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    const bool color = &out == &std::cout && ShouldColor(1);
    Table table(
        {"OBJECT", "CONTAINER", "PROCESSES", "CHECK", "RESULT", "DECLARED", "OBSERVED", "DETAIL"});
    for (const Comparison& c : comparisons) {
      const DeclaredContainer& d = *c.pairing.declared;
      if (c.pairing.processes.empty()) {
        table.AddRow({EscapeUntrusted(d.ObjectName()), EscapeUntrusted(d.container), "-", "-",
                      "unpaired", "-", "-", "no observed process paired (see --pair)"});
        continue;
      }
      for (const ComparisonCheck& k : c.checks) {
        if (k.agreement == Agreement::kNotDeclared) continue;
        table.AddRow(
            {EscapeUntrusted(d.ObjectName()), EscapeUntrusted(d.container), Pids(c.pairing),
             k.check, Cell(AgreementName(k.agreement), AgreementColor(k.agreement)),
             EscapeUntrusted(k.declared), k.observed, k.message.empty() ? "-" : k.message});
      }
    }
    table.Render(out, color);
    out << comparisons.size() << " declared container(s), " << paired << " paired with "
        << "processes of " << observed.nodes.size() << " node(s): " << disagreements
        << " disagreement(s), " << unknown << " unknown\n";
  }
  if (paired == 0) {
    err << "vigilctl: no declared container paired with an observed process: nothing was "
           "compared (see --pair)\n";
    return kExitFailed;
  }
  return disagreements == 0 ? kExitOk : kExitFailed;
}

}  // namespace vigil::cli
