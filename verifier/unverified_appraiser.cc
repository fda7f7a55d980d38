#include "verifier/unverified_appraiser.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/escape.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {

v1::Verdict UnverifiedAppraiser::Appraise(const AppraisalInput& input) {
  v1::Verdict verdict;
  verdict.set_appraised_unix_nano(absl::ToUnixNanos(absl::Now()));
  if (input.evidence == nullptr) {
    verdict.set_status(v1::TRUST_REJECTED);
    verdict.add_reasons(v1::PAYLOAD_MALFORMED);
    verdict.set_detail("no evidence");
    return verdict;
  }
  const std::string& payload = input.evidence->payload();
  verdict.set_evidence_sha256(HexEncode(Sha256(payload)));

  v1::RuntimeReport parsed;
  const v1::RuntimeReport* report = input.report;
  if (report == nullptr && parsed.ParseFromString(payload)) report = &parsed;
  if (!CheckReportPayload(input.node_id, report, verdict)) return verdict;
  verdict.set_status(v1::TRUST_UNVERIFIED);
  verdict.set_detail("evidence not bound to a TPM quote");
  return verdict;
}

bool CheckReportPayload(const std::string& node_id, const v1::RuntimeReport* report,
                        v1::Verdict& verdict) {
  if (report == nullptr) {
    verdict.set_status(v1::TRUST_REJECTED);
    verdict.add_reasons(v1::PAYLOAD_MALFORMED);
    verdict.set_detail("payload is not a RuntimeReport");
    return false;
  }
  if (!report->node_id().empty() && report->node_id() != node_id) {
    verdict.set_status(v1::TRUST_REJECTED);
    verdict.add_reasons(v1::NODE_MISMATCH);
    verdict.set_detail(absl::StrCat("report names node ", EscapeUntrusted(report->node_id(), 64),
                                    " but the certificate is node ", node_id));
    return false;
  }
  return true;
}

}  // namespace vigil::verifier
