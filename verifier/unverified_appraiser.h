#pragma once

#include <string>

#include "verifier/evidence_appraiser.h"

namespace vigil::verifier {

/// The appraiser used until evidence is bound to a TPM quote: it checks that the payload is
/// a RuntimeReport about the certificate's own node and labels it TRUST_UNVERIFIED. It never
/// affirms anything. Stateless and thread-safe.
class UnverifiedAppraiser final : public EvidenceAppraiser {
 public:
  /// PAYLOAD_MALFORMED (rejected) when the payload does not parse; NODE_MISMATCH (rejected)
  /// when the report's node_id is set and names another node; otherwise TRUST_UNVERIFIED
  /// with detail "evidence not bound to a TPM quote". Always sets evidence_sha256 and the
  /// appraisal time.
  v1::Verdict Appraise(const AppraisalInput& input) override;
};

/// The payload checks of UnverifiedAppraiser on a payload already parsed: `report` is the
/// payload as a RuntimeReport, or null when it does not parse. On failure sets `verdict`'s
/// status (TRUST_REJECTED), reason (PAYLOAD_MALFORMED or NODE_MISMATCH) and detail, and
/// returns false.
bool CheckReportPayload(const std::string& node_id, const v1::RuntimeReport* report,
                        v1::Verdict& verdict);

}  // namespace vigil::verifier
