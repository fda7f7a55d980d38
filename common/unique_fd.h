#pragma once

// RAII owners for file descriptors and directory streams.

#include <dirent.h>
#include <unistd.h>

#include <memory>
#include <utility>

namespace vigil {

/// Owns one file descriptor and closes it when destroyed. -1 means none. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  /// Takes ownership of `fd` (which may be -1, e.g. a failed open(2)).
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }

  /// Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }

  /// Closes the descriptor held (if any) and takes `fd`.
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

  /// Closes now and returns close(2)'s result (0, or -1 with errno set): for a file just
  /// written, where close can report a write error. Holds none afterwards.
  int Close() {
    if (fd_ < 0) return 0;
    return ::close(std::exchange(fd_, -1));
  }

 private:
  int fd_ = -1;
};

/// Closes a directory stream from opendir(3) or fdopendir(3).
struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};

/// Owns a directory stream.
using DirPtr = std::unique_ptr<DIR, DirCloser>;

}  // namespace vigil
