#pragma once

// The file formats tpm2-tools 5.4 reads and writes for quotes, so that vigilctl can check a
// quote made by `tpm2_quote` and export evidence that `tpm2_checkquote` accepts:
//   - PCR values: the "serialized" format (tpm2_quote -o / tpm2_checkquote -f default), a
//     little-endian dump of TPML_PCR_SELECTION, a UINT32 list count and that many
//     TPML_DIGEST structures; and the "values" format (-F values), the bare digests.
//   - Public keys: PEM SubjectPublicKeyInfo or a marshalled TPM2B_PUBLIC (tpm2_createak -u).
//   - Signatures: a marshalled TPMT_SIGNATURE (tpm2_quote -s default).

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tpm/tpm_public.h"

namespace vigil::cli {

/// PCR values as tpm2-tools carries them: the selection (banks, each with a bitmap) and the
/// digests in selection order (bank by bank, ascending PCR index within a bank).
struct PcrFile {
  TPML_PCR_SELECTION selection = {};
  std::vector<std::string> digests;
};

/// How a PCR values file is laid out.
enum class PcrFileFormat {
  kSerialized,  // tpm2-tools' default: selection + TPML_DIGEST lists, little endian
  kValues,      // the bare digests; the selection comes from elsewhere (the quote)
};

/// Size in bytes of a digest of TPM hash algorithm `alg`, or 0 when not supported.
size_t TpmDigestSize(TPMI_ALG_HASH alg);

/// Number of PCRs `selection` selects across all banks.
size_t CountSelectedPcrs(const TPML_PCR_SELECTION& selection);

/// Whether two selections name the same banks with the same PCRs, ignoring how many
/// bitmap bytes each uses and the order of the banks.
bool SameSelection(const TPML_PCR_SELECTION& a, const TPML_PCR_SELECTION& b);

/// Parses a PCR file in tpm2-tools' serialized format. Checks every count and size against
/// the file's length and the selection; never trusts the file.
absl::StatusOr<PcrFile> ParseSerializedPcrs(std::string_view bytes);

/// Parses a PCR file in the values format against the selection it was made for.
absl::StatusOr<PcrFile> ParseValuesPcrs(std::string_view bytes,
                                        const TPML_PCR_SELECTION& selection);

/// Parses a PCR file: kSerialized when its size and header fit that format, else kValues
/// against `selection` (typically the quote's own selection).
absl::StatusOr<PcrFile> ParsePcrsAuto(std::string_view bytes, const TPML_PCR_SELECTION& selection);

/// Writes `pcrs` in tpm2-tools' serialized format (what `tpm2_checkquote -f` reads).
absl::StatusOr<std::string> SerializePcrs(const PcrFile& pcrs);

/// A single-bank (SHA-256) PcrFile from (index, digest) pairs, in ascending index order.
/// Fails on a duplicate or out-of-range index or a digest that is not 32 bytes.
absl::StatusOr<PcrFile> Sha256PcrFile(const std::vector<std::pair<uint32_t, std::string>>& values);

/// The composite digest a TPM puts in TPMS_QUOTE_INFO.pcrDigest: hash `alg` over the
/// concatenated digests in selection order.
absl::StatusOr<std::string> PcrCompositeDigest(const PcrFile& pcrs, TPMI_ALG_HASH alg);

/// An AK public key file as tpm2-tools writes it: PEM, or a marshalled TPM2B_PUBLIC.
struct AkPublic {
  vigil::EvpPkeyPtr key;
  /// Present only for TPM2B_PUBLIC input (PEM carries no TPM attributes or name).
  std::optional<tpm::TpmPublic> tpm_public;
};
absl::StatusOr<AkPublic> ParseAkPublic(std::string_view bytes);

/// PEM SubjectPublicKeyInfo of `key`.
absl::StatusOr<std::string> PublicKeyPem(EVP_PKEY* key);

/// Reads a whole file; the error names the path.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

/// Writes a whole file (created or truncated) with mode `mode`; the error names the path.
absl::Status WriteFileBytes(const std::string& path, std::string_view bytes, int mode = 0644);

}  // namespace vigil::cli
