#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/tpm/tpm_public.h"

namespace vigil::tpm {

/// The output of TPM2_MakeCredential, marshalled as TPM2_ActivateCredential takes it.
struct Credential {
  /// TPM2B_ID_OBJECT: integrity HMAC and the encrypted credential.
  std::string credential_blob;
  /// TPM2B_ENCRYPTED_SECRET: the seed, RSA-OAEP encrypted or an ECDH ephemeral point.
  std::string encrypted_secret;
};

/// TPM2_MakeCredential done in software (TPM 2.0 Part 1 §24, Part 3 §12.6): protects
/// `secret` (at most one digest of the EK's nameAlg) so that only the TPM that holds `ek`
/// (an RSA or ECC storage key such as an EK, with an AES-CFB symmetric definition) and an
/// object named `object_name` (TPM2B_NAME contents, without the size prefix) can recover
/// it with TPM2_ActivateCredential.
absl::StatusOr<Credential> MakeCredential(const TpmPublic& ek, std::string_view object_name,
                                          std::string_view secret);

/// TPM2_ActivateCredential done in software (TPM 2.0 Part 3 §12.5), for a simulated TPM whose
/// EK is a software key: recovers the seed from `encrypted_secret` with `ek_private` (RSA-OAEP
/// with label "IDENTITY", or ECDH with the ephemeral point and KDFe), checks the integrity HMAC
/// over the encrypted credential and `object_name` (constant time), and decrypts the
/// credential. `ek` is the EK's public area (its nameAlg and symmetric definition).
/// INVALID_ARGUMENT for malformed blobs, PERMISSION_DENIED when the integrity check fails (the
/// credential was not made for this EK and object).
absl::StatusOr<std::string> ActivateCredential(const TpmPublic& ek, EVP_PKEY* ek_private,
                                               std::string_view object_name,
                                               std::string_view credential_blob,
                                               std::string_view encrypted_secret);

/// KDFa of TPM 2.0 Part 1 §11.4.10.2 (SP 800-108 counter mode, HMAC). `label` is given
/// without its terminating zero byte, which is added. Exposed for tests.
absl::StatusOr<std::string> KdfA(TPMI_ALG_HASH alg, std::string_view key, std::string_view label,
                                 std::string_view context_u, std::string_view context_v,
                                 uint32_t bits);

/// KDFe of TPM 2.0 Part 1 §11.4.10.3 (SP 800-56A concatenation KDF). `label` is given
/// without its terminating zero byte, which is added. Exposed for tests.
absl::StatusOr<std::string> KdfE(TPMI_ALG_HASH alg, std::string_view z, std::string_view label,
                                 std::string_view party_u, std::string_view party_v, uint32_t bits);

}  // namespace vigil::tpm
