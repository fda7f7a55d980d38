#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vigil::node::privsep {

/// Keeps only the capabilities in `keep` (a /proc/<pid>/status mask) for this thread and
/// what it later creates: drops every other one from the bounding set (PR_CAPBSET_DROP,
/// which needs CAP_SETPCAP unless the set already holds nothing more), clears the ambient
/// and inheritable sets and sets permitted and effective to `keep` & permitted. Call before
/// any thread starts: capability sets are per thread.
absl::Status RestrictCapabilities(uint64_t keep);

/// The syscalls the main process's seccomp filter refuses with EPERM once it is locked
/// down: another process's memory (ptrace, process_vm_readv/writev, pidfd_getfd), running
/// programs (execve, execveat), kernel code and boot (init_module, finit_module,
/// delete_module, kexec_load, kexec_file_load, reboot), mounts and namespaces (mount,
/// umount2, pivot_root, chroot, the new mount API, unshare, setns), swap, clocks, host
/// names, raw I/O ports, process accounting, the kernel keyring, quotas, the kernel log,
/// userfaultfd, open_by_handle_at and personality.
std::vector<std::string_view> MainProcessDeniedSyscalls();

/// The main process's filter: EPERM for MainProcessDeniedSyscalls, for every x32 syscall and
/// for every syscall not made through the x86_64 ABI (i386 `int $0x80`); everything else is
/// allowed. Fails only when a denied name is missing from the syscall table.
absl::StatusOr<std::vector<sock_filter>> MainProcessFilter();

/// Locks the main process down after the privileged process is forked: runs the ABI probe
/// the seccomp evaluator needs while this process is still unfiltered (ProbeSyscallAbis),
/// restricts the capabilities to policy::kNodeMainCapabilities, sets no_new_privs and
/// installs MainProcessFilter. Call before any thread starts.
absl::Status LockDownMainProcess();

}  // namespace vigil::node::privsep
