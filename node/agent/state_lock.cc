#include "node/agent/state_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vigil::node {
namespace {

// The pid the holder wrote, or "" when the file holds none (yet).
std::string HolderPid(int fd) {
  char buf[32] = {};
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  int pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(std::string(buf, n)), &pid) || pid <= 0) {
    return "";
  }
  return absl::StrCat(pid);
}

}  // namespace

absl::StatusOr<std::unique_ptr<StateDirLock>> StateDirLock::Acquire(const std::string& state_dir) {
  std::error_code ec;
  if (std::filesystem::create_directories(state_dir, ec); ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the state directory ", state_dir, ": ", ec.message()));
  }
  const std::string path = absl::StrCat(state_dir, "/", kStateLockFile);
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  }
  std::unique_ptr<StateDirLock> lock(new StateDirLock(fd, path));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      const std::string pid = HolderPid(fd);
      return absl::FailedPreconditionError(
          absl::StrCat("a vigil-node run holds this node's TPM log: ",
                       pid.empty() ? "another process" : absl::StrCat("pid ", pid),
                       " holds the lock on the state directory ", state_dir, " (", path, ")"));
    }
    return absl::InternalError(absl::StrCat("cannot lock ", path, ": ", strerror(err)));
  }
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", strerror(errno)));
  }
  return lock;
}

StateDirLock::~StateDirLock() {
  // Closing the descriptor releases the lock; the file stays (removing it would race with a
  // process that opened it and waits to lock it).
  close(fd_);
}

}  // namespace vigil::node
