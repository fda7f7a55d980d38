#include "node/privsep/privsep.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/policy/node_self.h"
#include "node/privsep/privileged_server.h"
#include "node/privsep/process_lockdown.h"
#include "node/procfs/procfs.h"
#include "node/procfs/snapshotter.h"
#include "node/seccomp/seccomp_inspector.h"

namespace vigil::node::privsep {
namespace {

// The privileged process's channel, once its other descriptors are closed.
constexpr int kChannelFd = 3;

// Runs in the forked child: the main process's memory is a copy, no other thread exists.
[[noreturn]] void PrivilegedMain(int channel, pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent) _exit(1);
  prctl(PR_SET_NAME, kPrivilegedProcessName, 0, 0, 0);
  // Standard input and output become /dev/null so a stray write goes nowhere; standard
  // error stays for the few messages below.
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0) _exit(1);
  if (channel != kChannelFd && dup2(channel, kChannelFd) < 0) _exit(1);
  if (syscall(SYS_close_range, kChannelFd + 1, ~0U, 0) != 0) _exit(1);
  if (absl::Status s = RestrictCapabilities(policy::kNodePrivilegedCapabilities); !s.ok()) {
    std::fprintf(stderr, "vigil-node: privileged process: %s\n", std::string(s.message()).c_str());
    _exit(1);
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    std::fprintf(stderr, "vigil-node: privileged process: prctl: %s\n", std::strerror(errno));
    _exit(1);
  }
  _exit(ServeRequests(kChannelFd, [](int pid) { return ReadSeccompFilters(pid); }));
}

v1::NodeProcessState ReadProcessState(pid_t pid) {
  v1::NodeProcessState out;
  out.set_pid(pid);
  absl::StatusOr<procfs::Status> st = ReadProcessStatus(pid);
  if (!st.ok()) {
    out.set_read_error(std::string(st.status().message()));
    return out;
  }
  // The privileged process is never reaped while the main one runs: a zombie has exited.
  if (st->state == 'Z' || st->state == 'X') {
    out.set_read_error(absl::StrCat("pid ", pid, " has exited"));
    return out;
  }
  FillIds(*st, out.mutable_credentials());
  FillCapabilities(*st, out.mutable_capabilities());
  FillSeccompStatus(*st, out.mutable_seccomp());
  return out;
}

}  // namespace

absl::StatusOr<procfs::Status> ReadProcessStatus(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/status");
  absl::StatusOr<std::string> text = procfs::ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<procfs::Status> st = procfs::ParseStatus(*text);
  if (!st.ok())
    return absl::Status(st.status().code(), absl::StrCat(path, ": ", st.status().message()));
  return st;
}

absl::StatusOr<std::unique_ptr<PrivilegedClient>> StartPrivilegedProcess() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return absl::ErrnoToStatus(errno, "socketpair");
  }
  UniqueFd main_end(fds[0]), child_end(fds[1]);
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child < 0) return absl::ErrnoToStatus(errno, "fork of the privileged process");
  if (child == 0) {
    main_end.Reset();
    PrivilegedMain(child_end.Release(), parent);
  }
  return std::make_unique<PrivilegedClient>(std::move(main_end), child);
}

absl::StatusOr<std::unique_ptr<PrivilegedClient>> SplitByPrivilege(
    const std::function<absl::Status()>& before_lockdown) {
  absl::StatusOr<std::unique_ptr<PrivilegedClient>> client = StartPrivilegedProcess();
  if (!client.ok()) return client.status();
  if (before_lockdown) {
    if (absl::Status s = before_lockdown(); !s.ok()) return s;
  }
  if (absl::Status s = LockDownMainProcess(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("locking the main process down: ", s.message()));
  }
  return client;
}

v1::NodeSelfState ReadNodeSelfState(pid_t privileged_pid) {
  v1::NodeSelfState out;
  out.set_privilege_separated(privileged_pid > 0);
  *out.mutable_main() = ReadProcessState(getpid());
  if (privileged_pid > 0) *out.mutable_privileged() = ReadProcessState(privileged_pid);
  return out;
}

}  // namespace vigil::node::privsep
