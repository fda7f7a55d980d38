#include "common/tpm/software_quote.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/openssl_util.h"
#include "common/status_macros.h"
#include "common/tpm/tpm_marshal.h"

namespace vigil::tpm {

absl::StatusOr<std::string> MarshalQuoteAttest(const QuoteAttestFields& fields,
                                               const std::map<uint32_t, std::string>& pcrs) {
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  if (fields.qualified_signer.size() > sizeof(a.qualifiedSigner.name)) {
    return absl::InvalidArgumentError("qualified signer name too long");
  }
  a.qualifiedSigner.size = static_cast<UINT16>(fields.qualified_signer.size());
  // An empty view may have no data at all: memcpy from null is undefined even for 0 bytes.
  if (!fields.qualified_signer.empty()) {
    std::memcpy(a.qualifiedSigner.name, fields.qualified_signer.data(),
                fields.qualified_signer.size());
  }
  if (fields.extra_data.size() > sizeof(a.extraData.buffer)) {
    return absl::InvalidArgumentError("extraData too long");
  }
  a.extraData.size = static_cast<UINT16>(fields.extra_data.size());
  if (!fields.extra_data.empty()) {
    std::memcpy(a.extraData.buffer, fields.extra_data.data(), fields.extra_data.size());
  }
  a.clockInfo = fields.clock_info;
  TPML_PCR_SELECTION& sel = a.attested.quote.pcrSelect;
  sel.count = 1;
  sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
  sel.pcrSelections[0].sizeofSelect = 3;
  std::string concat;
  for (const auto& [index, value] : pcrs) {
    if (index > 23) return absl::InvalidArgumentError(absl::StrCat("PCR ", index, " > 23"));
    if (value.size() != 32) {
      return absl::InvalidArgumentError(absl::StrCat("PCR ", index, " value is not 32 bytes"));
    }
    sel.pcrSelections[0].pcrSelect[index / 8] |= static_cast<BYTE>(1u << (index % 8));
    concat += value;
  }
  const Sha256Digest digest = Sha256(concat);
  a.attested.quote.pcrDigest.size = static_cast<UINT16>(digest.size());
  std::memcpy(a.attested.quote.pcrDigest.buffer, digest.data(), digest.size());
  return MarshalTPMS_ATTEST(a);
}

absl::StatusOr<std::string> EcdsaSignatureDer(std::string_view tpmt_signature) {
  ASSIGN_OR_RETURN(TPMT_SIGNATURE decoded, UnmarshalTPMT_SIGNATURE(tpmt_signature));
  if (decoded.sigAlg != TPM2_ALG_ECDSA) return absl::InvalidArgumentError("not an ECDSA signature");
  const TPMS_SIGNATURE_ECC& ecc = decoded.signature.ecdsa;
  EcdsaSigPtr der(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(ecc.signatureR.buffer, ecc.signatureR.size, nullptr);
  BIGNUM* s = BN_bin2bn(ecc.signatureS.buffer, ecc.signatureS.size, nullptr);
  if (der == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(der.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return absl::InternalError("cannot build an ECDSA-Sig-Value");
  }
  unsigned char* p = nullptr;
  const int len = i2d_ECDSA_SIG(der.get(), &p);
  if (len <= 0) return absl::InternalError("cannot encode an ECDSA-Sig-Value");
  std::string out(reinterpret_cast<char*>(p), static_cast<size_t>(len));
  OPENSSL_free(p);
  return out;
}

}  // namespace vigil::tpm
