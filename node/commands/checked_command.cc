#include "node/commands/checked_command.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace vigil::node {
namespace {

bool Executable(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// Async-signal-safe: the whole of `n` bytes, retried on EINTR.
bool WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads exactly `n` bytes; false at EOF or on an error before that.
bool ReadAll(int fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// The command's side of the fork: only async-signal-safe calls (vigil-node has threads).
[[noreturn]] void ExecCommand(const char* path, char* const* argv, int gate, int exec_err,
                              pid_t intermediate) {
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != intermediate) _exit(127);
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int null = open("/dev/null", O_RDONLY);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    if (null != STDIN_FILENO) close(null);
  }
  dup2(STDERR_FILENO, STDOUT_FILENO);
  char go = 0;
  if (!ReadAll(gate, &go, 1)) _exit(127);  // vigil-node gave up on the command
  close(gate);
  // No descriptor of the node (probe maps, sockets) reaches the workload.
  syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
  execv(path, argv);
  const int err = errno;
  WriteAll(exec_err, &err, sizeof(err));
  _exit(127);
}

}  // namespace

absl::StatusOr<std::string> ResolveCommand(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("empty command");
  if (name.find('/') != std::string::npos) {
    if (Executable(name)) return name;
    return absl::NotFoundError(absl::StrCat("command '", name, "': not an executable file"));
  }
  const char* path_env = getenv("PATH");
  const std::string search = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  for (absl::string_view dir : absl::StrSplit(search, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (Executable(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("command '", name, "' not found in PATH"));
}

absl::StatusOr<std::unique_ptr<CheckedCommand>> CheckedCommand::Spawn(
    const std::string& path, const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  int gate[2], exec_err[2], status[2];
  if (pipe2(gate, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  if (pipe2(exec_err, O_CLOEXEC) != 0) {
    const int err = errno;
    close(gate[0]);
    close(gate[1]);
    return absl::ErrnoToStatus(err, "pipe2");
  }
  if (pipe2(status, O_CLOEXEC) != 0) {
    const int err = errno;
    for (int fd : {gate[0], gate[1], exec_err[0], exec_err[1]}) close(fd);
    return absl::ErrnoToStatus(err, "pipe2");
  }
  const pid_t node = getpid();
  const pid_t intermediate = fork();
  if (intermediate < 0) {
    const int err = errno;
    for (int fd : {gate[0], gate[1], exec_err[0], exec_err[1], status[0], status[1]}) close(fd);
    return absl::ErrnoToStatus(err, "fork");
  }
  if (intermediate == 0) {
    // The intermediate: forks the command, reports its pid and, once it exits, its status.
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != node) _exit(1);
    close(gate[1]);
    close(exec_err[0]);
    close(status[0]);
    const pid_t self = getpid();
    const pid_t command = fork();
    if (command == 0) {
      close(status[1]);
      ExecCommand(path.c_str(), args.data(), gate[0], exec_err[1], self);
    }
    close(gate[0]);
    close(exec_err[1]);
    if (command < 0 || !WriteAll(status[1], &command, sizeof(command))) _exit(1);
    int ws = 0;
    while (waitpid(command, &ws, 0) < 0) {
      if (errno != EINTR) _exit(1);
    }
    WriteAll(status[1], &ws, sizeof(ws));
    _exit(0);
  }
  close(gate[0]);
  close(exec_err[1]);
  close(status[1]);
  std::unique_ptr<CheckedCommand> c(new CheckedCommand());
  c->intermediate_ = intermediate;
  c->gate_fd_ = gate[1];
  c->exec_fd_ = exec_err[0];
  c->status_fd_ = status[0];
  pid_t command = -1;
  if (!ReadAll(c->status_fd_, &command, sizeof(command)) || command <= 0) {
    return absl::InternalError("could not fork the command");
  }
  c->pid_ = command;
  return c;
}

absl::Status CheckedCommand::Release() {
  // A held command that died meanwhile leaves the gate without a reader: the write fails
  // with EPIPE, and the SIGPIPE it raises for this thread is taken here, not fatal.
  sigset_t pipe_signal, old;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &old);
  const char go = 1;
  const bool sent = WriteAll(gate_fd_, &go, 1);
  if (!sent) {
    timespec zero{0, 0};
    sigtimedwait(&pipe_signal, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  CloseFd(&gate_fd_);
  if (!sent) return absl::InternalError("the command exited before it could exec");
  int err = 0;
  const bool failed = ReadAll(exec_fd_, &err, sizeof(err));
  CloseFd(&exec_fd_);
  if (failed) return absl::ErrnoToStatus(err, "exec");
  return absl::OkStatus();
}

bool CheckedCommand::WaitExit(absl::Duration timeout) {
  if (wait_status_.has_value()) return true;
  if (status_fd_ < 0) return false;
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
    pollfd p{status_fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1 << 30)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    int ws = 0;
    const bool got = ReadAll(status_fd_, &ws, sizeof(ws));
    CloseFd(&status_fd_);
    while (waitpid(intermediate_, nullptr, 0) < 0 && errno == EINTR) {
    }
    intermediate_ = -1;
    // Without a status the intermediate died: the command died with it (SIGKILL).
    wait_status_ = got ? ws : SIGKILL;
    return true;
  }
}

void CheckedCommand::Signal(int sig) const {
  if (pid_ > 0 && !wait_status_.has_value()) {
    // The group may not exist yet if the command has not reached setpgid: then the pid.
    if (kill(-pid_, sig) != 0) kill(pid_, sig);
  }
}

bool CheckedCommand::KillRemains() const {
  if (pid_ <= 0 || !wait_status_.has_value() || kill(-pid_, 0) != 0) return false;
  return kill(-pid_, SIGKILL) == 0;
}

CheckedCommand::~CheckedCommand() {
  CloseFd(&gate_fd_);  // a command still held at the gate exits without exec
  CloseFd(&exec_fd_);
  if (!wait_status_.has_value() && pid_ > 0) {
    Signal(SIGKILL);
    WaitExit(absl::InfiniteDuration());
  }
  KillRemains();
  CloseFd(&status_fd_);
  if (intermediate_ > 0) {
    kill(intermediate_, SIGKILL);
    while (waitpid(intermediate_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

}  // namespace vigil::node
