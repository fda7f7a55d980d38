#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "node/probes/event_source.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "node/scope/scope_tracker.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// The node-level fields every report carries.
struct NodeInfo {
  std::string node_id;
  std::string hostname;
  std::string kernel_release;
  std::string boot_id;
  int64_t started_unix_nano = 0;
  std::string node_version;
  std::string policy_digest;
  /// Whether the kernel's IMA is present, and its entry for the node binary (ReadImaStatus).
  v1::ImaStatus ima;
};

/// This machine's hostname, kernel release and boot id, and now as the start time. The
/// caller fills node_id, node_version and policy_digest.
absl::StatusOr<NodeInfo> ReadLocalNodeInfo();

/// Sets the node-level fields of `r` from `info`, its sequence, and now as collection time.
void SetNodeFields(const NodeInfo& info, uint64_t sequence, v1::RuntimeReport* r);

/// Keeps the leading `gaps` while their serialized size stays within `budget_bytes` and
/// replaces the rest by one line saying how many were left out; returns the serialized size
/// of what is kept. A process can cause any number of gaps (one per mapping it holds of a
/// deleted file, say): without a bound they alone could exceed the stream's message limit.
size_t FitGaps(std::vector<std::string>* gaps, size_t budget_bytes);

/// Assembles RuntimeReports: node fields, a snapshot of every monitored process, the events
/// the EventSource produced since the previous report (file events excepted: they only feed
/// the workload scope), probe status, the workload scopes and observation gaps.
/// Not thread-safe: one reporting thread owns it.
class ReportBuilder {
 public:
  /// `matcher` and `snapshotter` must outlive the builder; `events` may be null (no probes).
  /// At most `max_pending_events` events wait between reports; older ones beyond that are
  /// dropped and counted under probes.dropped_events["report_queue_full"].
  ReportBuilder(NodeInfo info, const ProcessMatcher* matcher, const Snapshotter* snapshotter,
                EventSource* events, size_t max_pending_events = 65536);

  /// Moves new events from the EventSource into the pending queue. Returns how many of them
  /// are of interest (anything but fork/exit bookkeeping), i.e. worth an early report.
  size_t PollEvents();

  /// Has the EventSource call `wake` soon after events worth a report arrive (see
  /// EventSource::SetWakeup); an empty function stops the calls. No-op without a source.
  void SetEventWakeup(std::function<void()> wake);

  /// Builds the next report (sequence + 1) whose serialized size is at most
  /// `max_payload_bytes`: events that do not fit stay queued for the next report; if the
  /// snapshots alone do not fit, trailing processes are left out and a gap says so.
  v1::RuntimeReport Build(size_t max_payload_bytes);

  /// Events waiting for the next report.
  size_t pending_events() const { return pending_.size(); }
  uint64_t last_sequence() const { return sequence_; }

  /// The policy bundle digest later reports carry (RuntimeReport.policy_digest).
  void set_policy_digest(std::string digest) { info_.policy_digest = std::move(digest); }
  const std::string& policy_digest() const { return info_.policy_digest; }

  /// Has every later report carry `source()` as RuntimeReport.node_self; empty: none.
  void set_self_state_source(std::function<v1::NodeSelfState()> source) {
    self_state_ = std::move(source);
  }

  /// Has every later report carry the workload scopes `tracker` accumulates (it must outlive
  /// the builder; nullptr: none): each Build() gives it the snapshots and appends its whole
  /// scope. With `feed_events` the builder also gives it every event it polls; without, the
  /// caller feeds it (the probes' observer, while the processes still run).
  void set_scope_tracker(ScopeTracker* tracker, bool feed_events);

  /// Calls `observer` in every Build() with how long the scan and the process snapshots took;
  /// empty: none.
  void set_snapshot_observer(std::function<void(absl::Duration)> observer) {
    snapshot_observer_ = std::move(observer);
  }

  /// Events dropped so far because max_pending_events were already waiting. Thread-safe.
  uint64_t events_dropped() const { return queue_dropped_.load(std::memory_order_relaxed); }
  /// Process snapshots left out of reports so far to fit max_payload_bytes. Thread-safe.
  uint64_t processes_left_out() const {
    return processes_left_out_.load(std::memory_order_relaxed);
  }

 private:
  NodeInfo info_;
  const ProcessMatcher* matcher_;
  const Snapshotter* snapshotter_;
  EventSource* events_;
  size_t max_pending_events_;
  std::deque<v1::RuntimeEvent> pending_;
  std::atomic<uint64_t> queue_dropped_{0};
  std::atomic<uint64_t> processes_left_out_{0};
  uint64_t sequence_ = 0;
  std::function<v1::NodeSelfState()> self_state_;
  std::function<void(absl::Duration)> snapshot_observer_;
  ScopeTracker* scope_ = nullptr;
  bool scope_feed_events_ = false;
};

}  // namespace vigil::node
