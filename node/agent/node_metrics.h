#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/http/http_listener.h"
#include "common/metrics/metrics.h"
#include "node/agent/attest_client.h"
#include "node/agent/report_builder.h"
#include "node/agent/tpm_sealer.h"
#include "node/probes/event_source.h"
#include "node/spool/spool.h"

namespace vigil::node {

/// The node's Prometheus metrics (docs/node.md, "Metrics"), registered in `registry` at
/// construction. The event source returned by Meter counts what passes through it; the
/// observers time the TPM quote and the process snapshots; the Watch functions export counts
/// other components keep. Every pointer given must outlive the registry's scrapes.
class NodeMetrics {
 public:
  explicit NodeMetrics(metrics::Registry* registry);
  ~NodeMetrics();

  /// An event source that forwards to `inner`, counting the events drained from it by kind;
  /// null when `inner` is null (no probes).
  EventSource* Meter(EventSource* inner);
  /// Times each TPM2_Quote call and counts the failed ones (TpmSealer::set_quote_observer).
  TpmSealer::QuoteObserver QuoteObserver();
  /// Times the scan and the snapshots of each report (ReportBuilder::set_snapshot_observer).
  std::function<void(absl::Duration)> SnapshotObserver();

  /// The events `probes` (may be null) lost, by the reasons its ProbeStatus names, those
  /// `builder` dropped from its pending queue, and the process snapshots it left out of
  /// reports.
  void WatchLosses(const EventSource* probes, const ReportBuilder* builder);
  /// The spool's size, its losses, and the events dropped with its batches.
  void WatchSpool(const spool::Spool* spool);
  /// Reports sent and acknowledged, the last verdict, the stream, spool batches on the wire,
  /// policy bundles and certificate renewals.
  void WatchClient(const AttestClient* client);

 private:
  class MeteredEventSource;

  metrics::Registry* const registry_;
  std::vector<metrics::Counter*> events_by_kind_;  // indexed by EventKind
  metrics::Histogram* quote_seconds_;
  metrics::Counter* quote_failures_;
  metrics::Histogram* snapshot_seconds_;
  std::vector<std::unique_ptr<EventSource>> sources_;
};

/// Serves `registry` on `address` (metrics::StartMetricsServer) and logs where; null when
/// `address` is empty (metrics off). Errors as StartMetricsServer.
absl::StatusOr<std::unique_ptr<HttpListener>> ServeNodeMetrics(const std::string& address,
                                                               const metrics::Registry* registry);

}  // namespace vigil::node
