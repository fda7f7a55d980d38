#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "node/config.h"
#include "node/file_hash_cache.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// What the snapshotter reads and evaluates.
struct SnapshotOptions {
  /// Where procfs is mounted (tests may point elsewhere; the node uses /proc).
  std::string proc_root = "/proc";
  /// Syscalls the seccomp inspector evaluates; empty skips the inspection.
  std::vector<std::string> seccomp_syscalls;
  /// Open files to report as configuration or secrets.
  std::vector<SensitivePath> sensitive_paths;
};

/// Builds the ProcessSnapshot of DESIGN.md section 5 for one process from procfs, from
/// outside the process. Thread-compatible; the hash cache may be shared.
class Snapshotter {
 public:
  /// `hashes` must outlive the snapshotter.
  Snapshotter(SnapshotOptions options, FileHashCache* hashes);

  /// Reads every field of `pid`'s snapshot. Fails with NotFound when the process does not
  /// exist or exited (or its pid was reused) while it was read; any other file that cannot
  /// be read or parsed leaves its fields unset and appends one line to `gaps`
  /// ("pid N: /proc/N/maps: Permission denied").
  absl::StatusOr<v1::ProcessSnapshot> Snapshot(int pid, std::vector<std::string>* gaps) const;

 private:
  std::string Path(int pid, absl::string_view file) const;
  void ReadCredentialsAndState(int pid, v1::ProcessSnapshot* s, std::vector<std::string>* g) const;
  void ReadMemory(int pid, v1::ProcessSnapshot* s, std::vector<std::string>* g) const;
  void ReadFiles(int pid, v1::ProcessSnapshot* s, std::vector<std::string>* g) const;
  void ReadNamespaces(int pid, v1::ProcessSnapshot* s, std::vector<std::string>* g) const;
  void ReadChildren(int pid, v1::ProcessSnapshot* s, std::vector<std::string>* g) const;
  void InspectSeccomp(int pid, v1::ProcessSnapshot* s) const;

  SnapshotOptions options_;
  FileHashCache* hashes_;
  int64_t boot_unix_nano_;
  int64_t ticks_per_second_;
};

}  // namespace vigil::node
