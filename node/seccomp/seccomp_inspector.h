#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "node/seccomp/seccomp_eval.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// Reads the seccomp filters installed in `pid` (PTRACE_SECCOMP_GET_FILTER, detaching
/// cleanly and never leaving the process stopped) and evaluates them, combined as the
/// kernel combines stacked filters, for each named syscall through every ABI that has it
/// (x86_64, i386, x32; see EvaluateSyscalls), marking each verdict with whether this
/// kernel executes its ABI (ProbeSyscallAbis). Fills `verdicts`, `filters_inspected`,
/// `inspection_error` and `filter_sha256` of `state`; the caller fills `mode`,
/// `filter_count` and `no_new_privs` from /proc/<pid>/status. A process without filters gets
/// ALLOW verdicts. A malformed filter is reported in `inspection_error` and its verdicts are
/// not trusted (left empty). Returns an error only when the filters could not be read at all
/// (the reason is also put in `inspection_error`).
absl::Status InspectSeccompFilters(int pid, const std::vector<std::string>& syscalls,
                                   v1::SeccompState* state);

/// Reads the raw classic-BPF filters installed in `pid`, most recently installed first.
/// ReadSeccompFilters is the in-process reader; `vigil-node run` passes one that asks its
/// privileged process instead (node/privsep).
using SeccompFilterReader = std::function<absl::StatusOr<std::vector<std::string>>(int pid)>;

/// InspectSeccompFilters reading the filters through `reader` (the in-process reader when
/// empty).
absl::Status InspectSeccompFilters(int pid, const std::vector<std::string>& syscalls,
                                   const SeccompFilterReader& reader, v1::SeccompState* state);

/// Seizes `pid` with ptrace, reads every installed filter (PTRACE_SECCOMP_GET_FILTER, most
/// recently installed first) and detaches, never leaving the process stopped. Needs
/// CAP_SYS_ADMIN and a caller without a seccomp filter of its own, plus the ptrace access
/// CAP_SYS_PTRACE grants. A process without filters has none (an empty list).
absl::StatusOr<std::vector<std::string>> ReadSeccompFilters(int pid);

/// Which non-native syscall ABIs this machine's kernel executes, found once per process by
/// making a harmless syscall (getpid) through each: x32 directly (a kernel without x32
/// fails the x32 number with ENOSYS), i386 with `int $0x80` in a forked child (a kernel
/// without 32-bit emulation faults the instruction). Unknown (nullopt) when this process
/// runs under seccomp itself, since its own filter could answer in place of the kernel, or
/// when a probe gives an answer that is neither.
AbiAvailability ProbeSyscallAbis();

}  // namespace vigil::node
