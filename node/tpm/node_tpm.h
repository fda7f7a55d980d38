#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/enrollment_tpm.h"
#include "node/tpm/keys.h"
#include "node/tpm/pcr_quote.h"
#include "node/tpm/tpm_context.h"

namespace vigil::node::tpm {

/// The node's TPM with its identity: the EK (node_id), and the AK loaded under the SRK.
/// Thread-safe: every TPM command is serialized by an internal mutex.
///
/// node_id is the lowercase hex SHA-256 of the EK's marshalled TPMT_PUBLIC, that is the
/// contents of the TPM2B_PUBLIC sent as BeginEnrollmentRequest.ek_public without its 2-byte
/// size prefix, computed by NodeIdForEk (common/tpm/tpm_public.h) as the verifier does; see
/// docs/tpm.md.
class NodeTpm final : public EnrollmentTpm {
 public:
  struct Options {
    /// tpm2-tss TCTI configuration (NodeConfig.tcti).
    std::string tcti;
    /// Where ak.pub / ak.priv live (NodeConfig.state_dir); created 0700 if missing.
    std::string state_dir;
    /// AK key type for a new AK ("ecc" or "rsa", NodeConfig.ak_algorithm).
    std::string ak_algorithm = "ecc";
    /// EK templates in order of preference; the first whose certificate is in NV wins.
    std::vector<EkType> ek_preference = {EkType::kRsa2048, EkType::kEccP256, EkType::kEccP384};
  };

  /// Opens the TPM, derives the EK and reads its certificate, recreates the SRK, and loads
  /// the saved AK (or creates, saves and loads a new one). Transient objects other than the
  /// AK are flushed before returning.
  static absl::StatusOr<std::unique_ptr<NodeTpm>> Open(const Options& options);

  /// Lowercase hex SHA-256 of the EK's marshalled TPMT_PUBLIC.
  const std::string& node_id() const override { return node_id_; }
  EkType ek_type() const { return ek_type_; }
  /// Marshalled TPM2B_PUBLIC of the EK.
  const std::string& ek_public() const override { return ek_public_; }
  /// DER EK certificate from NV ("" when the TPM has none).
  const std::string& ek_certificate_der() const override { return ek_certificate_der_; }
  /// Marshalled TPM2B_PUBLIC of the AK.
  const std::string& ak_public() const override { return ak_public_; }
  /// Marshalled TPM2B_PUBLIC of the SRK the AK is loaded under (BeginEnrollmentRequest
  /// .srk_public).
  const std::string& srk_public() const override { return srk_public_; }
  /// Marshalled TPM2B_NAME of the AK, as the TPM computed it.
  const std::string& ak_name() const override { return ak_name_; }
  /// The AK's qualified name (TPM2B_NAME contents, no size prefix) as TPM2_ReadPublic
  /// reports it: what a quote's TPMS_ATTEST.qualifiedSigner holds. It differs from the name:
  /// it also covers the SRK and the owner hierarchy.
  const std::string& ak_qualified_name() const { return ak_qualified_name_; }
  /// True when Open created a new AK (there was none saved, or the saved one would not load
  /// on this TPM): any certificate bound to an earlier AK is then stale.
  bool ak_created() const { return ak_created_; }

  /// Extends `pcr` (SHA-256 bank) with `digest`.
  absl::Status ExtendPcr(uint32_t pcr, const Sha256Digest& digest);
  /// Reads PCRs of the SHA-256 bank, ascending.
  absl::StatusOr<std::vector<PcrReading>> ReadPcrs(const std::vector<uint32_t>& pcrs);
  /// Quotes `pcrs` with the AK, extraData = qualifying_data. When the quote fails, the AK is
  /// loaded again from its blob and the quote retried once: a TPM Restart (Shutdown(STATE)
  /// then Startup(CLEAR), e.g. hibernate and resume) flushes loaded objects.
  absl::StatusOr<QuoteResult> Quote(const std::vector<uint32_t>& pcrs,
                                    std::string_view qualifying_data);
  /// Recovers an enrollment secret: recreates the EK for this call, then
  /// TPM2_ActivateCredential with the AK.
  absl::StatusOr<std::string> ActivateCredential(std::string_view credential_blob,
                                                 std::string_view encrypted_secret) override;

 private:
  NodeTpm() = default;

  absl::Mutex mu_;
  std::unique_ptr<TpmContext> tpm_ ABSL_GUARDED_BY(mu_);
  TransientHandle ak_ ABSL_GUARDED_BY(mu_);
  AkBlob ak_blob_ ABSL_GUARDED_BY(mu_);  // to load the AK again after a TPM Restart
  std::string node_id_;
  EkType ek_type_ = EkType::kRsa2048;
  std::string ek_public_;
  std::string ek_certificate_der_;
  std::string ak_public_;
  std::string srk_public_;
  std::string ak_name_;
  std::string ak_qualified_name_;
  bool ak_created_ = false;
};

}  // namespace vigil::node::tpm
