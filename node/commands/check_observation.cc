#include "node/commands/check_observation.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "node/probes/event_source.h"
#include "node/procfs/procfs.h"

namespace vigil::node {
namespace {

// Events kept for the evaluation; beyond it they are counted as lost (the engine then
// says absent events prove nothing).
constexpr size_t kMaxEvents = 200000;
constexpr size_t kMaxGaps = 64;

// Whether `pid` exists and has not exited (a zombie has).
bool Running(int pid) {
  absl::StatusOr<std::string> text = procfs::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!text.ok()) return false;
  absl::StatusOr<procfs::Stat> stat = procfs::ParseStat(*text);
  return stat.ok() && !stat->exited();
}

}  // namespace

CheckObservation::CheckObservation(const Snapshotter* snapshotter, const ProcessMatcher* matcher,
                                   BpfEventSource* probes)
    : snapshotter_(snapshotter), matcher_(matcher), probes_(probes), start_(absl::Now()) {}

void CheckObservation::Snapshot(int pid, const std::vector<std::string>& matched_by) {
  TrackedProcess& t = tracked_[pid];
  // Followed from its parent stays followed: a scan after the parent exited sees an orphan
  // the probes still follow ("probe"), but its lineage in the workload is the one first seen.
  const bool only_probe = matched_by.size() == 1 && matched_by[0] == "probe";
  if (!matched_by.empty() && !(only_probe && !t.matched_by.empty())) t.matched_by = matched_by;
  if (t.exited) return;
  if (!Running(pid)) {
    t.exited = true;
    return;
  }
  std::vector<std::string> gaps;
  absl::StatusOr<v1::ProcessSnapshot> s = snapshotter_->Snapshot(pid, &gaps);
  if (!s.ok()) {
    if (absl::IsNotFound(s.status())) {
      t.exited = true;
    } else {
      gaps.push_back(absl::StrCat("pid ", pid, ": ", s.status().message()));
    }
  } else if (s->exe_path().empty()) {
    t.exited = true;  // it became a zombie on the way: what remains is not its live state
  } else {
    t.snapshot = *std::move(s);
    ++t.snapshots;
    t.snapshot_ms = absl::ToInt64Milliseconds(absl::Now() - start_);
  }
  for (std::string& g : gaps) {
    if (gaps_.size() < kMaxGaps && std::find(gaps_.begin(), gaps_.end(), g) == gaps_.end()) {
      gaps_.push_back(std::move(g));
    }
  }
}

void CheckObservation::MarkExited() {
  for (auto& [pid, t] : tracked_) {
    if (!Running(pid)) t.exited = true;
  }
}

bool CheckObservation::Round() {
  bool any = false;
  for (const MatchedProcess& m : matcher_->Scan(probes_->MonitoredPids())) {
    Snapshot(m.pid, m.matched_by);
    any = any || !tracked_[m.pid].exited;
  }
  return any;
}

void CheckObservation::Drain(int held_pid) {
  std::vector<v1::RuntimeEvent> batch;
  probes_->Drain(&batch);
  std::set<int> fresh;
  for (v1::RuntimeEvent& e : batch) {
    if (IsFileEvent(e)) continue;  // loaded for the measurement only (see check_command.cc)
    const bool exec = e.kind() == v1::EVENT_KIND_PROCESS_EXEC;
    if (e.pid() == held_pid && !held_exec_seen_) {
      if (!exec) continue;
      held_exec_seen_ = true;
    }
    TrackedProcess& t = tracked_[e.pid()];
    if (t.ppid == 0) t.ppid = e.ppid();
    t.comm = e.comm();
    if (exec) t.exe = e.path();
    if (t.snapshots == 0 || exec) fresh.insert(e.pid());
    if (events_.size() < kMaxEvents) {
      events_.push_back(std::move(e));
    } else {
      ++events_lost_;
    }
  }
  for (int pid : fresh) {
    TrackedProcess& t = tracked_[pid];
    std::vector<std::string> why;
    if (t.matched_by.empty()) {
      why.push_back(tracked_.count(t.ppid) != 0 && t.ppid != pid
                        ? absl::StrCat("inherited:", t.ppid)
                        : std::string("probe"));
    }
    Snapshot(pid, why);
  }
}

v1::RuntimeReport CheckObservation::BuildReport(const std::set<int>& named,
                                                const v1::ProbeStatus& probes,
                                                std::set<int>* unobserved) const {
  v1::RuntimeReport report;
  for (const auto& [pid, t] : tracked_) {
    if (t.snapshots > 0) {
      v1::ProcessSnapshot& s = *report.add_processes();
      s = t.snapshot;
      s.clear_matched_by();
      for (const std::string& why : t.matched_by) s.add_matched_by(why);
    } else if (named.count(pid) != 0) {
      v1::ProcessSnapshot& s = *report.add_processes();
      s.set_pid(pid);
      s.set_ppid(t.ppid);
      s.set_comm(t.comm);
      s.set_exe_path(t.exe);
      for (const std::string& why : t.matched_by) s.add_matched_by(why);
      unobserved->insert(pid);
    }
  }
  for (const v1::RuntimeEvent& e : events_) *report.add_events() = e;
  *report.mutable_probes() = probes;
  if (events_lost_ > 0) {
    (*report.mutable_probes()->mutable_dropped_events())["check_queue_full"] += events_lost_;
  }
  for (const std::string& g : gaps_) report.add_observation_gaps(g);
  return report;
}

std::vector<ObservedProcess> CheckObservation::Processes(const std::set<int>& named) const {
  std::vector<ObservedProcess> out;
  for (const auto& [pid, t] : tracked_) {
    if (t.snapshots == 0 && named.count(pid) == 0) continue;
    ObservedProcess p;
    p.pid = pid;
    p.exe = t.snapshots > 0 ? t.snapshot.exe_path() : t.exe;
    p.snapshots = t.snapshots;
    p.snapshot_ms = t.snapshot_ms;
    p.exited = t.exited;
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace vigil::node
