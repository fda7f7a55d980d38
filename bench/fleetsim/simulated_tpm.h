#pragma once

// A simulated TPM for the fleet simulator: software keys in TPM clothing. Its EK (RSA 2048 or
// ECC P-256, TCG default template attributes) is certified by the simulated-TPM CA, which a
// verifier accepts only with --accept-simulated-tpm; its AK (ECDSA P-256) is created under an
// SRK whose public area it sends at enrollment; it activates credentials as TPM2_Activate-
// Credential does (seed, KDFa, integrity HMAC, decryption), extends its measurement PCR and
// keeps the matching log, and quotes: real TPMS_ATTEST structures (qualifiedSigner = the
// AK's qualified name under the SRK, extraData, an advancing clock, the PCR digest) signed
// by the AK. The verifier checks all of it as it checks a TPM's quotes.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/digest.h"
#include "common/enrollment_tpm.h"
#include "common/openssl_util.h"
#include "common/pki.h"
#include "common/tpm/software_ak.h"
#include "common/tpm/tpm_public.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::fleetsim {

enum class EkAlgorithm { kEccP256, kRsa2048 };

/// The measurement PCR the simulated node extends (the verifier's default).
inline constexpr uint32_t kMeasurementPcr = 15;

/// The TPM2B_PUBLIC of an owner-hierarchy SRK from node::tpm::SrkTemplate() whose key is
/// `key` (ECC P-256): what TPM2_CreatePrimary returns for that template when its key is `key`.
/// Only its name matters: it qualifies the AK's.
absl::StatusOr<std::string> SimulatedSrkPublic(EVP_PKEY* key);

class SimulatedTpm final : public EnrollmentTpm {
 public:
  /// A new TPM: fresh EK (certified by `ek_ca`), SRK and AK keys.
  static absl::StatusOr<std::unique_ptr<SimulatedTpm>> Create(EkAlgorithm algorithm,
                                                              const CaMaterial& ek_ca);

  /// Marshalled TPM2B_PUBLIC of the EK, SRK and AK; DER EK certificate; the AK's TPM2B_NAME
  /// (with its size prefix, as BeginEnrollmentRequest.ak_name takes it).
  const std::string& ek_public() const override { return ek_public_; }
  const std::string& ek_certificate_der() const override { return ek_certificate_der_; }
  const std::string& srk_public() const override { return srk_public_; }
  const std::string& ak_public() const override { return ak_.tpm2b_public; }
  const std::string& ak_name() const override { return ak_tpm2b_name_; }
  /// Hex SHA-256 of the EK's TPMT_PUBLIC, as the verifier derives it.
  const std::string& node_id() const override { return node_id_; }

  /// TPM2_ActivateCredential for the AK, in software. The EK's private key is dropped
  /// afterwards: a simulated node enrolls once.
  absl::StatusOr<std::string> ActivateCredential(std::string_view credential_blob,
                                                 std::string_view encrypted_secret) override;

  /// Extends the measurement PCR with `digest` (32 bytes) and appends the log entry.
  void Measure(std::string_view event_type, std::string_view content, std::string_view digest);
  /// The measurement log, record 0 first.
  const std::vector<v1::MeasurementLogEntry>& log() const { return log_; }

  /// A quote of `pcrs` (SHA-256 bank: the boot PCRs 0-7 hold fixed values, the measurement
  /// PCR the log's replay) with extraData = `qualifying_data`. The TPM clock advances with
  /// real time (strictly, between quotes).
  absl::StatusOr<v1::Quote> Quote(const std::vector<uint32_t>& pcrs,
                                  std::string_view qualifying_data);

 private:
  SimulatedTpm() = default;

  EvpPkeyPtr ek_key_;  // null once activated
  tpm::TpmPublic ek_;
  std::string ek_public_;
  std::string ek_certificate_der_;
  std::string srk_public_;
  tpm::SoftwareAk ak_;
  std::string ak_tpm2b_name_;
  std::string ak_qualified_name_;
  std::string node_id_;
  Sha256Digest measurement_pcr_{};
  std::vector<v1::MeasurementLogEntry> log_;
  absl::Time started_;
  uint64_t clock_offset_ms_ = 0;
  uint64_t last_clock_ms_ = 0;
};

}  // namespace vigil::fleetsim
