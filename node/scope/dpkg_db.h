#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// Which Debian package owns a file, read from dpkg's database: the file lists
/// (<root>/info/<package>[:<arch>].list) and the installed versions (<root>/status).
///
/// Only files under the trees that hold programs and libraries (/bin, /sbin, /lib*, /usr/bin,
/// /usr/sbin, /usr/lib*, /usr/libexec, /usr/games) are indexed: those are what the workload
/// scope asks about, and the index stays a few MiB. The database is loaded at the first
/// lookup and loaded again when <root>/status changes (checked at most once per
/// `recheck_interval`). Lookups are usr-merge aware: /usr/bin/x also finds a package that
/// lists /bin/x, and the reverse. A file no package lists is "unpackaged" (nullopt).
/// Paths are data: nothing in them is interpreted. Not thread-safe.
class DpkgDatabase {
 public:
  explicit DpkgDatabase(std::string root = "/var/lib/dpkg",
                        absl::Duration recheck_interval = absl::Seconds(5));

  /// The package that owns `path` (absolute, as the workload's mount namespace names it), or
  /// nullopt when none does or the database cannot be read (error() then says why).
  std::optional<v1::PackageRef> Owner(absl::string_view path);

  /// Why the database could not be read at the last load; empty when it was read.
  const std::string& error() const { return error_; }
  /// How many paths the index holds, and how many times the database was loaded.
  size_t indexed_paths() const { return index_.size(); }
  uint64_t loads() const { return loads_; }

 private:
  struct Identity {
    dev_t dev = 0;
    ino_t ino = 0;
    int64_t mtime_ns = 0;
    off_t size = 0;
    bool operator==(const Identity&) const = default;
  };
  void MaybeReload();
  void Load(const Identity& status);
  const v1::PackageRef* Find(absl::string_view path) const;

  const std::string root_;
  const absl::Duration recheck_interval_;
  absl::Time last_check_ = absl::InfinitePast();
  std::optional<Identity> loaded_;
  std::string error_;
  uint64_t loads_ = 0;
  std::vector<v1::PackageRef> packages_;
  /// Indexed path -> index into packages_.
  absl::flat_hash_map<std::string, uint32_t> index_;
};

}  // namespace vigil::node
