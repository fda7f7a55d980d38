#include "node/seccomp/seccomp_inspector.h"

#include <errno.h>
#include <linux/filter.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/digest.h"
#include "common/status_macros.h"
#include "node/seccomp/seccomp_eval.h"
#include "node/seccomp/syscall_table.h"
#include "spdlog/spdlog.h"

namespace vigil::node {
namespace {

// Far more filters than the kernel's 32768-instruction budget per path can hold; a bound
// so a misbehaving kernel interface cannot make the loop run forever.
constexpr unsigned long kMaxFilters = 8192;

// The fields of /proc/<pid>/status the inspector needs.
struct ProcStatus {
  char state = '?';
  int seccomp_mode = -1;
  int tracer_pid = 0;
};

absl::Status ErrnoError(int err, absl::string_view what) {
  std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ESRCH:
    case ENOENT:
      return absl::NotFoundError(msg);
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<ProcStatus> ReadProcStatus(int pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/status");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open (no such process?)"));
  ProcStatus st;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v = line;
    if (absl::ConsumePrefix(&v, "State:")) {
      v = absl::StripLeadingAsciiWhitespace(v);
      if (!v.empty()) st.state = v[0];
    } else if (absl::ConsumePrefix(&v, "Seccomp:")) {
      if (!absl::SimpleAtoi(v, &st.seccomp_mode)) st.seccomp_mode = -1;
    } else if (absl::ConsumePrefix(&v, "TracerPid:")) {
      if (!absl::SimpleAtoi(v, &st.tracer_pid)) st.tracer_pid = 0;
    }
  }
  if (st.seccomp_mode < 0) {
    return absl::InternalError(absl::StrCat(path, ": no readable Seccomp field"));
  }
  return st;
}

// Where a seized tracee is: whether it sits in a ptrace-stop, which signal it was about to
// receive when it stopped (to hand back on detach), and whether it has gone.
struct TraceeState {
  int pid = 0;
  bool stopped = false;
  int pending_signal = 0;
  bool gone = false;
};

// PTRACE_INTERRUPT, then wait for the tracee's next stop. With PTRACE_SEIZE that is a
// PTRACE_EVENT_STOP (interrupt or group-stop), or a signal-delivery-stop that came first:
// any ptrace-stop lets us read the filters.
absl::Status StopTracee(TraceeState* t) {
  if (ptrace(PTRACE_INTERRUPT, t->pid, nullptr, nullptr) != 0) {
    return ErrnoError(errno, absl::StrCat("ptrace(PTRACE_INTERRUPT, ", t->pid, ")"));
  }
  for (;;) {
    int status = 0;
    pid_t r = waitpid(t->pid, &status, __WALL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, absl::StrCat("waitpid(", t->pid, ")"));
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      t->gone = true;
      return absl::NotFoundError(absl::StrCat("pid ", t->pid, " exited during inspection"));
    }
    if (WIFSTOPPED(status)) {
      t->stopped = true;
      // event 0 is a signal-delivery-stop: the signal must be delivered on detach.
      if ((status >> 16) == 0) t->pending_signal = WSTOPSIG(status);
      return absl::OkStatus();
    }
  }
}

// Detaches in every case the tracee still exists, so it is never left traced or stopped.
// A tracee must be in a ptrace-stop to be detached; stop it first when it is not.
void DetachTracee(TraceeState* t) {
  if (t->gone) return;
  if (!t->stopped) {
    absl::Status s = StopTracee(t);
    if (!s.ok()) {
      spdlog::warn("seccomp inspector: cannot stop pid {} to detach: {}", t->pid,
                   std::string(s.message()));
      return;
    }
  }
  if (ptrace(PTRACE_DETACH, t->pid, nullptr,
             reinterpret_cast<void*>(static_cast<uintptr_t>(t->pending_signal))) != 0) {
    spdlog::warn("seccomp inspector: ptrace(PTRACE_DETACH, {}): {}", t->pid, std::strerror(errno));
  }
}

// Reads every installed filter of a stopped tracee, most recently installed first.
// PTRACE_SECCOMP_GET_FILTER's index 0 is the first filter installed (the oldest).
absl::StatusOr<std::vector<std::string>> ReadFilters(int pid) {
  std::vector<std::string> oldest_first;
  for (unsigned long i = 0; i < kMaxFilters; ++i) {
    long n = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, reinterpret_cast<void*>(i), nullptr);
    if (n < 0) {
      if (errno == ENOENT && i > 0) break;
      const int err = errno;
      std::string what = absl::StrCat("ptrace(PTRACE_SECCOMP_GET_FILTER, ", pid, ", ", i, ")");
      if (err == EACCES) {
        absl::StrAppend(&what, " (needs CAP_SYS_ADMIN and an inspector not itself under seccomp)");
      } else if (err == EMEDIUMTYPE) {
        absl::StrAppend(&what, " (filter is not classic BPF)");
      }
      return ErrnoError(err, what);
    }
    if (n == 0 || static_cast<size_t>(n) > kMaxSeccompInstructions) {
      return absl::InternalError(
          absl::StrCat("filter ", i, " of pid ", pid, " reports ", n, " instructions"));
    }
    std::vector<sock_filter> insns(static_cast<size_t>(n));
    long m = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, reinterpret_cast<void*>(i), insns.data());
    if (m < 0) {
      return ErrnoError(errno,
                        absl::StrCat("ptrace(PTRACE_SECCOMP_GET_FILTER, ", pid, ", ", i, ")"));
    }
    if (m != n) {
      return absl::InternalError(
          absl::StrCat("filter ", i, " of pid ", pid, " changed length while being read"));
    }
    oldest_first.emplace_back(reinterpret_cast<const char*>(insns.data()),
                              insns.size() * sizeof(sock_filter));
  }
  return std::vector<std::string>(oldest_first.rbegin(), oldest_first.rend());
}

// Seizes `pid`, reads its filters and detaches, whatever happens in between.
absl::StatusOr<std::vector<std::string>> ReadFiltersTraced(int pid, const ProcStatus& before) {
  if (ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) != 0) {
    const int err = errno;
    std::string what = absl::StrCat("ptrace(PTRACE_SEIZE, ", pid, ")");
    if (err == EPERM && before.tracer_pid != 0) {
      absl::StrAppend(&what, " (already traced by pid ", before.tracer_pid, ")");
    }
    return ErrnoError(err, what);
  }
  TraceeState tracee{.pid = pid};
  absl::Cleanup detach = [&tracee] { DetachTracee(&tracee); };
  RETURN_IF_ERROR(StopTracee(&tracee));
  return ReadFilters(pid);
}

// Exit codes of the i386 probe child.
constexpr int kProbeRan = 0;
constexpr int kProbeRefused = 1;
constexpr int kProbeWrong = 2;

// i386 getpid (arch/x86/entry/syscalls/syscall_32.tbl).
constexpr long kI386Getpid = 20;

// Runs in the forked child only: async-signal-safe calls and _exit.
[[noreturn]] void I386ProbeChild() {
  // A kernel without 32-bit emulation (or with it switched off) raises SIGSEGV at the
  // instruction: catch it rather than dump core.
  struct sigaction sa {};
  sa.sa_handler = [](int) { _exit(kProbeRefused); };
  sigaction(SIGSEGV, &sa, nullptr);
  long ret = kI386Getpid;
  // int $0x80 from 64-bit code clobbers r8-r11 (the kernel zeroes them).
  asm volatile("int $0x80" : "+a"(ret) : : "memory", "r8", "r9", "r10", "r11");
  if (ret == syscall(SYS_getpid)) _exit(kProbeRan);
  _exit(ret == -ENOSYS ? kProbeRefused : kProbeWrong);
}

std::optional<bool> ProbeI386() {
  const pid_t child = fork();
  if (child < 0) {
    spdlog::warn("seccomp inspector: fork for the i386 probe: {}", std::strerror(errno));
    return std::nullopt;
  }
  if (child == 0) I386ProbeChild();
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return std::nullopt;
  }
  if (!WIFEXITED(status)) return std::nullopt;
  if (WEXITSTATUS(status) == kProbeRan) return true;
  if (WEXITSTATUS(status) == kProbeRefused) return false;
  return std::nullopt;
}

std::optional<bool> ProbeX32() {
  errno = 0;
  const long ret = syscall(kX32SyscallBit | SYS_getpid);
  if (ret == getpid()) return true;
  if (ret == -1 && errno == ENOSYS) return false;
  return std::nullopt;
}

AbiAvailability ProbeNow() {
  absl::StatusOr<ProcStatus> self = ReadProcStatus(getpid());
  if (!self.ok() || self->seccomp_mode != SECCOMP_MODE_DISABLED) {
    spdlog::warn(
        "seccomp inspector: this process runs under seccomp (or its status is unreadable): "
        "whether the kernel executes i386 and x32 syscalls is reported as unknown");
    return {};
  }
  return AbiAvailability{.i386 = ProbeI386(), .x32 = ProbeX32()};
}

absl::Status Fail(v1::SeccompState* state, absl::Status status) {
  state->set_inspection_error(std::string(status.message()));
  return status;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadSeccompFilters(int pid) {
  if (pid <= 0) return absl::InvalidArgumentError(absl::StrCat("bad pid ", pid));
  ASSIGN_OR_RETURN(ProcStatus st, ReadProcStatus(pid));
  if (st.seccomp_mode != SECCOMP_MODE_FILTER) return std::vector<std::string>();
  return ReadFiltersTraced(pid, st);
}

absl::Status InspectSeccompFilters(int pid, const std::vector<std::string>& syscalls,
                                   v1::SeccompState* state) {
  return InspectSeccompFilters(pid, syscalls, SeccompFilterReader(), state);
}

absl::Status InspectSeccompFilters(int pid, const std::vector<std::string>& syscalls,
                                   const SeccompFilterReader& reader, v1::SeccompState* state) {
  state->clear_verdicts();
  state->clear_filter_sha256();
  state->clear_inspection_error();
  state->set_filters_inspected(false);

  if (absl::Status names = CheckSyscallNames(syscalls); !names.ok()) return Fail(state, names);
  if (pid <= 0) return Fail(state, absl::InvalidArgumentError(absl::StrCat("bad pid ", pid)));

  absl::StatusOr<ProcStatus> st = ReadProcStatus(pid);
  if (!st.ok()) return Fail(state, st.status());
  if (st->state == 'Z' || st->state == 'X') {
    return Fail(state, absl::FailedPreconditionError(
                           absl::StrCat("pid ", pid,
                                        " is a zombie: its thread-group leader has exited and "
                                        "seccomp filters are per thread")));
  }

  // Seccomp modes only move forward (disabled -> strict or filter), and neither strict nor
  // disabled needs the process to be stopped.
  if (st->seccomp_mode == SECCOMP_MODE_DISABLED || st->seccomp_mode == SECCOMP_MODE_STRICT) {
    const AbiAvailability abis = ProbeSyscallAbis();
    absl::StatusOr<std::vector<v1::SyscallVerdict>> verdicts =
        st->seccomp_mode == SECCOMP_MODE_STRICT ? StrictModeVerdicts(syscalls, abis)
                                                : EvaluateSyscalls({}, syscalls, abis);
    if (!verdicts.ok()) return Fail(state, verdicts.status());
    for (v1::SyscallVerdict& v : *verdicts) *state->add_verdicts() = std::move(v);
    state->set_filters_inspected(true);
    return absl::OkStatus();
  }
  if (st->seccomp_mode != SECCOMP_MODE_FILTER) {
    return Fail(state, absl::InternalError(
                           absl::StrCat("pid ", pid, ": unknown seccomp mode ", st->seccomp_mode)));
  }

  absl::StatusOr<std::vector<std::string>> raw = reader ? reader(pid) : ReadFiltersTraced(pid, *st);
  if (!raw.ok()) return Fail(state, raw.status());
  if (raw->empty()) {
    return Fail(state, absl::InternalError(absl::StrCat(
                           "pid ", pid, " runs in seccomp filter mode but no filter was read")));
  }

  std::vector<SeccompProgram> programs;
  programs.reserve(raw->size());
  for (size_t i = 0; i < raw->size(); ++i) {
    const std::string& bytes = (*raw)[i];
    state->add_filter_sha256(HexEncode(Sha256(bytes)));
    absl::StatusOr<SeccompProgram> p = SeccompProgram::FromBytes(bytes);
    if (!p.ok()) {
      // Reported, not trusted: no verdicts from a filter we cannot interpret exactly.
      if (state->inspection_error().empty()) {
        state->set_inspection_error(absl::StrCat("filter ", i, " (most recent first) of ",
                                                 raw->size(),
                                                 " is malformed: ", p.status().message()));
      }
      continue;
    }
    programs.push_back(*std::move(p));
  }
  if (!state->inspection_error().empty()) return absl::OkStatus();

  absl::StatusOr<std::vector<v1::SyscallVerdict>> verdicts =
      EvaluateSyscalls(programs, syscalls, ProbeSyscallAbis());
  if (!verdicts.ok()) return Fail(state, verdicts.status());
  for (v1::SyscallVerdict& v : *verdicts) *state->add_verdicts() = std::move(v);
  state->set_filters_inspected(true);
  return absl::OkStatus();
}

AbiAvailability ProbeSyscallAbis() {
  static const AbiAvailability kProbed = ProbeNow();
  return kProbed;
}

}  // namespace vigil::node
