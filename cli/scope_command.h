#pragma once

// `vigilctl scope show|export NODE WORKLOAD` (docs/scope.md): a workload's observed scope from
// the node's latest evidence, as a readable tree or exported for a system security plan
// (YAML component description, OSCAL 1.1 component-definition, CycloneDX 1.5 SBOM).

#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/nodes_command.h"
#include "common/policy/policy.h"
#include "nlohmann/json.hpp"
#include "vigil/v1/fleet.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::cli {

/// One observed scope assigned to a policy's workload, with the evidence behind it.
struct ScopeEvidence {
  std::string node_id;
  std::string hostname;
  /// Hex SHA-256 of the evidence payload (the RuntimeReport bytes the TPM quote binds).
  std::string evidence_sha256;
  int64_t collected_unix_nano = 0;
  /// The verdict on the evidence (TRUST_STATUS_UNSPECIFIED when there is none yet).
  v1::TrustStatus verdict_status = v1::TRUST_STATUS_UNSPECIFIED;
  /// The report carried a probe status (file and network activity was observed).
  bool probes_present = false;
  std::string workload_name;
  std::string workload_id;
  std::string policy_id;
  /// The workload's declared scope in that policy, when it declares one.
  std::optional<policy::DeclaredScope> declared;
  v1::WorkloadScope scope;
  /// The verdict's outcomes of scope rules for this workload.
  std::vector<v1::RuleOutcome> scope_outcomes;
};

/// The scopes of `latest` that `workload` names (a policy workload name, or a workload_id)
/// under `policies`. Fails, with a message an operator can act on, when the payload does not
/// parse, the report carries no scope (a node without scope observation) or no scope belongs
/// to such a workload (naming the workloads there are).
absl::StatusOr<std::vector<ScopeEvidence>> ResolveScopes(
    const v1::GetLatestEvidenceResponse& latest, const std::vector<policy::Policy>& policies,
    const std::string& workload);

/// Whether the evidence was verified (quote and log checked): a verdict that is neither
/// missing, REJECTED nor UNVERIFIED.
bool EvidenceVerified(const ScopeEvidence& scope);

/// The boundary statement the evidence supports, in one paragraph, saying when the
/// boundary cannot be stated in full (truncated, probes absent, gaps, evidence unverified).
std::string BoundaryStatement(const ScopeEvidence& scope);

/// `scope show`: the readable tree.
void PrintScopeTree(const ScopeEvidence& scope, std::ostream& out);

/// `scope export --format yaml`: a component description for a system security plan.
std::string ScopeYaml(const ScopeEvidence& scope);

/// `scope export --format oscal`: an OSCAL 1.1 component-definition. The same scope and
/// `generated_at` give the same document, UUIDs included.
nlohmann::json ScopeOscal(const ScopeEvidence& scope, absl::Time generated_at);

/// `scope export --format cyclonedx`: a CycloneDX 1.5 JSON BOM.
nlohmann::json ScopeCycloneDx(const ScopeEvidence& scope, absl::Time generated_at);

/// The package URL of a Debian package: pkg:deb/debian/NAME@VERSION?arch=ARCH, name, version
/// and arch percent-encoded (every byte but A-Z a-z 0-9 . - _ ~, so an epoch's ':' is %3A
/// and '+' is %2B).
std::string DebianPurl(const v1::PackageRef& package);

/// The commands as the CLI runs them: 0 on success, 1 when the verifier refuses, cannot be
/// reached or the scope cannot be found, 2 for bad flags.
int RunScopeShow(const FleetConnectionOptions& connection, const std::string& node_id,
                 const std::string& workload, std::ostream& out, std::ostream& err);
int RunScopeExport(const FleetConnectionOptions& connection, const std::string& node_id,
                   const std::string& workload, const std::string& format, std::ostream& out,
                   std::ostream& err);

/// Adds `scope show NODE_ID WORKLOAD` and `scope export NODE_ID WORKLOAD --format
/// yaml|oscal|cyclonedx` under `app`, with the connection flags of `nodes list`.
void RegisterScopeCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
