#include "node/procfs/file_hash_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace vigil::node {

absl::StatusOr<std::string> FileHashCache::HashHex(const std::string& path,
                                                   const FileHashRequest& request) {
  // Open once and take the key from the descriptor, so the key and the bytes hashed belong
  // to the same file even if `path` is renamed or replaced meanwhile.
  UniqueFd owned_fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!owned_fd.Valid()) return absl::ErrnoToStatus(errno, path);
  const int fd = owned_fd.Get();
  auto key_of = [fd, &path]() -> absl::StatusOr<Key> {
    struct stat st {};
    if (fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, path);
    if (!S_ISREG(st.st_mode)) return absl::FailedPreconditionError(path + ": not a regular file");
    return Key{st.st_dev, st.st_ino, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
               st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec, st.st_size};
  };
  ASSIGN_OR_RETURN(Key before, key_of());
  if (request.identity.has_value() &&
      (static_cast<uint64_t>(before.dev) != request.identity->first ||
       static_cast<uint64_t>(before.ino) != request.identity->second)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": names another file than the one expected (device ",
                     request.identity->first, ", inode ", request.identity->second, ")"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (auto it = digests_.find(before); !request.bypass_cache && it != digests_.end()) {
      ++hits_;
      return it->second;
    }
    ++misses_;
  }
  // Sha256File reads through our descriptor's /proc/self/fd link, i.e. the same open file.
  ASSIGN_OR_RETURN(Sha256Digest digest, Sha256File(absl::StrCat("/proc/self/fd/", fd)));
  std::string hex = HexEncode(digest);
  ASSIGN_OR_RETURN(Key after, key_of());
  if (after == before && !request.bypass_cache) {
    absl::MutexLock lock(&mu_);
    if (digests_.size() >= max_entries_) digests_.clear();
    digests_.emplace(before, hex);
  }
  return hex;
}

uint64_t FileHashCache::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

uint64_t FileHashCache::misses() const {
  absl::MutexLock lock(&mu_);
  return misses_;
}

}  // namespace vigil::node
