#include "node/agent/tpm_sealer.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace vigil::node {

TpmSealer::TpmSealer(tpm::NodeTpm* tpm, Measurer* measurer, std::vector<uint32_t> pcrs)
    : tpm_(tpm), measurer_(measurer), pcrs_(std::move(pcrs)) {
  std::sort(pcrs_.begin(), pcrs_.end());
  pcrs_.erase(std::unique(pcrs_.begin(), pcrs_.end()), pcrs_.end());
}

Sha256Digest TpmSealer::QualifyingData(std::string_view nonce, std::string_view payload) {
  Sha256Digest payload_digest = Sha256(payload);
  return Sha256Concat({nonce, DigestBytes(payload_digest)});
}

absl::StatusOr<v1::Evidence> TpmSealer::Seal(std::string payload, const v1::Challenge& challenge,
                                             uint64_t log_from_recnum) {
  if (challenge.nonce().empty()) return absl::InvalidArgumentError("challenge has no nonce");
  std::vector<uint32_t> pcrs(challenge.pcr_selection().begin(), challenge.pcr_selection().end());
  if (pcrs.empty()) pcrs = pcrs_;
  std::sort(pcrs.begin(), pcrs.end());
  pcrs.erase(std::unique(pcrs.begin(), pcrs.end()), pcrs.end());

  // After a TPM Restart the PCR no longer matches the log: measure the start again first.
  if (measurer_ != nullptr) RETURN_IF_ERROR(measurer_->ReconcileWithPcr());
  Sha256Digest qualifying = QualifyingData(challenge.nonce(), payload);
  const absl::Time quote_start = absl::Now();
  absl::StatusOr<tpm::QuoteResult> quoted = tpm_->Quote(pcrs, DigestBytes(qualifying));
  if (quote_observer_) quote_observer_(absl::Now() - quote_start, quoted.status());
  ASSIGN_OR_RETURN(tpm::QuoteResult quote, std::move(quoted));

  v1::Evidence evidence;
  evidence.set_nonce(challenge.nonce());
  evidence.set_payload(std::move(payload));
  v1::Quote* q = evidence.mutable_quote();
  q->set_attest(std::move(quote.attest));
  q->set_signature(std::move(quote.signature));
  for (const tpm::PcrReading& r : quote.pcrs) {
    v1::PcrValue* v = q->add_pcr_values();
    v->set_index(r.index);
    v->set_digest(std::string(DigestBytes(r.value)));
  }
  if (measurer_ != nullptr) {
    for (v1::MeasurementLogEntry& e : measurer_->EntriesFrom(log_from_recnum)) {
      *evidence.add_log_entries() = std::move(e);
    }
  }
  return evidence;
}

absl::StatusOr<std::unique_ptr<TpmEvidenceSealer>> TpmEvidenceSealer::Open(
    const NodeConfig& config) {
  std::unique_ptr<TpmEvidenceSealer> s(new TpmEvidenceSealer());
  tpm::NodeTpm::Options tpm_options;
  tpm_options.tcti = config.tcti;
  tpm_options.state_dir = config.state_dir;
  tpm_options.ak_algorithm = config.ak_algorithm;
  ASSIGN_OR_RETURN(s->tpm_, tpm::NodeTpm::Open(tpm_options));
  ASSIGN_OR_RETURN(s->identity_, EnsureEnrolled(config, *s->tpm_));

  Measurer::Options m;
  m.pcr = config.measurement_pcr;
  m.allow_resettable_pcr = config.allow_resettable_pcr;
  m.log_path = config.measurement_log_path;
  ASSIGN_OR_RETURN(s->measurer_, Measurer::Start(s->tpm_.get(), m));
  RETURN_IF_ERROR(s->measurer_->MeasureNodeBinary());

  std::vector<uint32_t> pcrs = config.boot_pcrs;
  pcrs.push_back(config.measurement_pcr);
  s->sealer_ = std::make_unique<TpmSealer>(s->tpm_.get(), s->measurer_.get(), pcrs);
  return s;
}

}  // namespace vigil::node
