#include "common/tpm/attest.h"

#include <openssl/ecdsa.h>
#include <openssl/rsa.h>

#include "absl/strings/str_format.h"
#include "common/openssl_util.h"
#include "common/status_macros.h"
#include "common/tpm/tpm_public.h"

namespace vigil::tpm {
namespace {

absl::StatusOr<std::string> EcdsaDer(const TPMS_SIGNATURE_ECC& ecc) {
  if (ecc.signatureR.size == 0 || ecc.signatureS.size == 0) {
    return absl::InvalidArgumentError("ECDSA signature has an empty component");
  }
  BignumPtr r(BN_bin2bn(ecc.signatureR.buffer, ecc.signatureR.size, nullptr));
  BignumPtr s(BN_bin2bn(ecc.signatureS.buffer, ecc.signatureS.size, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || sig == nullptr ||
      ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return absl::InternalError("OpenSSL: cannot build an ECDSA signature");
  }
  r.release();  // now owned by sig
  s.release();
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return absl::InternalError("OpenSSL: cannot encode an ECDSA signature");
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig.get(), &p);
  return der;
}

}  // namespace

absl::Status VerifySignature(EVP_PKEY* key, const TPMT_SIGNATURE& signature,
                             std::string_view message) {
  const int key_type = EVP_PKEY_get_base_id(key);
  TPMI_ALG_HASH hash_alg = TPM2_ALG_NULL;
  std::string sig_bytes;
  int padding = 0;
  switch (signature.sigAlg) {
    case TPM2_ALG_ECDSA: {
      if (key_type != EVP_PKEY_EC) return absl::InvalidArgumentError("ECDSA signature, non-EC key");
      hash_alg = signature.signature.ecdsa.hash;
      ASSIGN_OR_RETURN(sig_bytes, EcdsaDer(signature.signature.ecdsa));
      break;
    }
    case TPM2_ALG_RSASSA:
    case TPM2_ALG_RSAPSS: {
      if (key_type != EVP_PKEY_RSA) return absl::InvalidArgumentError("RSA signature, non-RSA key");
      const TPMS_SIGNATURE_RSA& rsa = signature.signature.rsassa;  // same layout for PSS
      hash_alg = rsa.hash;
      sig_bytes.assign(reinterpret_cast<const char*>(rsa.sig.buffer), rsa.sig.size);
      padding = signature.sigAlg == TPM2_ALG_RSASSA ? RSA_PKCS1_PADDING : RSA_PKCS1_PSS_PADDING;
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrFormat("unsupported signature scheme 0x%x", signature.sigAlg));
  }
  ASSIGN_OR_RETURN(const EVP_MD* md, DigestForAlg(hash_alg));
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) {
    return absl::InternalError("OpenSSL: cannot set up signature verification");
  }
  if (padding != 0) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, padding) != 1 ||
        (padding == RSA_PKCS1_PSS_PADDING &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)) {
      return absl::InternalError("OpenSSL: cannot set RSA padding");
    }
  }
  if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig_bytes.data()),
                       sig_bytes.size(), reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
    return absl::UnauthenticatedError("signature does not verify with the AK");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint32_t>> Sha256PcrIndices(const TPML_PCR_SELECTION& selection) {
  if (selection.count > TPM2_NUM_PCR_BANKS) return absl::InvalidArgumentError("too many PCR banks");
  std::vector<uint32_t> out;
  bool seen_sha256 = false;
  for (uint32_t i = 0; i < selection.count; ++i) {
    const TPMS_PCR_SELECTION& bank = selection.pcrSelections[i];
    if (bank.sizeofSelect > sizeof(bank.pcrSelect)) {
      return absl::InvalidArgumentError("PCR selection is too large");
    }
    bool any = false;
    for (uint32_t byte = 0; byte < bank.sizeofSelect; ++byte) any |= bank.pcrSelect[byte] != 0;
    if (!any) continue;
    if (bank.hash != TPM2_ALG_SHA256) {
      return absl::InvalidArgumentError("quote selects PCRs outside the SHA-256 bank");
    }
    if (seen_sha256) return absl::InvalidArgumentError("quote selects the SHA-256 bank twice");
    seen_sha256 = true;
    for (uint32_t byte = 0; byte < bank.sizeofSelect; ++byte) {
      for (uint32_t bit = 0; bit < 8; ++bit) {
        if ((bank.pcrSelect[byte] >> bit) & 1) out.push_back(byte * 8 + bit);
      }
    }
  }
  return out;
}

}  // namespace vigil::tpm
