#pragma once

// PCR extend and read in the SHA-256 bank, TPM2_Quote, and TPM2_ActivateCredential.

#include <tss2/tss2_esys.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "node/tpm/tpm_context.h"

namespace vigil::node::tpm {

/// One PCR of the SHA-256 bank.
struct PcrReading {
  uint32_t index = 0;
  Sha256Digest value{};
};

/// TPM2_PCR_Extend of `pcr` in the SHA-256 bank with `digest`.
absl::Status ExtendPcr(TpmContext& tpm, uint32_t pcr, const Sha256Digest& digest);

/// Reads `pcrs` (any order, no duplicates, each < 24) from the SHA-256 bank, ascending. Loops
/// over TPM2_PCR_Read, which returns at most 8 digests per call.
absl::StatusOr<std::vector<PcrReading>> ReadPcrs(TpmContext& tpm, std::vector<uint32_t> pcrs);

/// A quote as the TPM produced it.
struct QuoteResult {
  /// Marshalled TPMS_ATTEST (the TPM2B_ATTEST contents, without the size prefix).
  std::string attest;
  /// Marshalled TPMT_SIGNATURE.
  std::string signature;
  /// The quoted PCR values, ascending; their SHA-256 is the attest's pcrDigest.
  std::vector<PcrReading> pcrs;
};

/// TPM2_Quote with `ak` over `pcrs` of the SHA-256 bank with `qualifying_data` as extraData,
/// using the AK's own signing scheme. Because reading PCRs and quoting are two commands, the
/// PCRs are read again after the quote until their digest equals the quoted pcrDigest (an
/// extend in between causes a retry; after 5 tries, Aborted).
absl::StatusOr<QuoteResult> Quote(TpmContext& tpm, ESYS_TR ak, const std::vector<uint32_t>& pcrs,
                                  std::string_view qualifying_data);

/// TPM2_ActivateCredential: recovers the secret of a credential made (TPM2_MakeCredential)
/// for the EK `ek` and the object `ak`. The EK's use is authorized the way its template
/// demands: a PolicySecret(TPM_RH_ENDORSEMENT) session for the low-range templates
/// (adminWithPolicy, no userWithAuth), the empty password for the high-range ones
/// (userWithAuth). `credential_blob` and `encrypted_secret` are the marshalled
/// TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
absl::StatusOr<std::string> ActivateCredential(TpmContext& tpm, ESYS_TR ak, ESYS_TR ek,
                                               const TPMT_PUBLIC& ek_public,
                                               std::string_view credential_blob,
                                               std::string_view encrypted_secret);

}  // namespace vigil::node::tpm
