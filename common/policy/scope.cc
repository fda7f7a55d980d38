#include "common/policy/scope.h"

#include "absl/strings/str_cat.h"
#include "common/policy/controls.h"
#include "common/policy/engine.h"

namespace vigil::policy {

std::vector<std::string> DefaultScopeControls() {
  std::vector<std::string> out;
  for (const char* id : {"CM-7", "CM-8", "CM-8(3)", "SA-9", "SC-7", "SI-7"}) {
    absl::StatusOr<std::string> c = NistControl(id);
    if (c.ok()) out.push_back(*c);
  }
  for (const char* id : {"A.5.9", "A.8.9", "A.8.19"}) {
    absl::StatusOr<std::vector<std::string>> c = IsoControls(id);
    if (c.ok()) out.insert(out.end(), c->begin(), c->end());
  }
  for (const char* id : {"CC6.1", "CC6.8", "CC8.1"}) {
    absl::StatusOr<std::string> c = Soc2Control(id);
    if (c.ok()) out.push_back(*c);
  }
  return out;
}

ScopePlacement PlaceScope(const Policy& policy, const ProcessIndex& by_pid, Placer& placer,
                          const v1::WorkloadScope& scope) {
  ScopePlacement placed;
  auto root = by_pid.find(scope.root_pid());
  if (scope.root_pid() > 0 && root != by_pid.end() &&
      root->second->exe_path() == scope.root_exe_path()) {
    const Placement p = placer.Place(scope.root_pid());
    if (p.workload >= 0) {
      placed.workload = p.workload;
      placed.identity = RootIdentity(policy.workloads[p.workload].name, p.root_pid, by_pid);
    }
  } else {
    // The root is not running (or its pid was reused): match it as the scope saw it.
    v1::ProcessSnapshot as_seen;
    as_seen.set_pid(scope.root_pid());
    as_seen.set_exe_path(scope.root_exe_path());
    as_seen.set_exe_sha256(scope.root_exe_sha256());
    as_seen.set_cgroup(scope.cgroup());
    as_seen.set_container_id(scope.container_id());
    for (const std::string& m : scope.matched_by()) as_seen.add_matched_by(m);
    placed.workload = MatchWorkload(policy, as_seen);
    if (placed.workload >= 0) {
      placed.identity.set_name(policy.workloads[placed.workload].name);
      placed.identity.set_exe_path(scope.root_exe_path());
      placed.identity.set_exe_sha256(scope.root_exe_sha256());
      placed.identity.set_cgroup(scope.cgroup());
      placed.identity.set_container_id(scope.container_id());
      placed.identity.add_exec_lineage(scope.root_exe_path());
    }
  }
  if (placed.workload >= 0) placed.workload_id = WorkloadId(placed.identity);
  return placed;
}

ScopePlacement PlaceScope(const Policy& policy, const v1::RuntimeReport& report,
                          const v1::WorkloadScope& scope) {
  ProcessIndex by_pid;
  for (const v1::ProcessSnapshot& p : report.processes()) by_pid.emplace(p.pid(), &p);
  Placer placer(policy, by_pid);
  return PlaceScope(policy, by_pid, placer, scope);
}

std::string PackageText(const v1::PackageRef& package, bool has_package) {
  if (!has_package || package.name().empty()) return "unpackaged";
  return absl::StrCat(package.name(), "@", package.version());
}

}  // namespace vigil::policy
