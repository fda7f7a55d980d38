#include "cli/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace vigil::cli {
namespace {

absl::Status Errno(const std::string& what) {
  const int e = errno;
  const std::string message = absl::StrCat(what, ": ", std::strerror(e));
  return e == EEXIST ? absl::AlreadyExistsError(message) : absl::InternalError(message);
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents,
                                 bool replace) {
  std::string tmp = absl::StrCat(path, ".tmp-XXXXXX");
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return Errno(tmp);
  bool keep_tmp = false;
  absl::Cleanup cleanup = [&] {
    if (fd >= 0) close(fd);
    if (!keep_tmp) unlink(tmp.c_str());
  };
  if (fchmod(fd, 0644) != 0) return Errno(tmp);
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno(tmp);
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return Errno(tmp);
  if (close(fd) != 0) {
    fd = -1;
    return Errno(tmp);
  }
  fd = -1;
  if (replace) {
    if (rename(tmp.c_str(), path.c_str()) != 0) return Errno(path);
    keep_tmp = true;  // it is `path` now
  } else if (link(tmp.c_str(), path.c_str()) != 0) {
    // link() never replaces: an existing `path` is EEXIST, with no window in between.
    return Errno(path);
  }
  const std::string dir = path.find('/') == std::string::npos
                              ? "."
                              : (path.rfind('/') == 0 ? "/" : path.substr(0, path.rfind('/')));
  const int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  return absl::OkStatus();
}

}  // namespace vigil::cli
