#include "cli/quote_command.h"

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/tpm2_tools_format.h"
#include "common/digest.h"
#include "common/status_macros.h"
#include "common/tpm/attest.h"
#include "common/tpm/tpm_marshal.h"

namespace vigil::cli {
namespace {

QuoteCheck Fail(v1::AppraisalReason reason, std::string detail) {
  return QuoteCheck{reason, std::move(detail)};
}

// The hash algorithm a TPM signed with (and computed pcrDigest with).
TPMI_ALG_HASH SignatureHash(const TPMT_SIGNATURE& sig) {
  switch (sig.sigAlg) {
    case TPM2_ALG_ECDSA:
      return sig.signature.ecdsa.hash;
    case TPM2_ALG_RSASSA:
    case TPM2_ALG_RSAPSS:
      return sig.signature.rsassa.hash;
    default:
      return TPM2_ALG_NULL;
  }
}

}  // namespace

absl::StatusOr<QuoteCheck> CheckTpm2ToolsQuote(const QuoteMaterial& material) {
  absl::StatusOr<AkPublic> ak = ParseAkPublic(material.ak_public);
  if (!ak.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("AK public key: ", ak.status().message()));
  }

  absl::StatusOr<TPMS_ATTEST> attest = UnmarshalTPMS_ATTEST(material.message);
  if (!attest.ok()) {
    return Fail(v1::QUOTE_MALFORMED, "the message is not a marshalled TPMS_ATTEST");
  }
  absl::StatusOr<TPMT_SIGNATURE> signature = UnmarshalTPMT_SIGNATURE(material.signature);
  if (!signature.ok()) {
    return Fail(v1::QUOTE_MALFORMED, "the signature is not a marshalled TPMT_SIGNATURE");
  }
  if (absl::Status st = tpm::VerifySignature(ak->key.get(), *signature, material.message);
      !st.ok()) {
    return Fail(v1::SIGNATURE_INVALID, std::string(st.message()));
  }
  const TPMI_ALG_HASH hash = SignatureHash(*signature);
  if (attest->magic != TPM2_GENERATED_VALUE) {
    return Fail(v1::ATTEST_MAGIC_INVALID,
                absl::StrCat("magic is 0x", absl::Hex(attest->magic), ", not TPM_GENERATED_VALUE"));
  }
  if (attest->type != TPM2_ST_ATTEST_QUOTE) {
    return Fail(v1::ATTEST_TYPE_INVALID,
                absl::StrCat("type is 0x", absl::Hex(attest->type), ", not TPM_ST_ATTEST_QUOTE"));
  }
  const std::string_view extra(reinterpret_cast<const char*>(attest->extraData.buffer),
                               attest->extraData.size);
  if (!ConstantTimeEquals(extra, material.nonce)) {
    return Fail(v1::EXTRA_DATA_MISMATCH, absl::StrCat("extraData is ", HexEncode(extra),
                                                      ", expected ", HexEncode(material.nonce)));
  }

  const TPML_PCR_SELECTION& quoted = attest->attested.quote.pcrSelect;
  absl::StatusOr<PcrFile> pcrs = ParsePcrsAuto(material.pcrs, quoted);
  if (!pcrs.ok()) return Fail(v1::QUOTE_MALFORMED, std::string(pcrs.status().message()));
  if (!SameSelection(pcrs->selection, quoted)) {
    return Fail(v1::PCR_SELECTION_MISMATCH, "the PCR file selects other PCRs than the quote");
  }
  ASSIGN_OR_RETURN(std::string composite, PcrCompositeDigest(*pcrs, hash));
  const TPM2B_DIGEST& pcr_digest = attest->attested.quote.pcrDigest;
  if (std::string_view(reinterpret_cast<const char*>(pcr_digest.buffer), pcr_digest.size) !=
      composite) {
    return Fail(v1::PCR_DIGEST_MISMATCH, "pcrDigest is not the hash of the PCR file's values");
  }
  return QuoteCheck{};
}

int RunQuoteVerify(const QuoteVerifyOptions& options, std::ostream& out, std::ostream& err) {
  QuoteMaterial material;
  absl::StatusOr<std::string> nonce = HexDecode(options.nonce_hex);
  if (!nonce.ok()) {
    err << "vigilctl: --nonce: " << nonce.status().message() << "\n";
    return 2;
  }
  material.nonce = *std::move(nonce);
  const std::pair<const std::string*, std::string*> files[] = {
      {&options.ak_pub_path, &material.ak_public},
      {&options.message_path, &material.message},
      {&options.signature_path, &material.signature},
      {&options.pcrs_path, &material.pcrs},
  };
  for (const auto& [path, contents] : files) {
    absl::StatusOr<std::string> bytes = ReadFileBytes(*path);
    if (!bytes.ok()) {
      err << "vigilctl: " << bytes.status().message() << "\n";
      return 2;
    }
    *contents = *std::move(bytes);
  }
  absl::StatusOr<QuoteCheck> check = CheckTpm2ToolsQuote(material);
  if (!check.ok()) {
    err << "vigilctl: " << check.status().message() << "\n";
    return 2;
  }
  if (!check->valid()) {
    err << "quote rejected: " << v1::AppraisalReason_Name(check->reason) << ": " << check->detail
        << "\n";
    return 1;
  }
  out << "quote verified\n";
  return 0;
}

void RegisterQuoteCommands(CLI::App& app, int* exit_code) {
  CLI::App* quote = app.add_subcommand("quote", "Check TPM quotes made by tpm2-tools");
  quote->require_subcommand(1);
  auto options = std::make_shared<QuoteVerifyOptions>();
  CLI::App* verify = quote->add_subcommand(
      "verify",
      "Verify a tpm2_quote quote: signature, magic, type, extraData == nonce, PCR selection "
      "and pcrDigest; exit 0 when valid, 1 with the reason when not");
  verify->add_option("--ak-pub", options->ak_pub_path, "AK public key: PEM or TPM2B_PUBLIC")
      ->required()
      ->check(CLI::ExistingFile);
  verify->add_option("--message", options->message_path, "TPMS_ATTEST (tpm2_quote -m)")
      ->required()
      ->check(CLI::ExistingFile);
  verify->add_option("--signature", options->signature_path, "TPMT_SIGNATURE (tpm2_quote -s)")
      ->required()
      ->check(CLI::ExistingFile);
  verify
      ->add_option("--pcrs", options->pcrs_path,
                   "PCR values (tpm2_quote -o; serialized or values format)")
      ->required()
      ->check(CLI::ExistingFile);
  verify->add_option("--nonce", options->nonce_hex, "qualifying data given to tpm2_quote -q, hex")
      ->required();
  verify->callback(
      [options, exit_code] { *exit_code = RunQuoteVerify(*options, std::cout, std::cerr); });
}

}  // namespace vigil::cli
