#pragma once

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vigil::tpm {

// Quotes and their signatures decode with UnmarshalTPMS_ATTEST and UnmarshalTPMT_SIGNATURE
// (common/tpm/tpm_marshal.h).

/// Verifies `signature` (ECDSA, RSASSA-PKCS1-v1_5 or RSA-PSS, with SHA-256/384/512) over
/// `message` with `key`. Fails with Unauthenticated when the signature does not verify and
/// InvalidArgument when its scheme does not fit the key.
absl::Status VerifySignature(EVP_PKEY* key, const TPMT_SIGNATURE& signature,
                             std::string_view message);

/// The PCR indices a quote selects in the SHA-256 bank, ascending. Fails if any other bank
/// has a PCR selected or a selection is malformed.
absl::StatusOr<std::vector<uint32_t>> Sha256PcrIndices(const TPML_PCR_SELECTION& selection);

}  // namespace vigil::tpm
