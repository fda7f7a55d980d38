#include "node/privsep/process_lockdown.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/policy/node_self.h"
#include "common/policy/parser.h"
#include "common/status_macros.h"
#include "node/procfs/procfs.h"
#include "node/seccomp/seccomp_inspector.h"
#include "node/seccomp/syscall_table.h"

namespace vigil::node::privsep {
namespace {

constexpr std::string_view kDenied[] = {
    // Another process's memory and descriptors.
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    // Running programs.
    "execve", "execveat",
    // Kernel code and boot.
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    // Mounts and namespaces.
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr", "unshare", "setns",
    // The rest of the machine's state.
    "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "iopl", "ioperm", "acct", "add_key", "request_key", "keyctl",
    "quotactl", "syslog", "userfaultfd", "open_by_handle_at", "personality"};

// The highest capability this kernel knows.
int LastCapability() {
  absl::StatusOr<std::string> text = procfs::ReadFile("/proc/sys/kernel/cap_last_cap");
  int last = 0;
  if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &last) && last >= 0 &&
      last < 64) {
    return last;
  }
  return CAP_LAST_CAP;
}

absl::Status ErrnoStatus(absl::string_view what) { return absl::ErrnoToStatus(errno, what); }

sock_filter Statement(uint16_t code, uint32_t k) { return sock_filter{code, 0, 0, k}; }
sock_filter Jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  return sock_filter{code, jt, jf, k};
}

}  // namespace

absl::Status RestrictCapabilities(uint64_t keep) {
  // The bounding set first: dropping from it needs CAP_SETPCAP, which capset removes below.
  for (int cap = 0; cap <= LastCapability(); ++cap) {
    if ((keep & policy::CapabilityBit(cap)) != 0) continue;
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      return ErrnoStatus(absl::StrCat("dropping ", policy::CapabilityName(cap),
                                      " from the bounding set (needs CAP_SETPCAP)"));
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return ErrnoStatus("clearing the ambient capabilities");
  }
  __user_cap_header_struct header{.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return ErrnoStatus("capget");
  const uint64_t permitted = (uint64_t{data[1].permitted} << 32 | data[0].permitted) & keep;
  for (int i = 0; i < 2; ++i) {
    data[i].permitted = static_cast<uint32_t>(permitted >> (32 * i));
    data[i].effective = data[i].permitted;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &header, data) != 0) return ErrnoStatus("capset");
  return absl::OkStatus();
}

std::vector<std::string_view> MainProcessDeniedSyscalls() {
  return std::vector<std::string_view>(std::begin(kDenied), std::end(kDenied));
}

absl::StatusOr<std::vector<sock_filter>> MainProcessFilter() {
  std::vector<uint32_t> numbers;
  for (std::string_view name : kDenied) {
    std::optional<int> nr = SyscallNumber(SyscallAbi::kX86_64, name);
    if (!nr)
      return absl::InternalError(absl::StrCat("no x86_64 syscall named ", std::string(name)));
    numbers.push_back(static_cast<uint32_t>(*nr));
  }
  // Layout: arch check, nr load, x32 check, one test per denied number, ALLOW, then the
  // EPERM return every test jumps to.
  const size_t deny = 4 + numbers.size() + 1;
  auto to_deny = [&](size_t at) { return static_cast<uint8_t>(deny - (at + 1)); };
  static_assert(std::size(kDenied) + 5 < 256, "jump offsets are 8 bits");
  std::vector<sock_filter> f;
  f.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  f.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, kAuditArchX86_64, 0, to_deny(1)));
  f.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  f.push_back(Jump(BPF_JMP | BPF_JGE | BPF_K, kX32SyscallBit, to_deny(3), 0));
  for (uint32_t nr : numbers) {
    f.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, nr, to_deny(f.size()), 0));
  }
  f.push_back(Statement(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(Statement(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)));
  return f;
}

absl::Status LockDownMainProcess() {
  // The probe forks and makes i386 and x32 syscalls: it must run before the filter refuses
  // them, and its result is kept for the life of the process.
  (void)ProbeSyscallAbis();
  RETURN_IF_ERROR(RestrictCapabilities(policy::kNodeMainCapabilities));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoStatus("PR_SET_NO_NEW_PRIVS");
  ASSIGN_OR_RETURN(std::vector<sock_filter> filter, MainProcessFilter());
  sock_fprog prog{.len = static_cast<unsigned short>(filter.size()), .filter = filter.data()};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
    return ErrnoStatus("installing the main process's seccomp filter");
  }
  return absl::OkStatus();
}

}  // namespace vigil::node::privsep
