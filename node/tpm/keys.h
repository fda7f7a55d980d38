#pragma once

// The node's TPM keys: the endorsement key (EK) from the TCG default templates with its
// certificate from NV, the storage root key (SRK) and the attestation key (AK).

#include <tss2/tss2_esys.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "node/tpm/tpm_context.h"

namespace vigil::node::tpm {

/// The EK templates of the TCG EK Credential Profile 2.x the node knows.
enum class EkType {
  /// Template L-1: RSA 2048, SHA-256, AES-128-CFB, PolicyA; certificate at NV 0x01C00002.
  kRsa2048,
  /// Template L-2: ECC NIST P-256, SHA-256, AES-128-CFB, PolicyA; certificate at 0x01C0000A.
  kEccP256,
  /// High-range template H-3: ECC NIST P-384, SHA-384, AES-256-CFB, PolicyB (userWithAuth
  /// set); certificate at 0x01C00016 (what swtpm_setup provisions for ECC).
  kEccP384,
};

/// "rsa2048", "ecc-p256", "ecc-p384".
std::string_view EkTypeName(EkType type);
/// Parses EkTypeName's output.
absl::StatusOr<EkType> ParseEkType(std::string_view name);
/// NV index of the EK certificate for `type`.
TPM2_HANDLE EkCertificateIndex(EkType type);
/// The TCG template for `type` (a TPM2B_PUBLIC to give TPM2_CreatePrimary).
TPM2B_PUBLIC EkTemplate(EkType type);

/// The AK key types: restricted signing keys.
enum class AkType {
  /// ECC NIST P-256, ECDSA with SHA-256 (the default).
  kEccP256,
  /// RSA 2048, RSASSA-PKCS1-v1_5 with SHA-256.
  kRsa2048,
};
/// Parses NodeConfig.ak_algorithm: "ecc" or "rsa".
absl::StatusOr<AkType> ParseAkType(std::string_view name);
/// AK template: fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign,
/// nameAlg SHA-256, empty authPolicy.
TPM2B_PUBLIC AkTemplate(AkType type);

/// An EK created in the TPM (transient, flushed with this object).
struct Ek {
  EkType type = EkType::kRsa2048;
  TransientHandle handle;
  TPM2B_PUBLIC public_area{};
  /// DER certificate from NV; empty when the TPM has none for this template.
  std::string certificate_der;
};

/// Creates the EK of `type` (TPM2_CreatePrimary in the endorsement hierarchy) and reads its
/// certificate; fails when a certificate exists but certifies a different key.
absl::StatusOr<Ek> CreateEk(TpmContext& tpm, EkType type);

/// Picks the EK: the first type in `preference` whose certificate is present in NV; when
/// none has one, the first type in `preference` without a certificate.
absl::StatusOr<Ek> SelectEk(TpmContext& tpm, const std::vector<EkType>& preference);

/// Reads the whole contents of an NV index (NV_ReadPublic, then chunked NV_Read with the
/// index's own authorization). NotFound when the index is not defined.
absl::StatusOr<std::string> ReadNvIndex(TpmContext& tpm, TPM2_HANDLE index);

/// Checks that a DER X.509 certificate's public key is the key of `ek` (RSA modulus and
/// exponent, or ECC curve and point).
absl::Status CheckCertificateMatchesKey(std::string_view certificate_der, const TPMT_PUBLIC& ek);

/// The SRK template of the TCG TPM v2.0 Provisioning Guidance: ECC NIST P-256, nameAlg
/// SHA-256, AES-128-CFB,
/// fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA|restricted|decrypt, empty
/// authPolicy, unique two zeroed 32-byte coordinates. CreateSrk gives it to the TPM; the fleet
/// simulator puts its software SRK's point into unique, so the names (and the AK's qualified
/// name) it computes are those a TPM would.
TPM2B_PUBLIC SrkTemplate();

/// Creates the SRK: an owner-hierarchy primary from SrkTemplate(), deterministic, so it is the
/// same key at every start.
absl::StatusOr<TransientHandle> CreateSrk(TpmContext& tpm);

/// An AK's wrapped key blob, as TPM2_Create returned it; loadable under the same SRK.
struct AkBlob {
  TPM2B_PUBLIC public_area{};
  TPM2B_PRIVATE private_area{};
};

/// Creates a new AK of `type` under `srk` (not loaded).
absl::StatusOr<AkBlob> CreateAk(TpmContext& tpm, ESYS_TR srk, AkType type);

/// Loads `blob` under `srk`.
absl::StatusOr<TransientHandle> LoadAk(TpmContext& tpm, ESYS_TR srk, const AkBlob& blob);

/// Saves the AK blob as <dir>/ak.pub (marshalled TPM2B_PUBLIC) and <dir>/ak.priv
/// (marshalled TPM2B_PRIVATE), both 0600, each written atomically.
absl::Status SaveAkBlob(const std::string& dir, const AkBlob& blob);

/// Reads what SaveAkBlob wrote. NotFound when there is no saved AK.
absl::StatusOr<AkBlob> ReadAkBlob(const std::string& dir);

}  // namespace vigil::node::tpm
