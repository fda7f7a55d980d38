#pragma once

// The observation behind `vigil-node check`: the processes of the workload, snapshotted from
// procfs while they run, and the probes' events, assembled into the RuntimeReport the rule
// engine evaluates (docs/check.md, "Running the command").

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "node/commands/check_report.h"
#include "node/probes/bpf_event_source.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// One process of a check, as last seen.
struct TrackedProcess {
  /// The latest snapshot taken while it ran (valid when snapshots > 0).
  v1::ProcessSnapshot snapshot;
  std::vector<std::string> matched_by;
  int snapshots = 0;
  /// When that snapshot was taken, in milliseconds after the observation started.
  int64_t snapshot_ms = 0;
  bool exited = false;
  /// What the events said, for a process never snapshotted.
  int ppid = 0;
  std::string comm;
  std::string exe;
};

/// The processes of one check: snapshots them on demand and keeps each one's latest live
/// snapshot (a zombie's or an exited process's remains never replace it). Not thread-safe.
class CheckObservation {
 public:
  /// Each must outlive the observation. The matcher's selectors name the workload.
  CheckObservation(const Snapshotter* snapshotter, const ProcessMatcher* matcher,
                   BpfEventSource* probes);

  absl::Time start() const { return start_; }
  std::map<int, TrackedProcess>& tracked() { return tracked_; }
  const std::vector<std::string>& gaps() const { return gaps_; }

  /// Snapshots `pid` if it still runs; otherwise marks it exited (its last snapshot stays).
  /// A non-empty `matched_by` replaces the reasons it is monitored.
  void Snapshot(int pid, const std::vector<std::string>& matched_by);

  /// Snapshots every process of the workload that runs now (the matcher's scan plus what
  /// the probes follow); false when none does.
  bool Round();

  /// Takes the events the probes queued. A process seen for the first time, or a program
  /// just exec'd, is snapshotted at once. Events of `held_pid` before its first exec are
  /// vigil-node's own (the fork waiting to exec the command) and are left out.
  void Drain(int held_pid);

  /// Marks the processes that no longer run (at the end, once the command was ended).
  void MarkExited();

  /// The RuntimeReport the engine evaluates: each process's latest live snapshot; a process
  /// of `named` never snapshotted alive as the little its events said, its pid added to
  /// `unobserved` (its snapshot rules are then not observed); every event; `probes`, with
  /// events this observation could not keep counted as dropped ("check_queue_full").
  v1::RuntimeReport BuildReport(const std::set<int>& named, const v1::ProbeStatus& probes,
                                std::set<int>* unobserved) const;

  /// The processes for the report: every process snapshotted, and those of `named`.
  std::vector<ObservedProcess> Processes(const std::set<int>& named) const;

 private:
  const Snapshotter* snapshotter_;
  const ProcessMatcher* matcher_;
  BpfEventSource* probes_;
  absl::Time start_;
  std::map<int, TrackedProcess> tracked_;
  std::vector<v1::RuntimeEvent> events_;
  std::vector<std::string> gaps_;
  uint64_t events_lost_ = 0;
  bool held_exec_seen_ = false;
};

}  // namespace vigil::node
