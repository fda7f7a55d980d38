#pragma once

// Evaluation of each rule kind for one workload (used by engine.cc).

#include <vector>

#include "common/policy/engine.h"
#include "common/policy/policy.h"

namespace vigil::policy {

/// What one rule is evaluated on: the workload's processes and events, and whether the
/// node's probes ran (absent events prove nothing otherwise).
struct WorkloadEvidence {
  const Workload* workload = nullptr;
  std::vector<const v1::ProcessSnapshot*> processes;
  std::vector<const v1::RuntimeEvent*> events;
  /// The report carried a ProbeStatus.
  bool probes_ran = false;
  /// Events the probes lost since the node started (any reason).
  uint64_t events_lost = 0;
  /// The observed scopes assigned to the workload (RuntimeReport.scopes).
  std::vector<const v1::WorkloadScope*> scopes;
  /// The report carried any scope (a node that observes scopes).
  bool report_has_scopes = false;
};

/// Appends the outcomes of `rule` for `evidence` to `out` (without workload_id, which the
/// caller sets).
void EvaluateRule(const Rule& rule, const WorkloadEvidence& evidence,
                  const EvaluateOptions& options, std::vector<v1::RuleOutcome>* out);

}  // namespace vigil::policy
