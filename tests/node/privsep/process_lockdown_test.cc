#include "node/privsep/process_lockdown.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "common/policy/node_self.h"
#include "node/procfs/procfs.h"
#include "node/seccomp/seccomp_eval.h"

namespace vigil::node::privsep {
namespace {

SeccompDecision Decide(const SeccompProgram& p, SyscallAbi abi, std::string_view name) {
  seccomp_data data{};
  data.arch = AuditArch(abi);
  data.nr = *SyscallNumber(abi, name);
  return EvaluateStack(std::span<const SeccompProgram>(&p, 1), data);
}

TEST(ProcessLockdownTest, FilterRefusesEveryDeniedSyscallWithEpermAndAllowsTheRest) {
  absl::StatusOr<std::vector<sock_filter>> insns = MainProcessFilter();
  ASSERT_TRUE(insns.ok()) << insns.status();
  absl::StatusOr<SeccompProgram> p = SeccompProgram::Create(*insns);
  ASSERT_TRUE(p.ok()) << p.status();  // the kernel's own validation rules
  for (std::string_view name : MainProcessDeniedSyscalls()) {
    SeccompDecision d = Decide(*p, SyscallAbi::kX86_64, name);
    EXPECT_EQ(d.action, v1::SECCOMP_ACTION_ERRNO) << name;
    EXPECT_EQ(d.data, static_cast<uint32_t>(EPERM)) << name;
    // x32 numbers carry the x32 bit and are refused whatever the syscall.
    if (SyscallNumber(SyscallAbi::kX32, name)) {
      EXPECT_EQ(Decide(*p, SyscallAbi::kX32, name).action, v1::SECCOMP_ACTION_ERRNO) << name;
    }
  }
  // What the probes, gRPC, OpenSSL and the TPM stack need stays allowed.
  for (std::string_view name : {"bpf", "perf_event_open", "openat", "read", "connect", "clone3",
                                "futex", "epoll_wait", "getrandom", "mmap", "ioctl", "capget"}) {
    EXPECT_EQ(Decide(*p, SyscallAbi::kX86_64, name).action, v1::SECCOMP_ACTION_ALLOW) << name;
  }
  // Any i386 syscall is refused, so `int $0x80` cannot reach ptrace under another number.
  EXPECT_EQ(Decide(*p, SyscallAbi::kI386, "getpid").action, v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(Decide(*p, SyscallAbi::kI386, "ptrace").action, v1::SECCOMP_ACTION_ERRNO);
}

// Runs `body` in a forked child; returns its exit code, or -1 when it did not exit.
int InChild(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

TEST(ProcessLockdownTest, LockedDownProcessHoldsOnlyTheMainSetUnderItsFilter) {
  ASSERT_EQ(geteuid(), 0u) << "the lockdown test drops capabilities it must hold first";
  // Exit codes name the first check that failed.
  int code = InChild([] {
    if (!LockDownMainProcess().ok()) return 10;
    absl::StatusOr<std::string> text = procfs::ReadFile("/proc/self/status");
    if (!text.ok()) return 11;
    absl::StatusOr<procfs::Status> st = procfs::ParseStatus(*text);
    if (!st.ok()) return 12;
    if (st->cap_effective != policy::kNodeMainCapabilities) return 13;
    if (st->cap_permitted != policy::kNodeMainCapabilities) return 14;
    if (st->cap_bounding != policy::kNodeMainCapabilities) return 15;
    if (st->cap_inheritable != 0 || st->cap_ambient != 0) return 16;
    if (!st->no_new_privs || st->seccomp_mode != 2 || st->seccomp_filters != 1) return 17;
    // Refused by the filter even with CAP_SYS_PTRACE held.
    errno = 0;
    if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != -1 || errno != EPERM) return 18;
    errno = 0;
    if (syscall(SYS_unshare, 0) != -1 || errno != EPERM) return 19;
    // Allowed: an ordinary syscall.
    if (syscall(SYS_getppid) != getppid()) return 20;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST(ProcessLockdownTest, RestrictCapabilitiesFailsWithoutSetpcapWhenTheBoundingSetMustShrink) {
  int code = InChild([] {
    // Keep only CAP_SYS_ADMIN: no CAP_SETPCAP is left to drop the bounding set further.
    if (!RestrictCapabilities(policy::CapabilityBit(21)).ok()) return 10;
    return absl::IsPermissionDenied(RestrictCapabilities(0)) ? 0 : 11;
  });
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace vigil::node::privsep
