#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bpf/events.h"
#include "common/selector.h"

namespace vigil::node {

/// The kernel-side form of `selector` (bpf/events.h), matched in sched_process_exec.
/// Selectors that set a `pid` come back inactive (their pids are seeded instead). Fails
/// when a field does not fit the kernel's fixed buffers (comm > 15 bytes, exe glob > 127).
absl::StatusOr<vigil_selector> ToKernelSelector(const Selector& selector);

/// For every cgroup under `cgroup_root` (a cgroup v2 mount), the bit mask of the selectors
/// (bit i = selectors[i]) whose cgroup_glob (fnmatch on the path relative to the root, with
/// a leading '/') or container_id (found in that path) it matches. Keys are cgroup ids (the
/// directory's inode number, as bpf_get_current_cgroup_id returns). Cgroups created later
/// are picked up by calling this again (BpfEventSource::UpdateSelectors).
std::map<uint64_t, uint32_t> CgroupSelectorMasks(const std::vector<Selector>& selectors,
                                                 const std::string& cgroup_root);

}  // namespace vigil::node
