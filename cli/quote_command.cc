#include "cli/quote_command.h"

#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/tpm2_tools_format.h"
#include "common/digest.h"
#include "common/status_macros.h"

namespace vigil::cli {
namespace {

QuoteCheck Fail(v1::AppraisalReason reason, std::string detail) {
  return QuoteCheck{reason, std::move(detail)};
}

// The DER ECDSA-Sig-Value OpenSSL verifies, from a TPM's (r, s).
absl::StatusOr<std::string> EcdsaDer(const TPMS_SIGNATURE_ECC& sig) {
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> ecdsa(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(sig.signatureR.buffer, sig.signatureR.size, nullptr);
  BIGNUM* s = BN_bin2bn(sig.signatureS.buffer, sig.signatureS.size, nullptr);
  if (!ecdsa || r == nullptr || s == nullptr || ECDSA_SIG_set0(ecdsa.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return absl::InternalError("cannot build an ECDSA signature");
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(ecdsa.get(), &der);
  if (len <= 0) return absl::InternalError("cannot encode an ECDSA signature");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

const EVP_MD* MdFor(TPMI_ALG_HASH alg) {
  switch (alg) {
    case TPM2_ALG_SHA256:
      return EVP_sha256();
    case TPM2_ALG_SHA384:
      return EVP_sha384();
    case TPM2_ALG_SHA512:
      return EVP_sha512();
    default:
      return nullptr;  // SHA-1 signatures are not accepted.
  }
}

// Verifies `sig` over `message` with `key`. An error status means the signature is not
// valid (wrong key, scheme or bytes); it is never thrown away silently.
absl::Status VerifySignature(EVP_PKEY* key, const TPMT_SIGNATURE& sig, std::string_view message,
                             TPMI_ALG_HASH* hash_out) {
  std::string der;
  const unsigned char* sig_bytes = nullptr;
  size_t sig_len = 0;
  TPMI_ALG_HASH hash = TPM2_ALG_NULL;
  int padding = 0;
  int key_type = EVP_PKEY_get_base_id(key);
  switch (sig.sigAlg) {
    case TPM2_ALG_ECDSA: {
      if (key_type != EVP_PKEY_EC) return absl::InvalidArgumentError("ECDSA signature, non-EC AK");
      hash = sig.signature.ecdsa.hash;
      ASSIGN_OR_RETURN(der, EcdsaDer(sig.signature.ecdsa));
      sig_bytes = reinterpret_cast<const unsigned char*>(der.data());
      sig_len = der.size();
      break;
    }
    case TPM2_ALG_RSASSA:
    case TPM2_ALG_RSAPSS: {
      if (key_type != EVP_PKEY_RSA) return absl::InvalidArgumentError("RSA signature, non-RSA AK");
      hash = sig.signature.rsassa.hash;
      sig_bytes = sig.signature.rsassa.sig.buffer;
      sig_len = sig.signature.rsassa.sig.size;
      padding = sig.sigAlg == TPM2_ALG_RSASSA ? RSA_PKCS1_PADDING : RSA_PKCS1_PSS_PADDING;
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported signature algorithm 0x", absl::Hex(sig.sigAlg)));
  }
  const EVP_MD* md = MdFor(hash);
  if (md == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported signature hash 0x", absl::Hex(hash)));
  }
  *hash_out = hash;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) {
    return absl::InternalError("EVP_DigestVerifyInit failed");
  }
  if (padding != 0) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, padding) != 1 ||
        (padding == RSA_PKCS1_PSS_PADDING &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)) {
      return absl::InternalError("cannot set the RSA padding");
    }
  }
  if (EVP_DigestVerify(ctx.get(), sig_bytes, sig_len,
                       reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
    return absl::InvalidArgumentError("signature does not verify with the AK public key");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QuoteCheck> CheckTpm2ToolsQuote(const QuoteMaterial& material) {
  absl::StatusOr<AkPublic> ak = ParseAkPublic(material.ak_public);
  if (!ak.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("AK public key: ", ak.status().message()));
  }

  TPMS_ATTEST attest = {};
  size_t offset = 0;
  TSS2_RC rc =
      Tss2_MU_TPMS_ATTEST_Unmarshal(reinterpret_cast<const uint8_t*>(material.message.data()),
                                    material.message.size(), &offset, &attest);
  if (rc != TSS2_RC_SUCCESS || offset != material.message.size()) {
    return Fail(v1::QUOTE_MALFORMED, "the message is not a marshalled TPMS_ATTEST");
  }
  TPMT_SIGNATURE signature = {};
  offset = 0;
  rc = Tss2_MU_TPMT_SIGNATURE_Unmarshal(reinterpret_cast<const uint8_t*>(material.signature.data()),
                                        material.signature.size(), &offset, &signature);
  if (rc != TSS2_RC_SUCCESS || offset != material.signature.size()) {
    return Fail(v1::QUOTE_MALFORMED, "the signature is not a marshalled TPMT_SIGNATURE");
  }

  TPMI_ALG_HASH hash = TPM2_ALG_NULL;
  if (absl::Status st = VerifySignature(ak->key.get(), signature, material.message, &hash);
      !st.ok()) {
    return Fail(v1::SIGNATURE_INVALID, std::string(st.message()));
  }
  if (attest.magic != TPM2_GENERATED_VALUE) {
    return Fail(v1::ATTEST_MAGIC_INVALID,
                absl::StrCat("magic is 0x", absl::Hex(attest.magic), ", not TPM_GENERATED_VALUE"));
  }
  if (attest.type != TPM2_ST_ATTEST_QUOTE) {
    return Fail(v1::ATTEST_TYPE_INVALID,
                absl::StrCat("type is 0x", absl::Hex(attest.type), ", not TPM_ST_ATTEST_QUOTE"));
  }
  if (ak->tpm_public.has_value()) {
    ASSIGN_OR_RETURN(std::string name, TpmName(*ak->tpm_public));
    const std::string_view signer(reinterpret_cast<const char*>(attest.qualifiedSigner.name),
                                  attest.qualifiedSigner.size);
    if (signer != name) {
      return Fail(v1::QUALIFIED_SIGNER_MISMATCH, "qualifiedSigner is not the AK's name");
    }
  }
  const std::string_view extra(reinterpret_cast<const char*>(attest.extraData.buffer),
                               attest.extraData.size);
  if (!ConstantTimeEquals(extra, material.nonce)) {
    return Fail(v1::EXTRA_DATA_MISMATCH, absl::StrCat("extraData is ", HexEncode(extra),
                                                      ", expected ", HexEncode(material.nonce)));
  }

  const TPML_PCR_SELECTION& quoted = attest.attested.quote.pcrSelect;
  absl::StatusOr<PcrFile> pcrs = ParsePcrsAuto(material.pcrs, quoted);
  if (!pcrs.ok()) return Fail(v1::QUOTE_MALFORMED, std::string(pcrs.status().message()));
  if (!SameSelection(pcrs->selection, quoted)) {
    return Fail(v1::PCR_SELECTION_MISMATCH, "the PCR file selects other PCRs than the quote");
  }
  ASSIGN_OR_RETURN(std::string composite, PcrCompositeDigest(*pcrs, hash));
  const TPM2B_DIGEST& pcr_digest = attest.attested.quote.pcrDigest;
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
