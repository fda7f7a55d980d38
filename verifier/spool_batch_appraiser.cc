#include "verifier/spool_batch_appraiser.h"

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "spdlog/spdlog.h"
#include "verifier/unverified_appraiser.h"

namespace vigil::verifier {

v1::Verdict SpoolRecordingAppraiser::Appraise(const AppraisalInput& input) {
  // Most evidence measures no spooled batch: then there is nothing to record, and the
  // registry is not asked for the node's held count twice per report.
  if (input.evidence == nullptr || !HasSpoolBatchRecord(input.evidence->log_entries())) {
    return inner_->Appraise(input);
  }
  const uint64_t held_before = inner_->LogEntriesAcknowledged(input.node_id);
  v1::Verdict verdict = inner_->Appraise(input);
  const bool verified = verdict.status() != v1::TRUST_REJECTED &&
                        verdict.status() != v1::TRUST_UNVERIFIED &&
                        verdict.status() != v1::TRUST_STATUS_UNSPECIFIED;
  if (verified) {
    // Entries below what the verifier held before were resent, and the appraisal need not
    // have compared them: only new ones were replayed against the quote. When the count
    // went down, the held state started again (a new boot) and every entry was new.
    const uint64_t held_after = inner_->LogEntriesAcknowledged(input.node_id);
    ledger_->AddMeasured(input.node_id, input.evidence->log_entries(),
                         held_after >= held_before ? held_before : 0);
  }
  return verdict;
}

v1::Verdict SpoolBatchCheck::Appraise(const AppraisalInput& input) {
  // Parses the payload and checks it names the connected node.
  v1::Verdict verdict = UnverifiedAppraiser().Appraise(input);
  if (verdict.status() == v1::TRUST_REJECTED) return verdict;
  uint64_t recnum = 0;
  const Sha256Digest digest = Sha256(input.evidence->payload());
  switch (ledger_->Take(input.node_id, std::string(DigestBytes(digest)), &recnum)) {
    case SpoolLedger::Outcome::kAccepted:
      verdict.set_status(v1::TRUST_AFFIRMING);
      verdict.set_detail(absl::StrCat("spooled batch, measured at record ", recnum,
                                      " of the node's measurement log"));
      return verdict;
    case SpoolLedger::Outcome::kAlreadyDelivered:
    case SpoolLedger::Outcome::kUnmeasured:
      break;
  }
  verdict.set_status(v1::TRUST_REJECTED);
  verdict.add_reasons(v1::SPOOL_BATCH_UNMEASURED);
  verdict.set_detail(absl::StrCat(
      "spooled batch ", HexEncode(digest).substr(0, 12),
      " matches no spool-batch record of a measurement log verified for this node: altered "
      "after it was measured, never measured, or measured where this verifier's node registry "
      "did not learn it"));
  return verdict;
}

SpoolBatchAppraiser::Result SpoolBatchAppraiser::Appraise(const std::string& node_id,
                                                          const v1::SpoolBatch& batch) const {
  Result result;
  result.evidence.set_payload(batch.payload());
  result.digest = std::string(DigestBytes(Sha256(batch.payload())));
  // A batch resent after its acknowledgement was lost: the node may delete it.
  if (ledger_->Delivered(node_id, result.digest)) {
    result.duplicate = true;
    result.accepted = true;
    return result;
  }
  result.verdict = appraiser_->Appraise(AppraisalInput{node_id, nullptr, &result.evidence});
  result.verdict.set_from_spool(true);
  result.accepted = result.verdict.status() != v1::TRUST_REJECTED;
  if (!result.accepted) {
    spdlog::warn("spooled batch {} of node {} refused: {}", batch.sequence(), node_id.substr(0, 12),
                 result.verdict.detail());
  }
  return result;
}

void SpoolBatchAppraiser::Settle(const std::string& node_id, const Result& result,
                                 bool stored) const {
  // Whatever the verdict, the check may have taken the batch (a policy can still refuse it);
  // settling a batch not in delivery changes nothing.
  if (result.duplicate) return;
  ledger_->Settle(node_id, result.digest, stored);
}

}  // namespace vigil::verifier
