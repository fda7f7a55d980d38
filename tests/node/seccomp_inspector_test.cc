#include "node/seccomp_inspector.h"

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
  syscall(SYS_write, report_fd, &t, sizeof(t));
}

const v1::SyscallVerdict* Find(const v1::SeccompState& s, const std::string& name) {
  for (const auto& v : s.verdicts()) {
    if (v.syscall() == name) return &v;
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
  ASSERT_EQ(state.verdicts_size(), 5);

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
  ASSERT_EQ(state.verdicts_size(), 2);
  EXPECT_EQ(state.verdicts(0).action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_EQ(state.verdicts(1).action(), v1::SECCOMP_ACTION_ALLOW);
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
  ASSERT_EQ(state.verdicts_size(), 2);
  EXPECT_EQ(state.verdicts(0).action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_EQ(state.verdicts(1).action(), v1::SECCOMP_ACTION_KILL_THREAD);
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

}  // namespace
}  // namespace vigil::node
