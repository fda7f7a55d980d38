#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace vigil::node {

/// The name of the lock file in a node's state directory.
inline constexpr char kStateLockFile[] = "vigil-node.lock";

/// An exclusive flock(2) on <state_dir>/vigil-node.lock, held for the object's life. Whoever
/// holds it owns the node's identity in that state directory and the TPM measurement log and
/// PCR it extends: `vigil-node run` for its whole life, `vigil-node check --verifier` while it
/// checks. The file holds the holder's pid (for the message a refused caller prints). The
/// kernel releases the lock when the holder exits, however it exits.
class StateDirLock {
 public:
  /// Takes the lock without waiting, creating the directory (0700) and the file as needed.
  /// FAILED_PRECONDITION, naming the holder's pid and the state directory, when another
  /// process holds it; other errors when the directory or file cannot be made or locked.
  static absl::StatusOr<std::unique_ptr<StateDirLock>> Acquire(const std::string& state_dir);

  ~StateDirLock();
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  StateDirLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace vigil::node
