#include "cli/scope_command.h"

#include <iostream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cli/fleet_client.h"
#include "common/digest.h"
#include "common/policy/parser.h"
#include "common/policy/scope.h"

namespace vigil::cli {
namespace {

// The policies the evidence was appraised under, parsed from ListPolicies: those the verdict
// names (by name) when it names any, else all of them.
absl::StatusOr<std::vector<policy::Policy>> FetchPolicies(FleetClient& client,
                                                          const v1::Verdict& verdict,
                                                          std::ostream& err) {
  v1::ListPoliciesResponse response;
  const grpc::Status st =
      client.Call(&v1::Fleet::Stub::ListPolicies, v1::ListPoliciesRequest(), &response);
  if (!st.ok()) return absl::UnavailableError(client.Describe("ListPolicies", st));
  std::set<std::string> named;
  for (const std::string& id : verdict.policy_ids()) named.insert(id.substr(0, id.find('@')));
  std::vector<policy::Policy> policies;
  for (const v1::PolicyInfo& info : response.policies()) {
    if (!named.empty() && named.count(info.name()) == 0) continue;
    absl::StatusOr<policy::Policy> p = policy::ParseSinglePolicy(info.yaml(), info.name());
    if (!p.ok()) {
      err << "vigilctl: warning: policy " << info.name() << " does not parse here; skipped\n";
      continue;
    }
    policies.push_back(*std::move(p));
  }
  return policies;
}

// Fetches and resolves; prints the failure and returns its exit code otherwise.
int Fetch(const FleetConnectionOptions& connection, const std::string& node_id,
          const std::string& workload, std::vector<ScopeEvidence>* scopes, std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::GetLatestEvidenceRequest request;
  request.set_node_id(node_id);
  v1::GetLatestEvidenceResponse latest;
  const grpc::Status st = client->Call(&v1::Fleet::Stub::GetLatestEvidence, request, &latest);
  if (!st.ok()) {
    return client->Fail(
        err, "GetLatestEvidence", st,
        absl::StrCat("the verifier knows no node ", node_id, " or holds no evidence from it"));
  }
  absl::StatusOr<std::vector<policy::Policy>> policies =
      FetchPolicies(*client, latest.verdict(), err);
  if (!policies.ok()) {
    err << "vigilctl: " << policies.status().message() << "\n";
    return kExitFailed;
  }
  absl::StatusOr<std::vector<ScopeEvidence>> resolved = ResolveScopes(latest, *policies, workload);
  if (!resolved.ok()) {
    err << "vigilctl: " << resolved.status().message() << "\n";
    return kExitFailed;
  }
  *scopes = *std::move(resolved);
  return kExitOk;
}

}  // namespace

absl::StatusOr<std::vector<ScopeEvidence>> ResolveScopes(
    const v1::GetLatestEvidenceResponse& latest, const std::vector<policy::Policy>& policies,
    const std::string& workload) {
  const std::string node = latest.node_id();
  if (!latest.has_evidence() || latest.evidence().payload().empty()) {
    return absl::NotFoundError(absl::StrCat("node ", node, " has sent no evidence yet"));
  }
  v1::RuntimeReport report;
  if (!report.ParseFromString(latest.evidence().payload())) {
    return absl::DataLossError(
        absl::StrCat("the latest evidence of node ", node, " is not a RuntimeReport"));
  }
  if (report.scopes_size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the latest evidence of node ", node,
        " carries no workload scope: the node does not observe scopes (an older vigil-node) or "
        "monitors no workload"));
  }
  std::vector<ScopeEvidence> found;
  std::set<std::string> known;  // "name (workload_id)" of every scope's workload
  for (const v1::WorkloadScope& scope : report.scopes()) {
    // The scope is shown once, under the first policy that names its workload and, when
    // one does, declares a scope for it.
    const policy::Policy* chosen = nullptr;
    policy::ScopePlacement placement;
    for (const policy::Policy& p : policies) {
      policy::ScopePlacement placed = policy::PlaceScope(p, report, scope);
      if (placed.workload < 0) continue;
      const policy::Workload& w = p.workloads[placed.workload];
      known.insert(absl::StrCat(w.name, " (", placed.workload_id, ")"));
      if (workload != w.name && workload != placed.workload_id) continue;
      if (chosen == nullptr ||
          (!chosen->workloads[placement.workload].scope && w.scope.has_value())) {
        chosen = &p;
        placement = std::move(placed);
      }
    }
    if (chosen == nullptr) continue;
    const policy::Workload& w = chosen->workloads[placement.workload];
    ScopeEvidence e;
    e.node_id = node;
    e.hostname = report.hostname();
    e.evidence_sha256 = HexEncode(Sha256(latest.evidence().payload()));
    e.collected_unix_nano = report.collected_unix_nano();
    e.verdict_status =
        latest.has_verdict() ? latest.verdict().status() : v1::TRUST_STATUS_UNSPECIFIED;
    e.probes_present = report.has_probes();
    e.workload_name = w.name;
    e.workload_id = placement.workload_id;
    e.policy_id = chosen->Id();
    e.declared = w.scope;
    e.scope = scope;
    for (const v1::WorkloadVerdict& wv : latest.verdict().workloads()) {
      if (wv.workload_id() != placement.workload_id) continue;
      for (const v1::RuleOutcome& r : wv.rules()) {
        if (r.kind() == "scope") e.scope_outcomes.push_back(r);
      }
    }
    found.push_back(std::move(e));
  }
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "node ", node, " has no scope for a workload '", workload, "'; its scopes belong to: ",
        known.empty() ? std::string("no workload of the current policies")
                      : absl::StrJoin(known, ", ")));
  }
  return found;
}

bool EvidenceVerified(const ScopeEvidence& scope) {
  switch (scope.verdict_status) {
    case v1::TRUST_AFFIRMING:
    case v1::TRUST_WARNING:
    case v1::TRUST_CONTRAINDICATED:
    case v1::TRUST_NONE:
      return true;
    default:
      return false;
  }
}

int RunScopeShow(const FleetConnectionOptions& connection, const std::string& node_id,
                 const std::string& workload, std::ostream& out, std::ostream& err) {
  std::vector<ScopeEvidence> scopes;
  if (int code = Fetch(connection, node_id, workload, &scopes, err); code != kExitOk) return code;
  for (size_t i = 0; i < scopes.size(); ++i) {
    if (i > 0) out << "\n";
    PrintScopeTree(scopes[i], out);
  }
  return kExitOk;
}

int RunScopeExport(const FleetConnectionOptions& connection, const std::string& node_id,
                   const std::string& workload, const std::string& format, std::ostream& out,
                   std::ostream& err) {
  std::vector<ScopeEvidence> scopes;
  if (int code = Fetch(connection, node_id, workload, &scopes, err); code != kExitOk) return code;
  if (scopes.size() > 1) {
    std::vector<std::string> ids;
    for (const ScopeEvidence& s : scopes) {
      ids.push_back(absl::StrCat(s.workload_id, " (", s.scope.root_exe_path(), ")"));
    }
    err << "vigilctl: workload '" << workload << "' has " << scopes.size() << " scopes on node "
        << node_id << "; export one by its workload_id: " << absl::StrJoin(ids, ", ") << "\n";
    return kExitFailed;
  }
  const absl::Time now = absl::Now();
  if (format == "yaml") {
    out << ScopeYaml(scopes[0]);
  } else if (format == "oscal") {
    out << ScopeOscal(scopes[0], now).dump(2) << "\n";
  } else {
    out << ScopeCycloneDx(scopes[0], now).dump(2) << "\n";
  }
  return kExitOk;
}

void RegisterScopeCommands(CLI::App& app, int* exit_code) {
  CLI::App* scope = app.add_subcommand(
      "scope", "A workload's observed scope (what it ran, loaded, wrote, read, connected to)");
  scope->require_subcommand(1);
  struct Options {
    FleetConnectionOptions connection;
    std::string node_id;
    std::string workload;
    std::string format;
  };
  auto options = std::make_shared<Options>();
  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("NODE_ID", options->node_id, "node_id (hex SHA-256 of the EK public area)")
        ->required()
        ->check(NodeIdValidator());
    cmd->add_option("WORKLOAD", options->workload, "the policy's workload name, or a workload_id")
        ->required();
    AddFleetConnectionFlags(cmd, &options->connection);
  };
  CLI::App* show = scope->add_subcommand(
      "show",
      "Print the workload's scope from the node's latest evidence as a tree: processes with "
      "lineage, executables with their package, interpreters and scripts, libraries, storage, "
      "endpoints, config and secrets read, truncation, time range, evidence digest. A name "
      "that several scopes share (one policy workload, several roots) prints each.");
  add_common(show);
  show->callback([options, exit_code] {
    *exit_code = RunScopeShow(options->connection, options->node_id, options->workload, std::cout,
                              std::cerr);
  });
  CLI::App* exp = scope->add_subcommand(
      "export",
      "Write the workload's scope to stdout for a system security plan: yaml (a component "
      "description with the boundary statement the evidence supports), oscal (OSCAL 1.1 "
      "component-definition) or cyclonedx (CycloneDX 1.5 JSON with Debian package URLs). "
      "WORKLOAD must name one scope (use its workload_id when a name has several).");
  add_common(exp);
  exp->add_option("--format", options->format, "yaml, oscal or cyclonedx")
      ->required()
      ->check(CLI::IsMember({"yaml", "oscal", "cyclonedx"}));
  exp->callback([options, exit_code] {
    *exit_code = RunScopeExport(options->connection, options->node_id, options->workload,
                                options->format, std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
