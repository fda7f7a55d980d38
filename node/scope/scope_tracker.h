#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "node/procfs/file_hash_cache.h"
#include "node/procfs/snapshotter.h"
#include "node/scope/dpkg_db.h"
#include "node/scope/workload_scope.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// Accumulates the runtime scope of each monitored workload (docs/node.md, "Workload scope")
/// from process snapshots and probe events, and writes it into reports.
///
/// A workload is keyed by its root's executable path, cgroup and container id; its root is
/// a process a selector matched (not one followed from a monitored parent), and every
/// descendant belongs to it. A root that exits and starts again (same key) continues the
/// same scope. Bounds: ScopeLimits. Thread-safe: events arrive on the probes' consumer
/// thread, snapshots and reports on the reporting thread.
class ScopeTracker {
 public:
  /// `hashes` and `dpkg` (nullptr: no package lookups) must outlive the tracker.
  ScopeTracker(ScopeLimits limits, FileHashCache* hashes, DpkgDatabase* dpkg,
               std::string proc_root = "/proc");
  ~ScopeTracker();

  /// The policy's sensitive_files patterns, used to classify files read.
  void SetSensitivePaths(std::vector<SensitivePath> paths);
  /// Whether probe events feed the tracker; without them every scope says what it misses.
  void set_probes(bool on);

  /// One probe event. Reads /proc/<pid> for what the event does not carry (an exec's
  /// resolved executable, its digest and argv; the directory a relative path is relative
  /// to), so it is best called promptly, while the process still runs. An event of a
  /// process not yet attributed to a workload waits for the next snapshots.
  void ObserveEvent(const v1::RuntimeEvent& event);

  /// The snapshots of one report (every monitored process), at `now_unix_nano`.
  void ObserveSnapshots(const google::protobuf::RepeatedPtrField<v1::ProcessSnapshot>& snapshots,
                        int64_t now_unix_nano);

  /// Appends every workload's whole accumulated scope to `report` (ordered by key) and the
  /// tracker's own losses to `gaps`.
  void AppendScopes(v1::RuntimeReport* report, std::vector<std::string>* gaps);

  size_t workload_count() const;

 private:
  /// An event with what was read from /proc when it was observed.
  struct Observed {
    v1::RuntimeEvent event;
    std::string exe;     // PROCESS_EXEC: /proc/<pid>/exe
    std::string sha256;  // PROCESS_EXEC: of that file
    std::vector<std::string> cmdline;
    int replays = 0;
  };
  Observed Resolve(const v1::RuntimeEvent& event) const;
  /// Applies `o`; false when its process belongs to no known workload yet.
  bool Apply(const Observed& o) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyFileEvent(WorkloadScopeState* w, const v1::RuntimeEvent& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplySnapshot(WorkloadScopeState* w, const v1::ProcessSnapshot& s, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  WorkloadScopeState* WorkloadFor(const v1::ProcessSnapshot& root)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ScopeLimits limits_;
  FileHashCache* hashes_;
  DpkgDatabase* dpkg_;
  const std::string proc_root_;

  mutable absl::Mutex mu_;
  std::vector<SensitivePath> sensitive_ ABSL_GUARDED_BY(mu_);
  bool probes_ ABSL_GUARDED_BY(mu_) = false;
  // Keyed by root exe, cgroup and container id (joined by NUL bytes).
  std::map<std::string, std::unique_ptr<WorkloadScopeState>> workloads_ ABSL_GUARDED_BY(mu_);
  // Which workload each live monitored process belongs to.
  absl::flat_hash_map<int, WorkloadScopeState*> pid_workload_ ABSL_GUARDED_BY(mu_);
  std::deque<Observed> unattributed_ ABSL_GUARDED_BY(mu_);
  // Pids whose exit event arrived, with its time (the last few thousand).
  std::map<int, int64_t> recent_exits_ ABSL_GUARDED_BY(mu_);
  std::deque<int> exit_order_ ABSL_GUARDED_BY(mu_);
  uint64_t workloads_left_out_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t events_unattributed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vigil::node
