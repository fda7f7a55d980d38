#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

#include "node/agent/config.h"
#include "node/agent/enrollment_client.h"
#include "node/agent/evidence_sealer.h"
#include "node/agent/measurer.h"
#include "node/tpm/node_tpm.h"

namespace vigil::node {

/// Seals evidence with the node's TPM: a TPM2_Quote by the AK over the measurement PCR and
/// the boot PCRs (SHA-256 bank) with extraData = SHA-256(nonce || SHA-256(payload)), the
/// quoted PCR values, and the measurement-log entries the verifier has not acknowledged.
class TpmSealer final : public EvidenceSealer {
 public:
  /// Told how long each TPM2_Quote call took and how it ended.
  using QuoteObserver = std::function<void(absl::Duration elapsed, const absl::Status& outcome)>;

  /// `pcrs` is quoted when a challenge names no PCRs; a challenge's pcr_selection wins.
  /// `tpm` and `measurer` (may be null) must outlive the sealer. Before each quote the
  /// measurer reconciles its log with the PCR (Measurer::ReconcileWithPcr), so a quote after
  /// a TPM Restart carries a new log epoch with the start sequence measured again.
  TpmSealer(tpm::NodeTpm* tpm, Measurer* measurer, std::vector<uint32_t> pcrs);

  absl::StatusOr<v1::Evidence> Seal(std::string payload, const v1::Challenge& challenge,
                                    uint64_t log_from_recnum) override;

  /// The quote's qualifying data for `nonce` and `payload`: SHA-256(nonce || SHA-256(payload)).
  static Sha256Digest QualifyingData(std::string_view nonce, std::string_view payload);

  /// Calls `observer` after every quote from now on (on the sealing thread); empty: none.
  void set_quote_observer(QuoteObserver observer) { quote_observer_ = std::move(observer); }

 private:
  tpm::NodeTpm* tpm_;
  Measurer* measurer_;
  std::vector<uint32_t> pcrs_;
  QuoteObserver quote_observer_;
};

/// The TPM side of `vigil-node run` as one sealer that owns its parts, opened in order:
/// the TPM (EK, SRK, saved or new AK), enrollment when the node has no usable certificate
/// (EnsureEnrolled), the first measurements of this start (log replay, node-start, node
/// binary), and a TpmSealer over the measurement PCR and the boot PCRs. The caller measures
/// the rest of the start sequence through measurer(): the BPF object and its program tags
/// when the probes run, then the policy bundle or its absence.
class TpmEvidenceSealer final : public EvidenceSealer {
 public:
  static absl::StatusOr<std::unique_ptr<TpmEvidenceSealer>> Open(const NodeConfig& config);

  absl::StatusOr<v1::Evidence> Seal(std::string payload, const v1::Challenge& challenge,
                                    uint64_t log_from_recnum) override {
    return sealer_->Seal(std::move(payload), challenge, log_from_recnum);
  }

  void set_quote_observer(TpmSealer::QuoteObserver observer) {
    sealer_->set_quote_observer(std::move(observer));
  }

  tpm::NodeTpm& tpm() { return *tpm_; }
  /// For measurements known only later (the BPF object, its program tags, the policy).
  Measurer& measurer() { return *measurer_; }
  const NodeIdentity& identity() const { return identity_; }

 private:
  TpmEvidenceSealer() = default;
  std::unique_ptr<tpm::NodeTpm> tpm_;
  std::unique_ptr<Measurer> measurer_;
  std::unique_ptr<TpmSealer> sealer_;
  NodeIdentity identity_;
};

}  // namespace vigil::node
