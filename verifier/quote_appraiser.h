#pragma once

#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/digest.h"

#include "verifier/evidence_appraiser.h"
#include "verifier/log_appraiser.h"
#include "verifier/node_registry.h"
#include "verifier/policy_set.h"
#include "verifier/reference_values.h"
#include "verifier/unverified_appraiser.h"

namespace vigil::verifier {

/// Appraises TPM-quoted evidence (docs/appraisal.md): every check in order, each failure its
/// own AppraisalReason with TRUST_REJECTED; evidence that passes them all and whose payload is
/// a RuntimeReport about the certificate's node is TRUST_AFFIRMING, or TRUST_WARNING with
/// CLOCK_UNSAFE when the quote says the TPM clock is not safe. The report must be measured
/// under a policy bundle the challenge accepts (POLICY_DIGEST_MISMATCH otherwise; see
/// CheckPolicyBinding). On success the AK's clock and
/// the node's measurement state advance in memory and are marked for the registry's next
/// commit (the Attest stream acknowledges only once that commit is durable: StateDurableSink). Per
/// node, appraisals serialize; different nodes appraise in parallel. Thread-safe.
class QuoteAppraiser final : public EvidenceAppraiser {
 public:
  struct Options {
    /// The PCR the node extends its measurements into; its quoted value must equal the
    /// replay of the measurement log.
    uint32_t measurement_pcr = 15;
    /// Accept PCR 16 or 23 (resettable by anyone on the node) as the measurement PCR: tests
    /// only.
    bool allow_resettable_pcr = false;
  };

  /// INVALID_ARGUMENT for a measurement PCR among the boot PCRs 0-7, or a resettable one
  /// (16, 23) without allow_resettable_pcr.
  static absl::Status CheckOptions(const Options& options);

  /// `registry`, `reference_values` and `boot_reference_values` (null or empty: boot PCRs are
  /// not compared, and each verdict's detail says so) must outlive the appraiser. `policies`
  /// (null: the verifier distributes no policy) are the bundles the Attest streams send:
  /// policy-bundle records of those bundles are accepted beside the reference values, and a
  /// verdict bound to one carries its digest and policy ids. Fails as CheckOptions does.
  static absl::StatusOr<std::unique_ptr<QuoteAppraiser>> Create(
      NodeRegistry* registry, const ReferenceValues* reference_values,
      const BootReferenceValues* boot_reference_values, Options options,
      const PolicySet* policies = nullptr);

  v1::Verdict Appraise(const AppraisalInput& input) override;

  /// How many measurement-log entries the verifier holds for `node_id` (0 when unknown):
  /// the Acknowledgement's log_entries_acknowledged, i.e. the record number the node should
  /// send entries from.
  uint64_t LogEntriesAcknowledged(const std::string& node_id) const override;

 private:
  QuoteAppraiser(NodeRegistry* registry, const ReferenceValues* reference_values,
                 const BootReferenceValues* boot_reference_values, Options options,
                 const PolicySet* policies);

  // The quote's signature by the node's AK and the TPMS_ATTEST fields that bind it to the
  // AK (qualifiedSigner) and to this evidence (magic, type, extraData).
  std::optional<AppraisalFailure> CheckSignedQuote(const AppraisalInput& input,
                                                   const Sha256Digest& payload_digest,
                                                   const TPMS_ATTEST& attest,
                                                   const TPMT_SIGNATURE& signature,
                                                   const NodeState& state) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu);
  // The measurement state as of this evidence in `*next`: what the verifier holds for the
  // node (nothing after a TPM reset) joined with the evidence's entries, checked against the
  // quoted PCRs; `*epoch` the current epoch's entries the later checks consult.
  std::optional<AppraisalFailure> AppraiseLog(const v1::Evidence& evidence,
                                              const TPMS_CLOCK_INFO& clock, const NodeState& state,
                                              const std::map<uint32_t, std::string>& pcr_values,
                                              MeasurementState* next,
                                              std::vector<v1::MeasurementLogEntry>* epoch) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu);
  // The boot PCRs (0-7) against the boot reference values; `*note` says what was affirmed.
  std::optional<AppraisalFailure> AppraiseBoot(const std::map<uint32_t, std::string>& pcr_values,
                                               std::string* note) const;
  // Accepted: the node's state advances to this quote's clock and `measurements`, the
  // "spool-batch" records of `evidence`'s verified log delta join its spool ledger, and the
  // first accepted qualifiedSigner `signer` is pinned (for a node enrolled without its SRK).
  void Advance(const std::string& node_id, const TPMS_CLOCK_INFO& clock, std::string_view signer,
               MeasurementState measurements, const v1::Evidence& evidence, NodeState& state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu);

  NodeRegistry* const registry_;
  const ReferenceValues* const reference_values_;
  const BootReferenceValues* const boot_reference_values_;
  const Options options_;
  const PolicySet* const policies_;
};

}  // namespace vigil::verifier
