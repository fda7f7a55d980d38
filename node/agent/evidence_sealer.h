#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::node {

/// Binds a serialized RuntimeReport to a verifier's challenge. The TPM implementation quotes
/// with extraData = SHA-256(nonce || SHA-256(payload)) and attaches the measurement-log
/// entries from `log_from_recnum` on; a sealer without a TPM leaves the quote empty (the
/// verifier then refuses the evidence as unquoted).
class EvidenceSealer {
 public:
  virtual ~EvidenceSealer() = default;

  /// Builds the Evidence for `payload` (the exact bytes to send) answering `challenge`.
  virtual absl::StatusOr<v1::Evidence> Seal(std::string payload, const v1::Challenge& challenge,
                                            uint64_t log_from_recnum) = 0;
};

/// A sealer for nodes running without a TPM: evidence carries no quote.
class UnquotedSealer final : public EvidenceSealer {
 public:
  absl::StatusOr<v1::Evidence> Seal(std::string payload, const v1::Challenge& challenge,
                                    uint64_t log_from_recnum) override {
    v1::Evidence e;
    e.set_nonce(challenge.nonce());
    e.set_payload(std::move(payload));
    return e;
  }
};

}  // namespace vigil::node
