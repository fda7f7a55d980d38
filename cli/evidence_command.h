#pragma once

// `vigilctl evidence export`: fetches a node's latest evidence from the verifier's Fleet API
// and writes it as the files tpm2-tools' `tpm2_checkquote` reads, so that an auditor can
// check the quote with a tool Vigil did not write:
//   tpm2_checkquote -u ak.pem -m quote.msg -s quote.sig -f quote.pcrs -g sha256
//       -q $(cat extra-data.hex)

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "vigil/v1/fleet.pb.h"

namespace vigil::cli {

/// Writes into `dir` (created if missing): ak.pem (the AK public key), ak.pub (its
/// TPM2B_PUBLIC), quote.msg (TPMS_ATTEST), quote.sig (TPMT_SIGNATURE), quote.pcrs (the PCR
/// values in tpm2-tools' serialized format, with the quote's own selection),
/// extra-data.hex (SHA-256(nonce || SHA-256(payload)) computed from the evidence, not copied
/// from the quote), nonce.hex and payload.bin (the RuntimeReport bytes as sent).
/// Fails when the evidence has no quote, when its PCR values do not match the quote's
/// selection, or when the AK public key is missing or malformed.
absl::Status ExportEvidence(const v1::GetLatestEvidenceResponse& latest, const std::string& dir);

/// Adds `evidence export --node ID --out DIR` under `app`, with the connection flags of
/// AddFleetConnectionFlags. Its exit code goes to `*exit_code`.
void RegisterEvidenceCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
