#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "verifier/evidence_appraiser.h"
#include "verifier/node_registry.h"
#include "verifier/reference_values.h"
#include "verifier/unverified_appraiser.h"

namespace vigil::verifier {

/// Appraises TPM-quoted evidence (DESIGN.md §4.6): every check in order, each failure its own
/// AppraisalReason with TRUST_REJECTED; evidence that passes them all and whose payload is a
/// RuntimeReport about the certificate's node is TRUST_AFFIRMING. On success the AK's clock
/// and the node's measurement log advance (in memory at once, on disk soon after). Per node,
/// appraisals serialize; different nodes appraise in parallel. Thread-safe.
class QuoteAppraiser final : public EvidenceAppraiser {
 public:
  struct Options {
    /// The PCR the node extends its measurements into; its quoted value must equal the
    /// replay of the measurement log.
    uint32_t measurement_pcr = 15;
  };

  /// `registry` and `reference_values` must outlive the appraiser.
  QuoteAppraiser(NodeRegistry* registry, const ReferenceValues* reference_values, Options options);

  v1::Verdict Appraise(const AppraisalInput& input) override;

  /// How many measurement-log entries the verifier holds for `node_id` (0 when unknown):
  /// the Acknowledgement's log_entries_acknowledged, i.e. the record number the node should
  /// send entries from.
  uint64_t LogEntriesAcknowledged(const std::string& node_id) const override;

 private:
  NodeRegistry* const registry_;
  const ReferenceValues* const reference_values_;
  const Options options_;
  UnverifiedAppraiser payload_checker_;
};

}  // namespace vigil::verifier
