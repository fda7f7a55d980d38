#pragma once

// Where the processes of a report belong under one policy (docs/policy.md, "Workload
// identity"): shared by the rule engine and by the assignment of observed scopes to
// workloads (common/policy/scope.h), so both place a root the same way.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/policy/policy.h"
#include "vigil/v1/attestation.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::policy {

/// The processes of a report by pid.
using ProcessIndex = std::map<int, const v1::ProcessSnapshot*>;

/// Where one process belongs under one policy: the workload and the process its identity
/// comes from (the one a selector matched; its descendants inherit it).
struct Placement {
  int workload = -1;  // index into Policy::workloads; -1 when unselected
  int root_pid = 0;
};

/// Places processes: the workload of its parent when it was followed from a monitored
/// parent ("inherited:<ppid>" in matched_by) and that parent is in the report, else the
/// first workload whose selector matches it. Remembers what it placed.
class Placer {
 public:
  /// `policy` and `by_pid` must outlive the placer.
  Placer(const Policy& policy, const ProcessIndex& by_pid) : policy_(policy), by_pid_(by_pid) {}

  /// `pid` must be in the index.
  Placement Place(int pid);

 private:
  const Policy& policy_;
  const ProcessIndex& by_pid_;
  std::map<int, Placement> done_;
  std::set<int> visiting_;
};

/// Executable paths from the outermost monitored ancestor of `pid` to `pid`.
std::vector<std::string> ExecLineage(int pid, const ProcessIndex& by_pid);

/// The identity of the workload named `name` whose root is `root_pid` (in the index).
v1::WorkloadIdentity RootIdentity(const std::string& name, int root_pid,
                                  const ProcessIndex& by_pid);

/// The first workload of `policy` one of whose selectors matches `process`; -1 for none.
int MatchWorkload(const Policy& policy, const v1::ProcessSnapshot& process);

}  // namespace vigil::policy
