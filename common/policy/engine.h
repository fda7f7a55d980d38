#pragma once

// The rule engine: a node's RuntimeReport appraised against reference policies, one
// WorkloadVerdict per workload the policies select (docs/policy.md, "Verdicts").

#include <cstddef>
#include <string>
#include <vector>

#include "common/policy/policy.h"
#include "vigil/v1/attestation.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::policy {

/// Knobs of an evaluation.
struct EvaluateOptions {
  /// At most this many outcomes per event-based rule and workload; the rest are summed up
  /// in one more outcome of the worst grade among them, so an event storm cannot blow up a
  /// verdict.
  size_t max_event_outcomes = 64;
};

/// Appraises `report` against `policies`. Every process of the report is placed in at most
/// one workload per policy: the workload of its parent when it was followed from a
/// monitored parent ("inherited:<ppid>" in matched_by) and that parent is in the report,
/// else the first workload whose selector matches its executable, cgroup and container
/// (docs/policy.md, "Workload identity"). Each observed scope (RuntimeReport.scopes) joins
/// the workload its root is placed in (PlaceScope, common/policy/scope.h); a scope whose
/// workload has no process in the report makes a workload of its own, without pids, that
/// only scope rules appraise. Workloads are returned in policy order, then workload order,
/// then by lowest pid; each with every outcome of every rule that applies.
std::vector<v1::WorkloadVerdict> Evaluate(const std::vector<Policy>& policies,
                                          const v1::RuntimeReport& report,
                                          const EvaluateOptions& options = {});

/// The overall status of a set of workload verdicts: the worst of them (CONTRAINDICATED
/// over WARNING over AFFIRMING); TRUST_NONE when there is no workload or no rule applied.
v1::TrustStatus OverallStatus(const std::vector<v1::WorkloadVerdict>& workloads);

/// The worse of two statuses in the order above (NONE is the least).
v1::TrustStatus WorseStatus(v1::TrustStatus a, v1::TrustStatus b);

/// WorkloadVerdict.workload_id: lowercase hex SHA-256 over the identity's name, exe_path,
/// cgroup and container_id, each preceded by its length as 8 little-endian bytes.
std::string WorkloadId(const v1::WorkloadIdentity& identity);

/// Whether `selector` matches the process as its snapshot shows it: exe and cgroup by
/// fnmatch(3), container id by prefix, pid exactly. comm matches the snapshot's comm, or,
/// for a process that renamed itself since, a selector the node reports in matched_by.
bool SelectorMatchesSnapshot(const Selector& selector, const v1::ProcessSnapshot& process);

}  // namespace vigil::policy
