#pragma once

// `vigilctl quote verify`: checks a TPM quote made by tpm2-tools' `tpm2_quote` (or exported
// by `vigilctl evidence export`) with nothing but files and the expected nonce.

#include <ostream>
#include <string>
#include <string_view>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::cli {

/// The contents of the files `tpm2_quote` writes, and the qualifying data it was given.
struct QuoteMaterial {
  /// AK public key: PEM, or a marshalled TPM2B_PUBLIC.
  std::string ak_public;
  /// Marshalled TPMS_ATTEST (tpm2_quote -m).
  std::string message;
  /// Marshalled TPMT_SIGNATURE (tpm2_quote -s, default "tss" format).
  std::string signature;
  /// PCR values (tpm2_quote -o): tpm2-tools' serialized format, or the bare values.
  std::string pcrs;
  /// The qualifying data (tpm2_quote -q) the quote must carry as extraData.
  std::string nonce;
};

/// The outcome of checking a quote: the first check that failed, with the reason code the
/// verifier uses for it (APPRAISAL_REASON_UNSPECIFIED when every check passed).
struct QuoteCheck {
  v1::AppraisalReason reason = v1::APPRAISAL_REASON_UNSPECIFIED;
  std::string detail;
  bool valid() const { return reason == v1::APPRAISAL_REASON_UNSPECIFIED; }
};

/// Checks, in this order: the AK public key parses (an error status if not: that is bad
/// input, not a bad quote); message and signature decode (QUOTE_MALFORMED); the signature
/// over the message verifies with the AK (SIGNATURE_INVALID); magic is TPM_GENERATED_VALUE
/// (ATTEST_MAGIC_INVALID); type is TPM_ST_ATTEST_QUOTE (ATTEST_TYPE_INVALID); extraData
/// equals the nonce (EXTRA_DATA_MISMATCH); the PCR file parses (QUOTE_MALFORMED) and
/// selects the quoted PCRs (PCR_SELECTION_MISMATCH); pcrDigest is the hash of its values
/// (PCR_DIGEST_MISMATCH). qualifiedSigner is not checked: it is the AK's *qualified* name,
/// which depends on the AK's parents (for an AK under the EK:
/// nameAlg || H(QN(EK) || Name(AK)), QN(EK) = nameAlg || H(0x4000000B || Name(EK))), and
/// an AK file alone does not say who they are. tpm2_checkquote does not check it either.
absl::StatusOr<QuoteCheck> CheckTpm2ToolsQuote(const QuoteMaterial& material);

/// Flags of `vigilctl quote verify`.
struct QuoteVerifyOptions {
  std::string ak_pub_path;
  std::string message_path;
  std::string signature_path;
  std::string pcrs_path;
  std::string nonce_hex;
};

/// Runs `quote verify`: prints "quote verified" (exit 0) or "quote rejected: REASON: detail"
/// (exit 1); unreadable files and a bad nonce print one line and exit 2.
int RunQuoteVerify(const QuoteVerifyOptions& options, std::ostream& out, std::ostream& err);

/// Adds `quote verify` under `app`. When the command runs, its exit code is stored in
/// `*exit_code` (which must outlive parsing).
void RegisterQuoteCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
