#include "common/policy/placement.h"

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "common/policy/engine.h"

namespace vigil::policy {
namespace {

// The parent a process was followed from, when the node says so.
std::optional<int> InheritedFrom(const v1::ProcessSnapshot& p) {
  for (const std::string& m : p.matched_by()) {
    int ppid = 0;
    if (absl::StartsWith(m, "inherited:") &&
        absl::SimpleAtoi(absl::string_view(m).substr(10), &ppid)) {
      return ppid;
    }
  }
  return std::nullopt;
}

}  // namespace

int MatchWorkload(const Policy& policy, const v1::ProcessSnapshot& process) {
  for (size_t w = 0; w < policy.workloads.size(); ++w) {
    for (const Selector& s : policy.workloads[w].selectors) {
      if (SelectorMatchesSnapshot(s, process)) return static_cast<int>(w);
    }
  }
  return -1;
}

Placement Placer::Place(int pid) {
  if (auto it = done_.find(pid); it != done_.end()) return it->second;
  Placement placement;
  if (!visiting_.insert(pid).second) return placement;  // a ppid cycle in forged input
  const v1::ProcessSnapshot& p = *by_pid_.at(pid);
  if (std::optional<int> parent = InheritedFrom(p); parent && by_pid_.count(*parent) != 0) {
    placement = Place(*parent);
  }
  if (placement.workload < 0) {
    if (int w = MatchWorkload(policy_, p); w >= 0) placement = {w, pid};
  }
  visiting_.erase(pid);
  done_[pid] = placement;
  return placement;
}

std::vector<std::string> ExecLineage(int pid, const ProcessIndex& by_pid) {
  std::vector<std::string> lineage;
  std::set<int> seen;
  for (auto it = by_pid.find(pid); it != by_pid.end() && seen.insert(it->first).second;
       it = by_pid.find(it->second->ppid())) {
    lineage.push_back(it->second->exe_path());
  }
  std::reverse(lineage.begin(), lineage.end());
  return lineage;
}

v1::WorkloadIdentity RootIdentity(const std::string& name, int root_pid,
                                  const ProcessIndex& by_pid) {
  const v1::ProcessSnapshot& root = *by_pid.at(root_pid);
  v1::WorkloadIdentity identity;
  identity.set_name(name);
  identity.set_exe_path(root.exe_path());
  identity.set_exe_sha256(root.exe_sha256());
  identity.set_cgroup(root.cgroup());
  identity.set_container_id(root.container_id());
  for (std::string& e : ExecLineage(root_pid, by_pid)) identity.add_exec_lineage(e);
  return identity;
}

}  // namespace vigil::policy
