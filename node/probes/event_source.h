#pragma once

#include <functional>
#include <vector>

#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// Whether an event is a file event (open*, creat, rename*, unlink*, mkdir*): these feed the
/// workload scope (node/scope/) and are not sent one by one in RuntimeReport.events.
inline bool IsFileEvent(const v1::RuntimeEvent& e) {
  return e.kind() >= v1::EVENT_KIND_OPEN && e.kind() <= v1::EVENT_KIND_MKDIRAT;
}

/// Whether an event is worth an early report: anything but fork/exit bookkeeping and file
/// events (which only update the scope every report carries).
inline bool WorthAReport(const v1::RuntimeEvent& e) {
  return e.kind() != v1::EVENT_KIND_PROCESS_FORK && e.kind() != v1::EVENT_KIND_PROCESS_EXIT &&
         !IsFileEvent(e);
}

/// Where a report's events and probe status come from. The BPF implementation drains its
/// ring buffer into a bounded queue; tests use a fake.
class EventSource {
 public:
  virtual ~EventSource() = default;

  /// Moves every event observed since the previous call into `out` (oldest first).
  virtual void Drain(std::vector<v1::RuntimeEvent>* out) = 0;

  /// Which hooks are active or refused and how many events were lost, by reason.
  virtual v1::ProbeStatus Status() const = 0;

  /// Pids the probes currently monitor (selected at exec or inherited at fork), so the
  /// snapshot covers processes picked up in the kernel since the last scan.
  virtual std::vector<int> MonitoredPids() const = 0;

  /// Calls `wake` soon after events worth a report (WorthAReport) were queued for Drain(),
  /// so a reader waits for them instead of polling. Calls may come from any thread and are
  /// coalesced (one call may stand for many events); `wake` must be quick and must not call
  /// back into the source. An empty function stops the calls: once SetWakeup returns, the
  /// previous function is neither running nor called again.
  virtual void SetWakeup(std::function<void()> wake) = 0;
};

}  // namespace vigil::node
