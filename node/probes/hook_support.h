#pragma once

#include <string>
#include <vector>

namespace vigil::node {

/// Which BPF hook kinds this kernel accepts, found by loading and attaching a trivial
/// program of each kind (a program that returns 0, detached at once). Nothing is assumed
/// from the kernel version or its configuration: a kind counts as available only when the
/// kernel took the program and the attachment.
struct HookSupport {
  bool fentry = false;        ///< fentry on the syscall functions (`__x64_sys_ptrace`)
  bool fexit = false;         ///< fexit on the same
  bool lsm = false;           ///< BPF LSM (`bpf_lsm_file_mprotect`)
  bool kprobe_multi = false;  ///< a kprobe.multi link on the syscall function
  bool kprobe = false;        ///< a kprobe (perf event of the kprobe PMU) on the same
  /// The kinds that attached, cheapest first ("fentry", "fexit", ...); tracepoints, the
  /// baseline, are not probed here (each tracepoint is checked by the loader) and not listed.
  std::vector<std::string> available;
  /// One line per refused kind with the errno name and, where it helps, why:
  /// "fentry: EPERM", "kprobe: ENOENT (no kprobe PMU: kernel built without kprobes)".
  std::vector<std::string> refused;
};

/// The kernel function of syscall `name` on this architecture, which fentry, fexit and
/// kprobes attach to: "__x64_sys_ptrace" on x86_64, "__arm64_sys_ptrace" on aarch64.
std::string SyscallFunction(const std::string& name);

/// Probes fentry and fexit on the syscall function of ptrace, BPF LSM (on
/// bpf_lsm_file_mprotect), kprobe.multi and a kprobe on the same syscall function.
HookSupport DetectHookSupport();

}  // namespace vigil::node
