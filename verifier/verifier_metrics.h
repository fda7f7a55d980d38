#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics/metrics.h"
#include "verifier/evidence_appraiser.h"
#include "verifier/result_sink.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

class AttestationService;
class Enroller;
class WebhookNotifier;

/// The verifier's Prometheus metrics (docs/verifier.md, "Metrics"), registered in `registry`
/// at construction. The appraiser and sink returned by Meter count and time what passes
/// through them; the Watch functions export counts other components keep. Every pointer
/// given must outlive the registry's scrapes.
class VerifierMetrics {
 public:
  explicit VerifierMetrics(metrics::Registry* registry);
  ~VerifierMetrics();

  /// An appraiser that forwards to `inner`, counting reports, verdicts by status and reasons,
  /// and timing each appraisal.
  EvidenceAppraiser* Meter(EvidenceAppraiser* inner);
  /// A sink that forwards to `inner`, timing each durable write and counting failed ones,
  /// and counting the spooled batches it stores.
  ResultSink* Meter(ResultSink* inner);

  void WatchAttestation(const AttestationService* service);
  void WatchEnroller(const Enroller* enroller);
  void WatchWebhooks(const WebhookNotifier* notifier, size_t targets);

 private:
  class MeteredAppraiser;
  class MeteredSink;

  // The spool_batches_total counter of trust status `status`; null for an unknown status.
  metrics::Counter* SpoolBatchCounter(int status) const;

  metrics::Registry* const registry_;
  metrics::Counter* reports_;
  std::vector<metrics::Counter*> verdicts_by_status_;       // indexed by TrustStatus
  std::vector<metrics::Counter*> spool_batches_by_status_;  // indexed by TrustStatus
  std::vector<metrics::Counter*> verdicts_by_reason_;       // indexed by AppraisalReason
  metrics::Histogram* appraisal_seconds_;
  metrics::Histogram* store_seconds_;
  metrics::Counter* store_failures_;
  std::vector<std::unique_ptr<EvidenceAppraiser>> appraisers_;
  std::vector<std::unique_ptr<ResultSink>> sinks_;
};

}  // namespace vigil::verifier
