#pragma once

// A software RSA 2048 key dressed as a TPM attestation key (restricted RSASSA-PKCS1-v1_5
// SHA-256 signing key): the RSA counterpart of SoftwareAk, for benchmarks and tests of appraisal
// without a TPM. It attests nothing: a verifier must only ever trust AKs it enrolled by
// credential activation.

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/openssl_util.h"
#include "common/status_macros.h"
#include "common/tpm/software_ak.h"
#include "common/tpm/tpm_marshal.h"

namespace vigil::tpm {

struct SoftwareRsaAk {
  static constexpr int kBits = 2048;

  vigil::EvpPkeyPtr key;
  /// Marshalled TPM2B_PUBLIC with AK attributes (restricted RSASSA SHA-256 signing key).
  std::string tpm2b_public;
  /// TPM name (nameAlg || SHA-256(TPMT_PUBLIC)).
  std::string name;

  static absl::StatusOr<SoftwareRsaAk> Create() {
    SoftwareRsaAk ak;
    ak.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(kBits)));
    if (ak.key == nullptr) return absl::InternalError("keygen failed");
    BIGNUM* n = nullptr;
    if (EVP_PKEY_get_bn_param(ak.key.get(), OSSL_PKEY_PARAM_RSA_N, &n) != 1) {
      return absl::InternalError("cannot read the modulus");
    }
    vigil::BignumPtr bn(n);
    TPM2B_PUBLIC pub{};
    TPMT_PUBLIC& a = pub.publicArea;
    a.type = TPM2_ALG_RSA;
    a.nameAlg = TPM2_ALG_SHA256;
    a.objectAttributes = kAkObjectAttributes;
    a.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    a.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    a.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    a.parameters.rsaDetail.keyBits = kBits;
    a.parameters.rsaDetail.exponent = 0;  // 65537
    a.unique.rsa.size = kBits / 8;
    BN_bn2binpad(bn.get(), a.unique.rsa.buffer, kBits / 8);
    RETURN_IF_ERROR(MarshalAkPublic(pub, &ak.tpm2b_public, &ak.name));
    return ak;
  }

  /// The RSASSA-PKCS1-v1_5 SHA-256 signature over `message` (kBits / 8 bytes).
  absl::StatusOr<std::string> SignRaw(std::string_view message) const {
    vigil::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    size_t len = kBits / 8;
    std::string sig(len, '\0');
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1 ||
        len != sig.size()) {
      return absl::InternalError("sign failed");
    }
    return sig;
  }

  /// A marshalled TPMT_SIGNATURE (RSASSA, SHA-256) over `message`.
  absl::StatusOr<std::string> Sign(std::string_view message) const {
    ASSIGN_OR_RETURN(std::string raw, SignRaw(message));
    TPMT_SIGNATURE t{};
    t.sigAlg = TPM2_ALG_RSASSA;
    t.signature.rsassa.hash = TPM2_ALG_SHA256;
    t.signature.rsassa.sig.size = static_cast<UINT16>(raw.size());
    std::copy(raw.begin(), raw.end(), t.signature.rsassa.sig.buffer);
    return MarshalTPMT_SIGNATURE(t);
  }
};

}  // namespace vigil::tpm
