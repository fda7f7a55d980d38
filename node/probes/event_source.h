#pragma once

#include <vector>

#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

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
};

}  // namespace vigil::node
