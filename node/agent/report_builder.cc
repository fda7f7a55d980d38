#include "node/agent/report_builder.h"

#include <sys/utsname.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "node/procfs/procfs.h"

namespace vigil::node {

absl::StatusOr<NodeInfo> ReadLocalNodeInfo() {
  NodeInfo info;
  utsname u{};
  if (uname(&u) != 0) return absl::ErrnoToStatus(errno, "uname");
  info.hostname = procfs::Printable(u.nodename);
  info.kernel_release = procfs::Printable(u.release);
  auto boot_id = procfs::ReadFile("/proc/sys/kernel/random/boot_id");
  if (!boot_id.ok()) return boot_id.status();
  info.boot_id = std::string(absl::StripAsciiWhitespace(*boot_id));
  info.started_unix_nano = absl::GetCurrentTimeNanos();
  return info;
}

ReportBuilder::ReportBuilder(NodeInfo info, const ProcessMatcher* matcher,
                             const Snapshotter* snapshotter, EventSource* events,
                             size_t max_pending_events)
    : info_(std::move(info)),
      matcher_(matcher),
      snapshotter_(snapshotter),
      events_(events),
      max_pending_events_(max_pending_events) {}

size_t ReportBuilder::PollEvents() {
  if (events_ == nullptr) return 0;
  std::vector<v1::RuntimeEvent> fresh;
  events_->Drain(&fresh);
  size_t interesting = 0;
  for (v1::RuntimeEvent& e : fresh) {
    if (scope_ != nullptr && scope_feed_events_) scope_->ObserveEvent(e);
    if (IsFileEvent(e)) continue;  // summarised in the scope, not sent one by one
    interesting += WorthAReport(e) ? 1 : 0;
    pending_.push_back(std::move(e));
  }
  while (pending_.size() > max_pending_events_) {
    pending_.pop_front();
    queue_dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  return interesting;
}

void ReportBuilder::set_scope_tracker(ScopeTracker* tracker, bool feed_events) {
  scope_ = tracker;
  scope_feed_events_ = feed_events;
  if (scope_ != nullptr) scope_->set_probes(events_ != nullptr);
}

void ReportBuilder::SetEventWakeup(std::function<void()> wake) {
  if (events_ != nullptr) events_->SetWakeup(std::move(wake));
}

size_t FitGaps(std::vector<std::string>* gaps, size_t budget_bytes) {
  // A repeated string costs its bytes, a tag and a length prefix (at most 4 bytes here).
  constexpr size_t kPerGap = 4;
  size_t total = 0;
  for (const std::string& g : *gaps) total += g.size() + kPerGap;
  if (total <= budget_bytes) return total;
  constexpr size_t kNoteBytes = 128;  // room for the line that counts what was left out
  size_t kept = 0, used = 0;
  while (kept < gaps->size() &&
         used + (*gaps)[kept].size() + kPerGap + kNoteBytes <= budget_bytes) {
    used += (*gaps)[kept].size() + kPerGap;
    ++kept;
  }
  const size_t left_out = gaps->size() - kept;
  gaps->resize(kept);
  gaps->push_back(absl::StrCat("report truncated: ", left_out, " observation gaps left out to fit ",
                               budget_bytes, " bytes"));
  return used + gaps->back().size() + kPerGap;
}

void SetNodeFields(const NodeInfo& info, uint64_t sequence, v1::RuntimeReport* r) {
  r->set_node_id(info.node_id);
  r->set_sequence(sequence);
  r->set_collected_unix_nano(absl::GetCurrentTimeNanos());
  r->set_hostname(info.hostname);
  r->set_kernel_release(info.kernel_release);
  r->set_boot_id(info.boot_id);
  r->set_node_started_unix_nano(info.started_unix_nano);
  r->set_node_version(info.node_version);
  r->set_policy_digest(info.policy_digest);
  *r->mutable_ima() = info.ima;
}

v1::RuntimeReport ReportBuilder::Build(size_t max_payload_bytes) {
  PollEvents();
  v1::RuntimeReport r;
  SetNodeFields(info_, ++sequence_, &r);
  if (self_state_) *r.mutable_node_self() = self_state_();

  std::vector<std::string> gaps;
  const absl::Time snapshot_start = absl::Now();
  std::vector<int> probe_pids;
  if (events_ != nullptr) probe_pids = events_->MonitoredPids();
  for (const MatchedProcess& m : matcher_->Scan(probe_pids)) {
    auto snap = snapshotter_->Snapshot(m.pid, &gaps);
    if (!snap.ok()) {
      // Exited between the scan and the snapshot: nothing to report about it.
      if (!absl::IsNotFound(snap.status())) {
        gaps.push_back(absl::StrCat("pid ", m.pid, ": ", snap.status().message()));
      }
      continue;
    }
    for (const std::string& why : m.matched_by) snap->add_matched_by(why);
    *r.add_processes() = std::move(*snap);
  }
  if (snapshot_observer_) snapshot_observer_(absl::Now() - snapshot_start);
  if (scope_ != nullptr) {
    scope_->SetSensitivePaths(snapshotter_->options().sensitive_paths);
    scope_->ObserveSnapshots(r.processes(), r.collected_unix_nano());
    scope_->AppendScopes(&r, &gaps);
  }
  if (events_ != nullptr) {
    *r.mutable_probes() = events_->Status();
    if (const uint64_t dropped = events_dropped(); dropped > 0) {
      (*r.mutable_probes()->mutable_dropped_events())["report_queue_full"] += dropped;
    }
  }

  // Fit the payload limit: first hold events back for the next report, then leave trailing
  // processes out, saying so.
  size_t base = r.ByteSizeLong();
  // Gaps take at most a quarter of the payload, so snapshots and events still fit.
  const size_t gaps_size = FitGaps(&gaps, max_payload_bytes / 4);
  size_t budget =
      max_payload_bytes > base + gaps_size + 256 ? max_payload_bytes - base - gaps_size - 256 : 0;
  size_t used = 0;
  while (!pending_.empty()) {
    size_t n = pending_.front().ByteSizeLong() + 6;
    if (used + n > budget) break;
    used += n;
    *r.add_events() = std::move(pending_.front());
    pending_.pop_front();
  }
  int dropped_processes = 0;
  while (r.processes_size() > 0 && r.ByteSizeLong() + gaps_size + 256 > max_payload_bytes) {
    r.mutable_processes()->RemoveLast();
    ++dropped_processes;
  }
  int dropped_scopes = 0;
  while (r.scopes_size() > 0 && r.ByteSizeLong() + gaps_size + 256 > max_payload_bytes) {
    r.mutable_scopes()->RemoveLast();
    ++dropped_scopes;
  }
  if (dropped_scopes > 0) {
    gaps.push_back(absl::StrCat("report truncated: ", dropped_scopes,
                                " workload scopes left out to fit ", max_payload_bytes, " bytes"));
  }
  if (dropped_processes > 0) {
    processes_left_out_.fetch_add(dropped_processes, std::memory_order_relaxed);
    gaps.push_back(absl::StrCat("report truncated: ", dropped_processes,
                                " process snapshots left out to fit ", max_payload_bytes,
                                " bytes"));
  }
  for (std::string& g : gaps) r.add_observation_gaps(std::move(g));
  return r;
}

}  // namespace vigil::node
