#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace vigil::node {

/// How FileHashCache::HashHex treats one file.
struct FileHashRequest {
  /// Hash the file without consulting or filling the cache: its contents can change without
  /// its mtime, ctime or size changing (the kernel does not update them for a write through
  /// a shared writable mapping to a page that is already dirty).
  bool bypass_cache = false;
  /// When set, the opened file must have this device and inode, or HashHex fails.
  std::optional<std::pair<uint64_t, uint64_t>> identity;
};

/// SHA-256 of files (executables, mapped libraries), cached by the identity of the file's
/// contents as the kernel sees it: device, inode, mtime and size. A file replaced or
/// rewritten in place gets a new key and is hashed again. Thread-safe.
class FileHashCache {
 public:
  /// Keeps at most `max_entries` digests; when full, the cache starts over (simple and
  /// bounded; the working set of a node is its monitored binaries and libraries).
  explicit FileHashCache(size_t max_entries = 8192) : max_entries_(max_entries) {}

  /// Lowercase hex SHA-256 of the file `path` opens to. `path` may be a magic link such as
  /// /proc/<pid>/exe or /proc/<pid>/map_files/<range>, which reach the file the process
  /// maps even in another mount namespace or after it was deleted. A file that changes
  /// while it is hashed is not cached.
  absl::StatusOr<std::string> HashHex(const std::string& path,
                                      const FileHashRequest& request = FileHashRequest());

  /// How many lookups were answered from the cache / needed a read of the file.
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  struct Key {
    dev_t dev;
    ino_t ino;
    int64_t mtime_ns;
    int64_t ctime_ns;
    off_t size;
    bool operator==(const Key&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.dev, k.ino, k.mtime_ns, k.ctime_ns, k.size);
    }
  };

  const size_t max_entries_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<Key, std::string> digests_ ABSL_GUARDED_BY(mu_);
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vigil::node
