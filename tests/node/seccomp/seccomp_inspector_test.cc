#include "node/seccomp/seccomp_inspector.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/digest.h"

namespace vigil::node {
namespace {

constexpr uint32_t kNr = offsetof(seccomp_data, nr);
constexpr uint32_t kArch = offsetof(seccomp_data, arch);

// x32 and i386 numbers (arch/x86/entry/syscalls/syscall_{64,32}.tbl).
constexpr long kX32Ptrace = __X32_SYSCALL_BIT | 521;
constexpr long kI386Ptrace = 26;
constexpr long kI386Getppid = 64;

// Filter 1 (installed first): kill foreign arches; ptrace and process_vm_readv fail with
// EPERM, process_vm_writev kills the process.
const std::vector<sock_filter> kOlderFilter = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 2, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 1, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_writev, 2, 3),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),  // unreachable filler
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

// Filter 2 (stacked on top): bpf and process_vm_readv fail with EACCES (for readv this
// overrides filter 1's EPERM: equal actions take the newest filter's data), and
// process_vm_writev gets EPERM (filter 1's KILL_PROCESS still wins).
const std::vector<sock_filter> kNewerFilter = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_bpf, 1, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_writev, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

std::string FilterBytes(const std::vector<sock_filter>& f) {
  return std::string(reinterpret_cast<const char*>(f.data()), f.size() * sizeof(sock_filter));
}

bool Install(const std::vector<sock_filter>& f) {
  sock_fprog prog{static_cast<unsigned short>(f.size()), const_cast<sock_filter*>(f.data())};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

// What the child saw when it made the filtered calls itself.
struct GroundTruth {
  int installed = 0;
  int ptrace_errno = 0;
  int readv_errno = 0;
  int bpf_errno = 0;
  int writev_term_signal = 0;  // of a grandchild that called process_vm_writev
  int x32_ptrace_errno = 0;    // x32 ptrace(PTRACE_PEEKUSER, 1): passes both filters
};

// A forked child: runs `setup` (which may write a report to the fd it gets), then echoes
// every byte it reads back, proving it runs; exits when the command pipe closes. Killed
// and reaped on destruction.
class Child {
 public:
  explicit Child(const std::function<void(int report_fd)>& setup) {
    int cmd[2], reply[2];
    EXPECT_EQ(pipe(cmd), 0);
    EXPECT_EQ(pipe(reply), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(cmd[1]);
      close(reply[0]);
      setup(reply[1]);
      char c;
      while (syscall(SYS_read, cmd[0], &c, 1) == 1) syscall(SYS_write, reply[1], &c, 1);
      syscall(SYS_exit_group, 0);
    }
    close(cmd[0]);
    close(reply[1]);
    to_child_ = cmd[1];
    from_child_ = reply[0];
  }
  ~Child() {
    close(to_child_);
    close(from_child_);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, __WALL);
  }

  pid_t pid() const { return pid_; }

  template <typename T>
  bool ReadReport(T* out) {
    return read(from_child_, out, sizeof(T)) == static_cast<ssize_t>(sizeof(T));
  }

  // True when the child answers: it is running, not stopped.
  bool Ping() {
    char c = 'p';
    if (write(to_child_, &c, 1) != 1) return false;
    return read(from_child_, &c, 1) == 1 && c == 'p';
  }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
};

// The State letter and TracerPid from /proc/<pid>/status.
std::pair<char, int> StateOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  char state = '?';
  int tracer = -1;
  while (std::getline(in, line)) {
    if (line.rfind("State:", 0) == 0) state = line[line.find_first_not_of(" \t", 6)];
    if (line.rfind("TracerPid:", 0) == 0) tracer = std::stoi(line.substr(10));
  }
  return {state, tracer};
}

// The Seccomp field of /proc/<pid>/status.
int SeccompModeOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Seccomp:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

void StackedFiltersChild(int report_fd) {
  GroundTruth t;
  t.installed = Install(kOlderFilter) && Install(kNewerFilter);
  errno = 0;
  // Harmless if the filter failed open: PEEKUSER of an untraced pid fails with ESRCH.
  syscall(SYS_ptrace, PTRACE_PEEKUSER, 1, 0, 0);
  t.ptrace_errno = errno;
  char buf[8] = "secret";
  char dst[8];
  iovec local{dst, sizeof(dst)}, remote{buf, sizeof(buf)};
  errno = 0;
  syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
  t.readv_errno = errno;
  errno = 0;
  syscall(SYS_bpf, -1, nullptr, 0);
  t.bpf_errno = errno;
  pid_t g = fork();
  if (g == 0) {
    syscall(SYS_process_vm_writev, getppid(), &local, 1, &remote, 1, 0);
    syscall(SYS_exit_group, 0);
  }
  int status = 0;
  waitpid(g, &status, 0);
  t.writev_term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  errno = 0;
  syscall(kX32Ptrace, PTRACE_PEEKUSER, 1, 0, 0);
  t.x32_ptrace_errno = errno;
  syscall(SYS_write, report_fd, &t, sizeof(t));
}

// The verdict for `name` through `arch`, or nullptr.
const v1::SyscallVerdict* Find(const v1::SeccompState& s, const std::string& name,
                               const std::string& arch = "x86_64") {
  for (const auto& v : s.verdicts()) {
    if (v.syscall() == name && v.arch() == arch) return &v;
  }
  return nullptr;
}

TEST(SeccompInspectorTest, ReportsStackedFilterVerdictsThatMatchTheKernel) {
  Child child(StackedFiltersChild);
  GroundTruth truth;
  ASSERT_TRUE(child.ReadReport(&truth));
  ASSERT_EQ(truth.installed, 1);

  v1::SeccompState state;
  absl::Status s = InspectSeccompFilters(
      child.pid(), {"ptrace", "process_vm_readv", "process_vm_writev", "bpf", "getpid"}, &state);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(state.filters_inspected());
  EXPECT_EQ(state.inspection_error(), "");
  ASSERT_EQ(state.verdicts_size(), 5 * 3);  // each through x86_64, i386 and x32

  const v1::SyscallVerdict* ptrace_v = Find(state, "ptrace");
  const v1::SyscallVerdict* readv_v = Find(state, "process_vm_readv");
  const v1::SyscallVerdict* writev_v = Find(state, "process_vm_writev");
  const v1::SyscallVerdict* bpf_v = Find(state, "bpf");
  const v1::SyscallVerdict* getpid_v = Find(state, "getpid");
  ASSERT_TRUE(ptrace_v && readv_v && writev_v && bpf_v && getpid_v);

  EXPECT_EQ(ptrace_v->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(ptrace_v->data(), static_cast<uint32_t>(EPERM));
  EXPECT_EQ(ptrace_v->number(), SYS_ptrace);
  EXPECT_EQ(readv_v->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(readv_v->data(), static_cast<uint32_t>(EACCES));
  EXPECT_EQ(writev_v->action(), v1::SECCOMP_ACTION_KILL_PROCESS);
  EXPECT_EQ(bpf_v->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(bpf_v->data(), static_cast<uint32_t>(EACCES));
  EXPECT_EQ(getpid_v->action(), v1::SECCOMP_ACTION_ALLOW);

  // The child's own experience agrees with every verdict.
  EXPECT_EQ(static_cast<uint32_t>(truth.ptrace_errno), ptrace_v->data());
  EXPECT_EQ(static_cast<uint32_t>(truth.readv_errno), readv_v->data());
  EXPECT_EQ(static_cast<uint32_t>(truth.bpf_errno), bpf_v->data());
  EXPECT_EQ(truth.writev_term_signal, SIGSYS);

  // The older filter kills every i386 syscall; x32 numbers pass both filters (neither
  // rejects the x32 bit), so what the native verdicts deny runs through x32.
  const AbiAvailability abis = ProbeSyscallAbis();
  for (const char* name : {"ptrace", "process_vm_readv", "process_vm_writev", "bpf", "getpid"}) {
    const v1::SyscallVerdict* i386 = Find(state, name, "i386");
    const v1::SyscallVerdict* x32 = Find(state, name, "x32");
    ASSERT_TRUE(i386 && x32) << name;
    EXPECT_EQ(i386->action(), v1::SECCOMP_ACTION_KILL_PROCESS) << name;
    EXPECT_FALSE(i386->bypass()) << name;
    EXPECT_EQ(x32->action(), v1::SECCOMP_ACTION_ALLOW) << name;
    EXPECT_EQ(x32->bypass(), std::string(name) != "getpid") << name;
    EXPECT_EQ(i386->has_abi_available(), abis.i386.has_value()) << name;
    EXPECT_EQ(x32->has_abi_available(), abis.x32.has_value()) << name;
    EXPECT_EQ(x32->abi_available(), abis.x32.value_or(false)) << name;
  }
  EXPECT_EQ(Find(state, "ptrace", "x32")->number(), kX32Ptrace);
  // The child's x32 ptrace reached the kernel: it ran (ESRCH: pid 1 is not its tracee) or
  // the kernel has no x32 (ENOSYS); the filters returned no EPERM.
  ASSERT_TRUE(abis.x32.has_value());
  EXPECT_EQ(truth.x32_ptrace_errno, *abis.x32 ? ESRCH : ENOSYS);

  // Filter digests, most recently installed first.
  ASSERT_EQ(state.filter_sha256_size(), 2);
  EXPECT_EQ(state.filter_sha256(0), HexEncode(Sha256(FilterBytes(kNewerFilter))));
  EXPECT_EQ(state.filter_sha256(1), HexEncode(Sha256(FilterBytes(kOlderFilter))));

  // Not left stopped or traced, and it still runs.
  auto [st, tracer] = StateOf(child.pid());
  EXPECT_NE(st, 't');
  EXPECT_NE(st, 'T');
  EXPECT_EQ(tracer, 0);
  EXPECT_TRUE(child.Ping());

  // A second inspection sees the same thing.
  v1::SeccompState again;
  ASSERT_TRUE(InspectSeccompFilters(child.pid(), {"ptrace"}, &again).ok());
  EXPECT_EQ(again.verdicts(0).action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_TRUE(child.Ping());
}

TEST(SeccompInspectorTest, ProcessWithoutFiltersGetsAllowVerdicts) {
  Child child([](int fd) { syscall(SYS_write, fd, "r", 1); });
  char ready;
  ASSERT_TRUE(child.ReadReport(&ready));
  v1::SeccompState state;
  ASSERT_TRUE(InspectSeccompFilters(child.pid(), {"ptrace", "unshare"}, &state).ok());
  EXPECT_TRUE(state.filters_inspected());
  EXPECT_EQ(state.filter_sha256_size(), 0);
  ASSERT_EQ(state.verdicts_size(), 2 * 3);
  for (const auto& v : state.verdicts()) {
    EXPECT_EQ(v.action(), v1::SECCOMP_ACTION_ALLOW) << v.syscall() << " " << v.arch();
    EXPECT_FALSE(v.bypass()) << v.syscall() << " " << v.arch();
  }
  EXPECT_TRUE(child.Ping());
}

TEST(SeccompInspectorTest, StrictModeKillsAllButReadWriteExitSigreturn) {
  Child child([](int fd) {
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0);
    syscall(SYS_write, fd, "r", 1);
  });
  char ready;
  ASSERT_TRUE(child.ReadReport(&ready));
  v1::SeccompState state;
  ASSERT_TRUE(InspectSeccompFilters(child.pid(), {"read", "ptrace"}, &state).ok());
  ASSERT_EQ(state.verdicts_size(), 2 * 3);
  EXPECT_EQ(Find(state, "read")->action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_EQ(Find(state, "read", "i386")->action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_EQ(Find(state, "read", "x32")->action(), v1::SECCOMP_ACTION_KILL_THREAD);
  for (const char* arch : {"x86_64", "i386", "x32"}) {
    EXPECT_EQ(Find(state, "ptrace", arch)->action(), v1::SECCOMP_ACTION_KILL_THREAD) << arch;
  }
  EXPECT_TRUE(child.Ping());
}

TEST(SeccompInspectorTest, LeavesAGroupStoppedProcessStoppedAndReadsItsFilters) {
  Child child([](int fd) {
    int ok = Install(kOlderFilter);
    syscall(SYS_write, fd, &ok, sizeof(ok));
  });
  int ok = 0;
  ASSERT_TRUE(child.ReadReport(&ok));
  ASSERT_EQ(ok, 1);
  ASSERT_EQ(kill(child.pid(), SIGSTOP), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child.pid(), &status, WUNTRACED), child.pid());
  ASSERT_TRUE(WIFSTOPPED(status));

  v1::SeccompState state;
  absl::Status s = InspectSeccompFilters(child.pid(), {"ptrace"}, &state);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(state.verdicts(0).action(), v1::SECCOMP_ACTION_ERRNO);
  // Detaching wakes the child, which re-enters the group stop on its own; wait for it to
  // settle: 'T' (stopped, as before) or 'S' (wrongly resumed: blocked reading its pipe).
  char settled = StateOf(child.pid()).first;
  while (settled == 'R' || settled == 't') {
    sched_yield();
    settled = StateOf(child.pid()).first;
  }
  EXPECT_EQ(settled, 'T');
  EXPECT_EQ(StateOf(child.pid()).second, 0);

  ASSERT_EQ(kill(child.pid(), SIGCONT), 0);
  EXPECT_TRUE(child.Ping());
}

TEST(SeccompInspectorTest, ReportsAnAlreadyTracedProcessWithoutDisturbingIt) {
  Child child([](int fd) {
    // The test process becomes the tracer; the inspector's seize must then fail.
    int ok = ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0 && Install(kOlderFilter);
    syscall(SYS_write, fd, &ok, sizeof(ok));
  });
  int ok = 0;
  ASSERT_TRUE(child.ReadReport(&ok));
  ASSERT_EQ(ok, 1);
  v1::SeccompState state;
  absl::Status s = InspectSeccompFilters(child.pid(), {"ptrace"}, &state);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(state.filters_inspected());
  EXPECT_EQ(state.verdicts_size(), 0);
  EXPECT_NE(state.inspection_error().find("already traced"), std::string::npos)
      << state.inspection_error();
  EXPECT_TRUE(child.Ping());
}

TEST(SeccompInspectorTest, FailsWithReasonForAMissingProcess) {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);  // reaped: the pid names no process now
  v1::SeccompState state;
  absl::Status s = InspectSeccompFilters(pid, {"ptrace"}, &state);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_FALSE(state.inspection_error().empty());
  EXPECT_FALSE(state.filters_inspected());
}

TEST(SeccompInspectorTest, RefusesUnknownSyscallNames) {
  v1::SeccompState state;
  absl::Status s = InspectSeccompFilters(getpid(), {"ptrace", "not_a_syscall"}, &state);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(state.inspection_error().find("not_a_syscall"), std::string::npos);
}

// Runs in a forked child: makes i386 syscall `nr` with `int $0x80` and returns its result,
// or exits with kFaulted when the kernel refuses the instruction (no 32-bit emulation).
constexpr int kFaulted = 99;
long I386Syscall(long nr, long a = 0, long b = 0) {
  struct sigaction sa {};
  sa.sa_handler = [](int) { _exit(kFaulted); };
  sigaction(SIGSEGV, &sa, nullptr);
  long ret = nr;
  asm volatile("int $0x80" : "+a"(ret) : "b"(a), "c"(b) : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

// What happened to a child running `body`: its exit code, or kFaulted.
int ExitCodeOf(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(SeccompInspectorTest, ProbesWhichAbisTheKernelRuns) {
  // The test runs without seccomp, so the probe must have an answer.
  ASSERT_EQ(SeccompModeOf(getpid()), 0);
  const AbiAvailability abis = ProbeSyscallAbis();
  ASSERT_TRUE(abis.i386.has_value());
  ASSERT_TRUE(abis.x32.has_value());

  // Ground truth through other syscalls than the probe's getpid: getppid.
  errno = 0;
  const long x32 = syscall(__X32_SYSCALL_BIT | SYS_getppid);
  const int x32_errno = errno;
  if (*abis.x32) {
    EXPECT_EQ(x32, getppid());
  } else {
    EXPECT_EQ(x32, -1);
    EXPECT_EQ(x32_errno, ENOSYS);
  }

  const int i386 = ExitCodeOf([] {
    const long ppid = I386Syscall(kI386Getppid);
    return ppid == syscall(SYS_getppid) ? 0 : 1;
  });
  EXPECT_EQ(i386, *abis.i386 ? 0 : kFaulted);

  // Asking again gives the same answer.
  EXPECT_EQ(ProbeSyscallAbis().i386, abis.i386);
  EXPECT_EQ(ProbeSyscallAbis().x32, abis.x32);
}

// (a) on a real process: an x86_64 deny list without an arch check.
TEST(SeccompInspectorTest, ReportsTheI386BypassOfAFilterWithoutArchCheck) {
  static const std::vector<sock_filter> kNoArchCheck = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct Truth {
    int installed = 0;
    int native_ptrace_errno = 0;
    int i386_ptrace = 0;  // the child's exit code: 0 ESRCH, 1 EPERM, 2 other, or kFaulted
  };
  Child child([](int fd) {
    Truth t;
    t.installed = Install(kNoArchCheck);
    errno = 0;
    syscall(SYS_ptrace, PTRACE_PEEKUSER, 1, 0, 0);
    t.native_ptrace_errno = errno;
    t.i386_ptrace = ExitCodeOf([] {
      const long r = I386Syscall(kI386Ptrace, PTRACE_PEEKUSER, 1);
      return r == -ESRCH ? 0 : r == -EPERM ? 1 : 2;
    });
    syscall(SYS_write, fd, &t, sizeof(t));
  });
  Truth truth;
  ASSERT_TRUE(child.ReadReport(&truth));
  ASSERT_EQ(truth.installed, 1);

  v1::SeccompState state;
  absl::Status s = InspectSeccompFilters(child.pid(), {"ptrace", "process_vm_readv"}, &state);
  ASSERT_TRUE(s.ok()) << s;
  const v1::SyscallVerdict* native = Find(state, "ptrace");
  const v1::SyscallVerdict* i386 = Find(state, "ptrace", "i386");
  ASSERT_TRUE(native && i386);
  EXPECT_EQ(native->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(static_cast<uint32_t>(truth.native_ptrace_errno), native->data());
  EXPECT_FALSE(native->bypass());
  EXPECT_EQ(i386->number(), kI386Ptrace);
  EXPECT_EQ(i386->action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_TRUE(i386->bypass());
  EXPECT_TRUE(Find(state, "process_vm_readv", "i386")->bypass());
  EXPECT_TRUE(Find(state, "ptrace", "x32")->bypass());

  // What the kernel did with the child's own i386 ptrace: on a kernel with 32-bit
  // emulation it passed the filter and ran (ESRCH, not EPERM); without, the instruction
  // faulted before any syscall.
  const AbiAvailability abis = ProbeSyscallAbis();
  ASSERT_TRUE(abis.i386.has_value());
  ASSERT_TRUE(i386->has_abi_available());
  EXPECT_EQ(i386->abi_available(), *abis.i386);
  EXPECT_EQ(truth.i386_ptrace, *abis.i386 ? 0 : kFaulted);
  EXPECT_TRUE(child.Ping());
}

}  // namespace
}  // namespace vigil::node
