#pragma once

// The verifier's side of the node spool (docs/verifier.md, "Spooled batches"): learning which
// batches a node measured, and appraising each batch the node delivers after an outage.

#include <functional>
#include <memory>
#include <string>

#include "verifier/evidence_appraiser.h"
#include "verifier/runtime_appraiser.h"
#include "verifier/spool_ledger.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// Wraps the stream's appraiser: evidence it accepts (its quote verified and its measurement
/// log replayed to the quoted PCR: any status but TRUST_REJECTED and TRUST_UNVERIFIED) hands
/// its log delta's "spool-batch" records to the ledger. Thread-safe when the inner is.
class SpoolRecordingAppraiser final : public EvidenceAppraiser {
 public:
  /// `inner` and `ledger` must outlive the appraiser.
  SpoolRecordingAppraiser(EvidenceAppraiser* inner, SpoolLedger* ledger)
      : inner_(inner), ledger_(ledger) {}
  v1::Verdict Appraise(const AppraisalInput& input) override;
  uint64_t LogEntriesAcknowledged(const std::string& node_id) const override {
    return inner_->LogEntriesAcknowledged(node_id);
  }

 private:
  EvidenceAppraiser* const inner_;
  SpoolLedger* const ledger_;
};

/// The evidence check for a spooled batch (input.evidence holds its payload, no quote): the
/// payload must be a RuntimeReport about the connected node (PAYLOAD_MALFORMED,
/// NODE_MISMATCH), and SHA-256(payload) a measured, undelivered batch of the node
/// (SPOOL_BATCH_UNMEASURED otherwise, TRUST_REJECTED). An accepted batch is TRUST_AFFIRMING
/// as evidence; the RuntimeAppraiser over this check then judges its runtime state against
/// the policy it names. Thread-safe.
class SpoolBatchCheck final : public EvidenceAppraiser {
 public:
  explicit SpoolBatchCheck(SpoolLedger* ledger) : ledger_(ledger) {}
  v1::Verdict Appraise(const AppraisalInput& input) override;

 private:
  SpoolLedger* const ledger_;
};

/// Appraises one SpoolBatch end to end for the Attest stream.
class SpoolBatchAppraiser {
 public:
  /// `ledger` and `appraiser` (a RuntimeAppraiser over a SpoolBatchCheck on the same
  /// ledger) must outlive this.
  SpoolBatchAppraiser(SpoolLedger* ledger, EvidenceAppraiser* appraiser)
      : ledger_(ledger), appraiser_(appraiser) {}

  struct Result {
    /// What to store in the verdict history (with `evidence`); nothing when `duplicate`.
    v1::Verdict verdict;
    v1::Evidence evidence;
    /// A batch delivered before: acknowledged as accepted, not stored again.
    bool duplicate = false;
    /// Whether the node may delete the batch (accepted now or before).
    bool accepted = false;
    /// SHA-256 of the payload.
    std::string digest;
  };
  /// Appraises `batch`; a batch the ledger had pending is in delivery until Settle.
  Result Appraise(const std::string& node_id, const v1::SpoolBatch& batch) const;
  /// Reports whether `result`'s verdict was stored (durably, with the node's state): only
  /// then does the batch count as delivered; otherwise the node may send it again.
  void Settle(const std::string& node_id, const Result& result, bool stored) const;

 private:
  SpoolLedger* const ledger_;
  EvidenceAppraiser* const appraiser_;
};

/// The verifier's spool wiring in one object: a ledger over `registry`'s node states, the
/// stream appraiser that feeds it (wrapping `stream_appraiser`), and the batch appraiser (a
/// RuntimeAppraiser with `runtime_options` over a SpoolBatchCheck).
class SpoolAppraisal {
 public:
  /// `registry` and `stream_appraiser` must outlive this.
  SpoolAppraisal(NodeRegistry* registry, EvidenceAppraiser* stream_appraiser,
                 RuntimeAppraiser::Options runtime_options)
      : ledger_(registry),
        recording_(stream_appraiser, &ledger_),
        check_(&ledger_),
        runtime_(&check_, std::move(runtime_options)),
        batches_(&ledger_, &runtime_) {}

  /// What the Attest stream appraises evidence with.
  EvidenceAppraiser* stream_appraiser() { return &recording_; }
  /// What the Attest stream appraises spooled batches with.
  const SpoolBatchAppraiser* batches() const { return &batches_; }
  SpoolLedger& ledger() { return ledger_; }

 private:
  SpoolLedger ledger_;
  SpoolRecordingAppraiser recording_;
  SpoolBatchCheck check_;
  RuntimeAppraiser runtime_;
  SpoolBatchAppraiser batches_;
};

}  // namespace vigil::verifier
