#pragma once

// The last stage of appraisal: the runtime state of genuine evidence judged against the
// reference policies, the evidence's own trust kept apart in a trust vector, and the result
// signed as an EAR token (docs/appraisal.md, "Runtime policy").

#include <cstdint>
#include <functional>
#include <string>

#include "common/policy/engine.h"
#include "verifier/evidence_appraiser.h"
#include "verifier/policy_set.h"
#include "verifier/results/ear_signer.h"
#include "verifier/simulated_tpm.h"

namespace vigil::verifier {

/// Wraps the appraiser that checks the evidence (QuoteAppraiser) and completes its verdict:
///
/// - A revoked node's evidence is TRUST_REJECTED with NODE_REVOKED before anything else.
/// - Evidence the inner appraiser rejected stays rejected; the trust vector says which claim
///   failed (identity, hardware or executables).
/// - Genuine evidence is evaluated under the policies of the bundle it was measured under
///   (RuntimeReport.policy_digest, found in the PolicySet; the quote appraisal's binding
///   check already refused a digest the stream did not send): one WorkloadVerdict per
///   selected workload, every rule outcome flattened into Verdict.rules. A bundle the set
///   does not hold (the node's own --policy file, a reference value) is not evaluated.
///   The verdict's status is the worst of the evidence's own status, the workloads' and,
///   when the probes lost events, a warning. With no policy in force the status is the
///   evidence's; with policies in force but no workload selected in the report it is
///   TRUST_NONE (nothing was appraised).
/// - The built-in rule vigil.node.self (policy::EvaluateNodeSelf) on the node's own security
///   state: evaluated for every report that carries it, its outcome first in Verdict.rules.
///   A failing outcome grades the verdict as a warning, or as contraindicated when
///   `require_node_self_protection` is set, which also contraindicates a report that does
///   not carry the node's state. Without that option, a report without it is appraised
///   exactly as before the rule existed.
/// - A node enrolled with a simulated TPM gets MarkTpmSimulated on every verdict, rejected
///   or not, before it is signed.
/// - node_id, report_sequence, policy_digest, policy_ids and trust_vector are filled, and the
///   verdict is signed (Verdict.ear_token) when a signer is given.
///
/// Thread-safe when the inner appraiser is.
class RuntimeAppraiser final : public EvidenceAppraiser {
 public:
  struct Options {
    /// The reference policies; null: the evidence alone is appraised.
    const PolicySet* policies = nullptr;
    /// Signs each verdict; null: no ear_token.
    const EarSigner* signer = nullptr;
    /// The AR4SI `hardware` claim for quoted evidence: 2 when every enrolled EK was
    /// established by a certificate chain or an operator's approval, 32 (warning) when
    /// the verifier enrolls on first use, 0 for no claim.
    int32_t hardware_claim = 2;
    /// Whether an operator revoked the node; null: never.
    std::function<bool(const std::string& node_id)> is_revoked;
    /// Whether the node's TPM is simulated (--accept-simulated-tpm); null: never.
    IsTpmSimulated is_tpm_simulated;
    policy::EvaluateOptions evaluate;
    /// Whether nodes must report their own state and meet vigil.node.self.
    bool require_node_self_protection = false;
  };

  /// `inner` must outlive the appraiser.
  RuntimeAppraiser(EvidenceAppraiser* inner, Options options);

  v1::Verdict Appraise(const AppraisalInput& input) override;
  uint64_t LogEntriesAcknowledged(const std::string& node_id) const override;

 private:
  // Fills the runtime part of a verdict the inner appraiser accepted.
  void AppraiseRuntime(const v1::RuntimeReport& report, v1::Verdict& verdict) const;
  // Adds the vigil.node.self outcome and grades the verdict by it.
  void AppraiseNodeSelf(const v1::RuntimeReport& report, v1::Verdict& verdict) const;

  EvidenceAppraiser* const inner_;
  const Options options_;
};

/// The trust vector of evidence rejected for `reason`: the claim that reason speaks to is
/// contraindicated (96); the others say nothing.
v1::TrustVector RejectionTrustVector(v1::AppraisalReason reason);

}  // namespace vigil::verifier
