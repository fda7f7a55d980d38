#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "vigil/v1/attestation.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {

/// The challenge a stream issued and is waiting for an answer to.
struct IssuedChallenge {
  std::string nonce;
  absl::Time expires;
  std::vector<uint32_t> pcr_selection;
  /// Which policy bundles evidence answering this challenge may be measured under
  /// (docs/appraisal.md, "Policy binding"). The node handles the stream's messages in order,
  /// so it answers under the bundle it was sent last before the challenge, or under one sent
  /// after the challenge that it applied before answering:
  ///  - policy_sha256: the hex digest of the bundle last sent on the stream before the
  ///    challenge was issued (when one was), then of every bundle sent on the stream after
  ///    it, up to the moment the evidence was read;
  ///  - node_policy_acceptable: no bundle had been sent on the stream when the challenge was
  ///    issued, so the node may still answer under its own policy (a --policy file whose
  ///    digest is a policy-bundle reference value, or none).
  std::vector<std::string> policy_sha256 = {};
  bool node_policy_acceptable = true;
};

/// What an appraiser is given: the node's identity (from its certificate, never from the
/// evidence), the challenge the stream verified the evidence answers, and the evidence.
struct AppraisalInput {
  std::string node_id;
  const IssuedChallenge* challenge = nullptr;
  const v1::Evidence* evidence = nullptr;
  /// evidence->payload already parsed as a RuntimeReport by an appraiser that wraps another
  /// (RuntimeAppraiser), so the payload is parsed once; null when it was not parsed, or does
  /// not parse: an appraiser then parses the payload itself.
  const v1::RuntimeReport* report = nullptr;
};

/// Appraises one piece of evidence. Implementations are thread-safe: one appraiser serves
/// every stream. Nonce freshness (unknown, reused, expired) is checked by the stream before
/// an appraiser is called.
class EvidenceAppraiser {
 public:
  virtual ~EvidenceAppraiser() = default;
  virtual v1::Verdict Appraise(const AppraisalInput& input) = 0;

  /// How many measurement-log entries the verifier holds for `node_id`: the record number
  /// the node sends entries from next (Acknowledgement.log_entries_acknowledged). An
  /// appraiser that keeps no log holds none.
  virtual uint64_t LogEntriesAcknowledged(const std::string& node_id) const { return 0; }
};

}  // namespace vigil::verifier
