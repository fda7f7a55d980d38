#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vigil::node {

/// The program `vigil-node check -- COMMAND ARGS...` runs: found like execvp(3) does (a name
/// with a '/' as is, else along PATH), or NotFound naming what was searched.
absl::StatusOr<std::string> ResolveCommand(const std::string& name);

/// A command run under observation (docs/check.md, "Running the command"). Spawn forks it
/// held before its exec, so the caller can put its pid under the probes' watch first; Release
/// lets it exec. The command is the grandchild of vigil-node: a small intermediate process
/// is its parent and reports its wait status on a pipe. That keeps its exit status safe
/// from the seccomp inspector, which waits for the process it traces and, as the command's
/// parent, would otherwise reap it. The command runs in its own process group with standard
/// input from /dev/null and its standard output sent to vigil-node's standard error (its
/// standard error stays), so vigil-node's standard output carries only the check's report.
/// It inherits no descriptor beyond 0-2, an empty signal mask, and dies with vigil-node.
class CheckedCommand {
 public:
  /// Forks the command for `path` (resolved) with `argv` (argv[0] as the user wrote it).
  static absl::StatusOr<std::unique_ptr<CheckedCommand>> Spawn(
      const std::string& path, const std::vector<std::string>& argv);
  /// Kills the command's process group (the command, if it still runs, and what it left),
  /// and reaps the command.
  ~CheckedCommand();
  CheckedCommand(const CheckedCommand&) = delete;
  CheckedCommand& operator=(const CheckedCommand&) = delete;

  /// The command's pid (also its process group id).
  pid_t pid() const { return pid_; }

  /// Lets the command exec and returns once the exec happened: when the kernel closed the
  /// close-on-exec pipe during the exec, before the new program's first instruction ran.
  /// Fails with the exec's errno when it could not exec (the command then exits 127).
  absl::Status Release();

  /// Waits up to `timeout` for the command to exit; true once it has (then wait_status()
  /// holds its status).
  bool WaitExit(absl::Duration timeout);

  /// The command's wait status (waitpid(2)) once it exited.
  std::optional<int> wait_status() const { return wait_status_; }

  /// Sends `sig` to the command's process group (its children included) while the command
  /// runs.
  void Signal(int sig) const;

  /// Once the command exited: kills (SIGKILL) what remains of its process group (children
  /// it left running in the background). True when something remained.
  bool KillRemains() const;

 private:
  CheckedCommand() = default;

  pid_t pid_ = -1;
  pid_t intermediate_ = -1;
  int gate_fd_ = -1;    // written once to let the command exec
  int exec_fd_ = -1;    // EOF at exec, or the exec's errno
  int status_fd_ = -1;  // the intermediate writes the command's pid, then its wait status
  std::optional<int> wait_status_;
};

}  // namespace vigil::node
