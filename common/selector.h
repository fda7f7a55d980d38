#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vigil {

/// Which processes the node monitors. A selector matches a process when every field it sets
/// matches; the node monitors a process when any selector matches it, and follows every
/// process such a process forks. The same selectors drive the procfs snapshot (user space)
/// and the probes' kernel-side filter (see node/probes).
struct Selector {
  /// Operator-facing name, reported in ProcessSnapshot.matched_by ("exe=/usr/bin/python*").
  std::string name;
  std::optional<int> pid;
  /// fnmatch(3) pattern on the target of /proc/<pid>/exe.
  std::string exe_glob;
  /// Exact match on /proc/<pid>/comm (at most 15 bytes, as the kernel truncates).
  std::string comm;
  /// fnmatch(3) pattern on the process's cgroup v2 path (e.g. "/system.slice/agent*").
  std::string cgroup_glob;
  /// Container id (64 hex, or a unique prefix of at least 12) found in the cgroup path.
  std::string container_id;
};

/// Parses one selector from its command-line or config form: comma-separated key=value
/// pairs with keys pid, exe, comm, cgroup, container ("exe=/opt/agent/*,comm=agent").
absl::StatusOr<Selector> ParseSelector(const std::string& text);

}  // namespace vigil
