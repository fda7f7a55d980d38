#pragma once

// Binding evidence to the policy bundle the verifier sent the node (docs/appraisal.md,
// "Policy binding").

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "verifier/evidence_appraiser.h"
#include "verifier/log_appraiser.h"
#include "verifier/policy_set.h"
#include "verifier/reference_values.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// One Attest stream's account of the bundles it sent and of the digests evidence for its
/// outstanding challenge may carry (IssuedChallenge::policy_sha256). Not thread-safe: the
/// stream calls it under its own mutex, in the same critical section as queueing the
/// bundle or challenge it records, so the order recorded here is the order the node
/// receives them in.
class StreamPolicyLog {
 public:
  /// At most this many digests are kept for one challenge; older ones are forgotten first
  /// (the PolicySet no longer holds them either: PolicySet::kKeptSnapshots).
  static constexpr size_t kMaxAcceptable = PolicySet::kKeptSnapshots + 1;

  /// Records that the bundle `sha256` is being sent now. False, recording nothing, when it
  /// is the bundle sent last on this stream (the node runs it already: do not send it).
  bool Sent(const std::string& sha256);

  /// Records that a new challenge is being issued now: evidence answering it may carry the
  /// bundle sent last and any bundle sent from now on; the node's own policy only while no
  /// bundle was sent.
  void ChallengeIssued();

  /// Fills the policy fields of `challenge`, for evidence answering it that was read now.
  void Bind(IssuedChallenge* challenge) const;

  /// The digest of the bundle sent last ("" before any).
  const std::string& last_sent() const { return last_sent_; }

 private:
  std::string last_sent_;
  bool node_policy_acceptable_ = true;
  std::vector<std::string> acceptable_;
};

/// The latest policy-bundle or no-policy-bundle record of the current epoch of `log`; null
/// when the epoch has none.
const v1::MeasurementLogEntry* LatestPolicyRecord(const std::vector<v1::MeasurementLogEntry>& log);

/// What evidence that passes CheckPolicyBinding was appraised under.
struct BoundPolicy {
  /// Hex SHA-256 of the bundle ("" when the node runs without one).
  std::string sha256;
  /// "name@revision" of its policies (empty for the node's own --policy file).
  std::vector<std::string> policy_ids;
};

/// Checks that `report_digest` (RuntimeReport.policy_digest) equals the digest of the latest
/// policy record of the current epoch of `log` ("" for no-policy-bundle), and that this
/// digest is one `challenge` accepts: a bundle sent on the stream (which `policies`, when
/// given, must still hold, so the policy evaluation finds it), or, when the challenge allows
/// the node's own policy, none or a policy-bundle reference value. Otherwise
/// POLICY_DIGEST_MISMATCH, the detail naming both digests (shortened). On success fills
/// `bound`.
std::optional<AppraisalFailure> CheckPolicyBinding(const std::vector<v1::MeasurementLogEntry>& log,
                                                   const std::string& report_digest,
                                                   const IssuedChallenge& challenge,
                                                   const ReferenceValues& reference_values,
                                                   const PolicySet* policies, BoundPolicy* bound);

}  // namespace vigil::verifier
