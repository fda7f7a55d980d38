#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// Reads the seccomp filters installed in `pid` (PTRACE_SECCOMP_GET_FILTER, detaching
/// cleanly and never leaving the process stopped) and evaluates them, combined as the
/// kernel combines stacked filters, for each named syscall on x86_64. Fills `verdicts`,
/// `filters_inspected`, `inspection_error` and `filter_sha256` of `state`; the caller fills
/// `mode`, `filter_count` and `no_new_privs` from /proc/<pid>/status. A process without
/// filters gets ALLOW verdicts. A malformed filter is reported in `inspection_error` and its
/// verdicts are not trusted (left empty). Returns an error only when the filters could not
/// be read at all (the reason is also put in `inspection_error`).
absl::Status InspectSeccompFilters(int pid, const std::vector<std::string>& syscalls,
                                   v1::SeccompState* state);

}  // namespace vigil::node
