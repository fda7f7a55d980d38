#pragma once

// Workload scope (docs/scope.md): assigning the scopes a node observed
// (RuntimeReport.scopes) to a policy's workloads, and the scope rule that appraises them
// against the workload's declared scope.

#include <cstddef>
#include <string>
#include <vector>

#include "common/policy/placement.h"
#include "common/policy/policy.h"
#include "common/policy/rules.h"
#include "vigil/v1/attestation.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::policy {

/// The controls a scope rule evidences when the policy names none: NIST SP 800-53 CM-7,
/// CM-8, CM-8(3), SA-9, SC-7, SI-7; ISO/IEC 27001:2022 A.5.9, A.8.9, A.8.19 (with the 2013
/// numbers they replace); SOC 2 CC6.1, CC6.8, CC8.1. In RuleOutcome.controls form.
std::vector<std::string> DefaultScopeControls();

/// Where an observed scope belongs under one policy.
struct ScopePlacement {
  /// Index into Policy::workloads; -1 when no workload of the policy selects its root.
  int workload = -1;
  /// The workload's identity and WorkloadVerdict.workload_id, as the engine gives them.
  v1::WorkloadIdentity identity;
  std::string workload_id;
};

/// Places `scope` the way the engine places its root: when the root (root_pid) is among the
/// report's processes with the same executable, that process's workload and identity;
/// otherwise the first workload whose selector matches the root as the scope describes it
/// (root_exe_path, cgroup, container_id, matched_by).
ScopePlacement PlaceScope(const Policy& policy, const ProcessIndex& by_pid, Placer& placer,
                          const v1::WorkloadScope& scope);

/// The same for one scope of `report`, without an engine at hand (vigilctl).
ScopePlacement PlaceScope(const Policy& policy, const v1::RuntimeReport& report,
                          const v1::WorkloadScope& scope);

/// Appends the outcomes of the scope rule `rule` for one workload (its declared scope is
/// `evidence.workload->scope`): one failed outcome, of the rule's grade, per observed item
/// outside the declared scope and per category the node truncated; a WARNING per gap the
/// node reported and when the node reported no scope; an informational outcome (AFFIRMING,
/// its reason starting "informational:") per declared item never observed; one AFFIRMING
/// outcome when everything observed is within. At most `max_findings` failed outcomes, the
/// rest summed up in one more.
void EvaluateScopeRule(const Rule& rule, const WorkloadEvidence& evidence, size_t max_findings,
                       std::vector<v1::RuleOutcome>* out);

/// "name@version" of a package, or "unpackaged" when the item has none.
std::string PackageText(const v1::PackageRef& package, bool has_package);

}  // namespace vigil::policy
