#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "node/procfs/file_hash_cache.h"
#include "node/procfs/procfs.h"
#include "node/seccomp/seccomp_inspector.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// Open files whose path matches `glob` (fnmatch(3)) are reported as `classification`
/// ("config" or "secret") in ProcessSnapshot.sensitive_files.
struct SensitivePath {
  std::string glob;
  std::string classification;
};

/// What the snapshotter reads and evaluates.
struct SnapshotOptions {
  /// Where procfs is mounted (tests may point elsewhere; the node uses /proc).
  std::string proc_root = "/proc";
  /// Syscalls the seccomp inspector evaluates; empty skips the inspection.
  std::vector<std::string> seccomp_syscalls;
  /// Open files to report as configuration or secrets.
  std::vector<SensitivePath> sensitive_paths;
  /// Reads a process's seccomp filters; empty: this process reads them (ReadSeccompFilters).
  SeccompFilterReader filter_reader;
};

/// The credentials, capability sets and seccomp status fields (mode, filter_count,
/// no_new_privs) of a parsed /proc/<pid>/status, as a snapshot reports them.
void FillIds(const procfs::Status& st, v1::Credentials* c);
void FillCapabilities(const procfs::Status& st, v1::Capabilities* caps);
void FillSeccompStatus(const procfs::Status& st, v1::SeccompState* sec);

/// Builds the ProcessSnapshot of DESIGN.md section 5 for one process from procfs, from
/// outside the process. Thread-compatible; the hash cache may be shared.
class Snapshotter {
 public:
  /// `hashes` must outlive the snapshotter.
  Snapshotter(SnapshotOptions options, FileHashCache* hashes);

  /// Reads every field of `pid`'s snapshot. Fails with NotFound when the process does not
  /// exist, or exited (even if not yet reaped) or its pid was reused while it was read;
  /// with FailedPrecondition for a kernel thread, which has no executable, memory map or
  /// files to observe. A process that exec'd while it was read is read again. Any other
  /// file that cannot be read or parsed leaves its fields unset and appends one line to
  /// `gaps` ("pid N: /proc/N/maps: Permission denied"); a zombie gets one gap saying so
  /// and only the fields its status still holds.
  absl::StatusOr<v1::ProcessSnapshot> Snapshot(int pid, std::vector<std::string>* gaps) const;

  /// Replaces the syscalls the seccomp inspector evaluates and the sensitive file patterns
  /// (a new policy bundle's); the next Snapshot uses them. Not to be called while another
  /// thread takes a snapshot.
  void SetPolicyTargets(std::vector<std::string> seccomp_syscalls,
                        std::vector<SensitivePath> sensitive_paths);
  const SnapshotOptions& options() const { return options_; }

 private:
  /// The thread whose procfs directory the process-level fields are read from: the main
  /// thread, or the lowest-numbered running one when the main thread has exited.
  struct Target {
    int pid = 0;
    int tid = 0;
    std::string dir;
    bool main_thread_exited = false;
    bool zombie = false;  // every thread exited; the process waits to be reaped
  };
  /// One open descriptor.
  struct OpenFd {
    int fd = 0;
    std::string target;     // readlink of /proc/<pid>/fd/<fd>
    bool writable = false;  // a file (target is a path) open for writing
  };

  std::string Path(int pid, absl::string_view file) const;
  std::optional<int> FirstRunningThread(int pid) const;
  Target FindTarget(int pid, const procfs::Stat& stat) const;
  absl::StatusOr<v1::ProcessSnapshot> SnapshotOnce(const Target& t, const procfs::Stat& stat,
                                                   std::vector<std::string>* gaps) const;
  std::optional<procfs::Status> ReadCredentialsAndState(const Target& t, v1::ProcessSnapshot* s,
                                                        std::vector<std::string>* g) const;
  std::vector<OpenFd> ReadFds(const Target& t, std::vector<std::string>* g) const;
  void ReadFiles(const Target& t, const std::vector<OpenFd>& fds, v1::ProcessSnapshot* s,
                 std::vector<std::string>* g) const;
  void ReadNamespaces(const Target& t, v1::ProcessSnapshot* s, std::vector<std::string>* g) const;
  void ReadThreads(const Target& t, const procfs::Status& main, v1::ProcessSnapshot* s,
                   std::vector<std::string>* g) const;
  void ReadChildren(int pid, v1::ProcessSnapshot* s, std::vector<std::string>* g) const;
  /// Evaluates thread `tid` of process `pid`'s filters into `sec`.
  void InspectSeccomp(int pid, int tid, v1::SeccompState* sec) const;

  SnapshotOptions options_;
  FileHashCache* hashes_;
  int64_t boot_unix_nano_;
  int64_t ticks_per_second_;
};

}  // namespace vigil::node
