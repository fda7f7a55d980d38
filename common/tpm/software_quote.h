#pragma once

// TPM2_Quote's output built in software: the TPMS_ATTEST a TPM would produce for a quote of
// SHA-256-bank PCRs, for signing with a software key (SoftwareAk, a simulated TPM). Like
// SoftwareAk it attests nothing by itself: a verifier trusts a quote only through an AK it
// enrolled by credential activation.

#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vigil::tpm {

/// What a quote says besides its PCRs.
struct QuoteAttestFields {
  /// TPM2B_NAME contents of the signing key as the TPM qualifies it (its qualified name).
  std::string_view qualified_signer = {};
  /// The caller's qualifying data (at most 64 bytes).
  std::string_view extra_data = {};
  TPMS_CLOCK_INFO clock_info{};
};

/// The marshalled TPMS_ATTEST of a TPM2_Quote (magic TPM_GENERATED_VALUE, type
/// TPM_ST_ATTEST_QUOTE) over `pcrs` (index 0-23 -> 32-byte SHA-256-bank value, in index order):
/// the selection names those PCRs and pcrDigest = SHA-256 of their values concatenated.
absl::StatusOr<std::string> MarshalQuoteAttest(const QuoteAttestFields& fields,
                                               const std::map<uint32_t, std::string>& pcrs);

/// The DER ECDSA-Sig-Value of a marshalled TPMT_SIGNATURE with an ECDSA P-256 signature: the
/// form OpenSSL's EVP_DigestVerify takes.
absl::StatusOr<std::string> EcdsaSignatureDer(std::string_view tpmt_signature);

}  // namespace vigil::tpm
