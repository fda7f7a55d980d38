#pragma once

// A software ECC P-256 key dressed as a TPM attestation key: it signs TPMS_ATTEST structures
// the way a TPM's AK signs quotes. For tests that must re-sign a modified TPMS_ATTEST to reach
// the checks behind the signature check, and for benchmarks of appraisal without a TPM. It
// attests nothing: a verifier must only ever trust AKs it enrolled by credential activation.

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "common/openssl_util.h"
#include "common/status_macros.h"
#include "common/tpm/tpm_marshal.h"
#include "common/tpm/tpm_public.h"

namespace vigil::tpm {

/// The object attributes of an attestation key: a restricted signing key that never leaves
/// the TPM.
inline constexpr TPMA_OBJECT kAkObjectAttributes =
    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;

/// Marshals a software AK's public area into `*tpm2b_public` and computes its TPM name.
inline absl::Status MarshalAkPublic(const TPM2B_PUBLIC& pub, std::string* tpm2b_public,
                                    std::string* name) {
  ASSIGN_OR_RETURN(*tpm2b_public, MarshalTPM2B_PUBLIC(pub));
  ASSIGN_OR_RETURN(tpm::TpmPublic parsed, tpm::ParseTpm2bPublic(*tpm2b_public));
  ASSIGN_OR_RETURN(*name, tpm::ComputeName(parsed));
  return absl::OkStatus();
}

struct SoftwareAk {
  vigil::EvpPkeyPtr key;
  /// Marshalled TPM2B_PUBLIC with AK attributes (restricted ECDSA P-256 signing key).
  std::string tpm2b_public;
  /// TPM name (nameAlg || SHA-256(TPMT_PUBLIC)).
  std::string name;

  static absl::StatusOr<SoftwareAk> Create() {
    SoftwareAk ak;
    ak.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (ak.key == nullptr) return absl::InternalError("keygen failed");
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    if (EVP_PKEY_get_bn_param(ak.key.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(ak.key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
      return absl::InternalError("cannot read the public point");
    }
    vigil::BignumPtr bx(x), by(y);
    TPM2B_PUBLIC pub{};
    TPMT_PUBLIC& a = pub.publicArea;
    a.type = TPM2_ALG_ECC;
    a.nameAlg = TPM2_ALG_SHA256;
    a.objectAttributes = kAkObjectAttributes;
    a.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    a.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    a.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    a.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    a.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    a.unique.ecc.x.size = 32;
    a.unique.ecc.y.size = 32;
    BN_bn2binpad(bx.get(), a.unique.ecc.x.buffer, 32);
    BN_bn2binpad(by.get(), a.unique.ecc.y.buffer, 32);
    RETURN_IF_ERROR(MarshalAkPublic(pub, &ak.tpm2b_public, &ak.name));
    return ak;
  }

  /// A marshalled TPMT_SIGNATURE (ECDSA, SHA-256) over `message`.
  absl::StatusOr<std::string> Sign(std::string_view message) const {
    vigil::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    size_t len = 0;
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len,
                       reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
      return absl::InternalError("sign init failed");
    }
    std::string der(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                       reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
      return absl::InternalError("sign failed");
    }
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    vigil::EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
    if (sig == nullptr) return absl::InternalError("bad DER signature");
    TPMT_SIGNATURE t{};
    t.sigAlg = TPM2_ALG_ECDSA;
    t.signature.ecdsa.hash = TPM2_ALG_SHA256;
    t.signature.ecdsa.signatureR.size = 32;
    t.signature.ecdsa.signatureS.size = 32;
    BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), t.signature.ecdsa.signatureR.buffer, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), t.signature.ecdsa.signatureS.buffer, 32);
    return MarshalTPMT_SIGNATURE(t);
  }
};

}  // namespace vigil::tpm
