#pragma once

#include <tss2/tss2_tpm2_types.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/openssl_util.h"

namespace vigil::tpm {

/// A TPM object's public area, decoded, together with the exact marshalled TPMT_PUBLIC bytes
/// it was decoded from (names and node ids are computed over those bytes, never re-encoded).
struct TpmPublic {
  TPMT_PUBLIC area{};
  std::string marshalled;
};

/// Decodes a marshalled TPM2B_PUBLIC (2-byte size, then TPMT_PUBLIC). The size prefix must
/// match and every byte must be consumed.
absl::StatusOr<TpmPublic> ParseTpm2bPublic(std::string_view tpm2b_public);

/// Decodes a marshalled TPMT_PUBLIC (no size prefix). Every byte must be consumed.
absl::StatusOr<TpmPublic> ParseTpmtPublic(std::string_view tpmt_public);

/// The OpenSSL digest for a TPM hash algorithm (SHA-256, SHA-384 or SHA-512 only).
absl::StatusOr<const EVP_MD*> DigestForAlg(TPMI_ALG_HASH alg);

/// The object's TPM name: nameAlg (2 bytes, big endian) || H_nameAlg(TPMT_PUBLIC), i.e. the
/// contents of its TPM2B_NAME without the size prefix.
absl::StatusOr<std::string> ComputeName(const TpmPublic& pub);

/// The qualified name of a primary object created in the hierarchy `hierarchy` (e.g.
/// TPM2_RH_OWNER) with public area `primary` (TPM 2.0 Part 1, "Qualified Name"): nameAlg ||
/// H_nameAlg(QN(hierarchy) || Name(primary)), where a hierarchy's qualified name is its
/// 4-byte handle.
absl::StatusOr<std::string> PrimaryQualifiedName(TPM2_HANDLE hierarchy, const TpmPublic& primary);

/// The qualified name of object `child` under a parent whose qualified name is
/// `parent_qualified_name`: nameAlg || H_nameAlg(QN(parent) || Name(child)), nameAlg being
/// the child's. What TPM2_ReadPublic reports as qualifiedName and a quote as qualifiedSigner.
absl::StatusOr<std::string> ChildQualifiedName(std::string_view parent_qualified_name,
                                               const TpmPublic& child);

/// Checks that `parent` is fit to be an AK's storage parent (an SRK): a restricted decryption
/// key (restricted and decrypt set, sign clear) with a symmetric algorithm, fixedTPM and
/// fixedParent set (it cannot leave the TPM nor move in its hierarchy), RSA or ECC, nameAlg
/// SHA-256, SHA-384 or SHA-512.
absl::Status CheckStorageParentAttributes(const TpmPublic& parent);

/// Strips and checks the 2-byte size prefix of a marshalled TPM2B_NAME.
absl::StatusOr<std::string> UnwrapTpm2bName(std::string_view tpm2b_name);

/// node_id: lowercase hex SHA-256 of the EK's marshalled TPMT_PUBLIC (the contents of its
/// TPM2B_PUBLIC without the size prefix), whatever the EK's nameAlg.
std::string NodeIdForEk(const TpmPublic& ek);

/// The public key of an RSA or ECC (P-256, P-384, P-521) object as an EVP_PKEY.
absl::StatusOr<EvpPkeyPtr> PublicKeyOf(const TPMT_PUBLIC& area);

/// OpenSSL group name of a TPM ECC curve, e.g. "P-256".
absl::StatusOr<const char*> CurveName(TPMI_ECC_CURVE curve);

/// Size in bytes of a coordinate on a TPM ECC curve.
absl::StatusOr<size_t> CurveFieldBytes(TPMI_ECC_CURVE curve);

/// Smallest RSA attestation key accepted at enrollment.
inline constexpr uint32_t kMinAkRsaBits = 2048;

/// Checks that `ak` is fit to be an attestation key: fixedTPM, fixedParent,
/// sensitiveDataOrigin, restricted and sign set; decrypt clear; nameAlg SHA-256; RSA of at
/// least kMinAkRsaBits, or ECC on NIST P-256, P-384 or P-521.
absl::Status CheckAttestationKeyAttributes(const TpmPublic& ak);

}  // namespace vigil::tpm
