#include "common/tpm/tpm_public.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <tss2/tss2_mu.h>

#include <initializer_list>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/digest.h"
#include "common/status_macros.h"

namespace vigil::tpm {
namespace {

struct ParamBldDeleter {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};

absl::StatusOr<EvpPkeyPtr> FromData(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return absl::InternalError("OpenSSL: cannot set up key import");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(type, " public key is not valid"));
  }
  return EvpPkeyPtr(raw);
}

absl::StatusOr<EvpPkeyPtr> RsaKey(const TPMT_PUBLIC& area) {
  const TPM2B_PUBLIC_KEY_RSA& n = area.unique.rsa;
  if (n.size == 0 || n.size > sizeof(n.buffer)) {
    return absl::InvalidArgumentError("RSA public area has no modulus");
  }
  uint32_t e = area.parameters.rsaDetail.exponent == 0 ? 65537 : area.parameters.rsaDetail.exponent;
  BignumPtr bn_n(BN_bin2bn(n.buffer, n.size, nullptr));
  BignumPtr bn_e(BN_new());
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
  if (bn_n == nullptr || bn_e == nullptr || bld == nullptr || BN_set_word(bn_e.get(), e) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return absl::InternalError("OpenSSL: cannot build RSA parameters");
  }
  if (BN_num_bits(bn_n.get()) != area.parameters.rsaDetail.keyBits) {
    return absl::InvalidArgumentError("RSA modulus size differs from keyBits");
  }
  return FromData("RSA", bld.get());
}

absl::StatusOr<EvpPkeyPtr> EccKey(const TPMT_PUBLIC& area) {
  ASSIGN_OR_RETURN(const char* group, CurveName(area.parameters.eccDetail.curveID));
  ASSIGN_OR_RETURN(size_t field, CurveFieldBytes(area.parameters.eccDetail.curveID));
  const TPMS_ECC_POINT& p = area.unique.ecc;
  if (p.x.size == 0 || p.x.size > field || p.y.size == 0 || p.y.size > field) {
    return absl::InvalidArgumentError("ECC public point has a bad coordinate size");
  }
  // Uncompressed SEC1 point; the TPM may omit leading zero bytes of a coordinate.
  std::string point(1 + 2 * field, '\0');
  point[0] = 0x04;
  std::copy(p.x.buffer, p.x.buffer + p.x.size, point.begin() + 1 + (field - p.x.size));
  std::copy(p.y.buffer, p.y.buffer + p.y.size, point.begin() + 1 + field + (field - p.y.size));
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return absl::InternalError("OpenSSL: cannot build EC parameters");
  }
  // EVP_PKEY_fromdata checks that the point is on the curve.
  return FromData("EC", bld.get());
}

}  // namespace

absl::StatusOr<TpmPublic> ParseTpmtPublic(std::string_view tpmt_public) {
  TpmPublic out;
  size_t offset = 0;
  TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Unmarshal(reinterpret_cast<const uint8_t*>(tpmt_public.data()),
                                             tpmt_public.size(), &offset, &out.area);
  if (rc != TSS2_RC_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrFormat("TPMT_PUBLIC does not decode (0x%x)", rc));
  }
  if (offset != tpmt_public.size()) {
    return absl::InvalidArgumentError("TPMT_PUBLIC has trailing bytes");
  }
  out.marshalled = std::string(tpmt_public);
  return out;
}

absl::StatusOr<TpmPublic> ParseTpm2bPublic(std::string_view tpm2b_public) {
  if (tpm2b_public.size() < 2) return absl::InvalidArgumentError("TPM2B_PUBLIC is truncated");
  size_t size =
      (static_cast<uint8_t>(tpm2b_public[0]) << 8) | static_cast<uint8_t>(tpm2b_public[1]);
  if (size != tpm2b_public.size() - 2) {
    return absl::InvalidArgumentError("TPM2B_PUBLIC size prefix does not match its length");
  }
  return ParseTpmtPublic(tpm2b_public.substr(2));
}

absl::StatusOr<const EVP_MD*> DigestForAlg(TPMI_ALG_HASH alg) {
  // Fetched once: OpenSSL 3 looks EVP_sha256() and friends up by name on every operation that
  // uses them. The implementations live as long as the process.
  static const EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static const EVP_MD* const sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  static const EVP_MD* const sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  const EVP_MD* md = nullptr;
  switch (alg) {
    case TPM2_ALG_SHA256:
      md = sha256;
      break;
    case TPM2_ALG_SHA384:
      md = sha384;
      break;
    case TPM2_ALG_SHA512:
      md = sha512;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrFormat("unsupported hash algorithm 0x%x", alg));
  }
  if (md == nullptr) return absl::InternalError("OpenSSL: cannot fetch the digest");
  return md;
}

absl::StatusOr<std::string> ComputeName(const TpmPublic& pub) {
  ASSIGN_OR_RETURN(const EVP_MD* md, DigestForAlg(pub.area.nameAlg));
  std::string name(2 + EVP_MD_get_size(md), '\0');
  name[0] = static_cast<char>(pub.area.nameAlg >> 8);
  name[1] = static_cast<char>(pub.area.nameAlg & 0xff);
  unsigned int len = 0;
  if (EVP_Digest(pub.marshalled.data(), pub.marshalled.size(),
                 reinterpret_cast<unsigned char*>(name.data() + 2), &len, md, nullptr) != 1) {
    return absl::InternalError("OpenSSL: digest failed");
  }
  return name;
}

namespace {

// nameAlg (2 bytes, big endian) || H_nameAlg(first || second).
absl::StatusOr<std::string> AlgPrefixedDigest(TPMI_ALG_HASH alg, std::string_view first,
                                              std::string_view second) {
  ASSIGN_OR_RETURN(const EVP_MD* md, DigestForAlg(alg));
  std::string out(2 + EVP_MD_get_size(md), '\0');
  out[0] = static_cast<char>(alg >> 8);
  out[1] = static_cast<char>(alg & 0xff);
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned int len = 0;
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), first.data(), first.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), second.data(), second.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data() + 2), &len) != 1) {
    return absl::InternalError("OpenSSL: digest failed");
  }
  return out;
}

// An object attribute a key must have, and its name for the error.
struct RequiredAttribute {
  TPMA_OBJECT bit;
  const char* name;
};

// InvalidArgument "<what> lacks the <name> attribute" for the first of `required` `attrs`
// lacks.
absl::Status CheckRequiredAttributes(TPMA_OBJECT attrs,
                                     std::initializer_list<RequiredAttribute> required,
                                     const char* what) {
  for (const RequiredAttribute& r : required) {
    if ((attrs & r.bit) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, " lacks the ", r.name, " attribute"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> PrimaryQualifiedName(TPM2_HANDLE hierarchy, const TpmPublic& primary) {
  const std::string handle = {static_cast<char>(hierarchy >> 24),
                              static_cast<char>(hierarchy >> 16), static_cast<char>(hierarchy >> 8),
                              static_cast<char>(hierarchy)};
  ASSIGN_OR_RETURN(std::string name, ComputeName(primary));
  return AlgPrefixedDigest(primary.area.nameAlg, handle, name);
}

absl::StatusOr<std::string> ChildQualifiedName(std::string_view parent_qualified_name,
                                               const TpmPublic& child) {
  ASSIGN_OR_RETURN(std::string name, ComputeName(child));
  return AlgPrefixedDigest(child.area.nameAlg, parent_qualified_name, name);
}

absl::Status CheckStorageParentAttributes(const TpmPublic& parent) {
  const TPMA_OBJECT attrs = parent.area.objectAttributes;
  RETURN_IF_ERROR(CheckRequiredAttributes(attrs,
                                          {{TPMA_OBJECT_FIXEDTPM, "fixedTPM"},
                                           {TPMA_OBJECT_FIXEDPARENT, "fixedParent"},
                                           {TPMA_OBJECT_RESTRICTED, "restricted"},
                                           {TPMA_OBJECT_DECRYPT, "decrypt"}},
                                          "SRK"));
  if ((attrs & TPMA_OBJECT_SIGN_ENCRYPT) != 0) {
    return absl::InvalidArgumentError("SRK has the sign attribute: not a storage key");
  }
  TPMI_ALG_SYM_OBJECT symmetric = TPM2_ALG_NULL;
  if (parent.area.type == TPM2_ALG_RSA) {
    symmetric = parent.area.parameters.rsaDetail.symmetric.algorithm;
  } else if (parent.area.type == TPM2_ALG_ECC) {
    symmetric = parent.area.parameters.eccDetail.symmetric.algorithm;
  } else {
    return absl::InvalidArgumentError("SRK is neither RSA nor ECC");
  }
  if (symmetric == TPM2_ALG_NULL) {
    return absl::InvalidArgumentError("SRK has no symmetric algorithm: not a storage key");
  }
  return DigestForAlg(parent.area.nameAlg).status();
}

absl::StatusOr<std::string> UnwrapTpm2bName(std::string_view tpm2b_name) {
  if (tpm2b_name.size() < 2) return absl::InvalidArgumentError("TPM2B_NAME is truncated");
  size_t size = (static_cast<uint8_t>(tpm2b_name[0]) << 8) | static_cast<uint8_t>(tpm2b_name[1]);
  if (size != tpm2b_name.size() - 2) {
    return absl::InvalidArgumentError("TPM2B_NAME size prefix does not match its length");
  }
  return std::string(tpm2b_name.substr(2));
}

std::string NodeIdForEk(const TpmPublic& ek) { return HexEncode(Sha256(ek.marshalled)); }

absl::StatusOr<const char*> CurveName(TPMI_ECC_CURVE curve) {
  switch (curve) {
    case TPM2_ECC_NIST_P256:
      return "P-256";
    case TPM2_ECC_NIST_P384:
      return "P-384";
    case TPM2_ECC_NIST_P521:
      return "P-521";
    default:
      return absl::InvalidArgumentError(absl::StrFormat("unsupported ECC curve 0x%x", curve));
  }
}

absl::StatusOr<size_t> CurveFieldBytes(TPMI_ECC_CURVE curve) {
  switch (curve) {
    case TPM2_ECC_NIST_P256:
      return 32;
    case TPM2_ECC_NIST_P384:
      return 48;
    case TPM2_ECC_NIST_P521:
      return 66;
    default:
      return absl::InvalidArgumentError(absl::StrFormat("unsupported ECC curve 0x%x", curve));
  }
}

absl::StatusOr<EvpPkeyPtr> PublicKeyOf(const TPMT_PUBLIC& area) {
  switch (area.type) {
    case TPM2_ALG_RSA:
      return RsaKey(area);
    case TPM2_ALG_ECC:
      return EccKey(area);
    default:
      return absl::InvalidArgumentError(
          absl::StrFormat("unsupported public key type 0x%x", area.type));
  }
}

absl::Status CheckAttestationKeyAttributes(const TpmPublic& ak) {
  const TPMA_OBJECT attrs = ak.area.objectAttributes;
  RETURN_IF_ERROR(CheckRequiredAttributes(attrs,
                                          {{TPMA_OBJECT_FIXEDTPM, "fixedTPM"},
                                           {TPMA_OBJECT_FIXEDPARENT, "fixedParent"},
                                           {TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin"},
                                           {TPMA_OBJECT_RESTRICTED, "restricted"},
                                           {TPMA_OBJECT_SIGN_ENCRYPT, "sign"}},
                                          "AK"));
  if ((attrs & TPMA_OBJECT_DECRYPT) != 0) {
    return absl::InvalidArgumentError("AK has the decrypt attribute");
  }
  if (ak.area.nameAlg != TPM2_ALG_SHA256) {
    return absl::InvalidArgumentError("AK nameAlg is not SHA-256");
  }
  if (ak.area.type == TPM2_ALG_RSA) {
    // PublicKeyOf checks that the modulus really has keyBits bits.
    const TPMI_RSA_KEY_BITS bits = ak.area.parameters.rsaDetail.keyBits;
    if (bits < kMinAkRsaBits) {
      return absl::InvalidArgumentError(
          absl::StrCat("AK is RSA-", bits, ": attestation keys must be RSA-", kMinAkRsaBits,
                       " or larger, or ECC NIST P-256 or larger"));
    }
    return absl::OkStatus();
  }
  if (ak.area.type == TPM2_ALG_ECC) {
    const TPMI_ECC_CURVE curve = ak.area.parameters.eccDetail.curveID;
    if (curve != TPM2_ECC_NIST_P256 && curve != TPM2_ECC_NIST_P384 && curve != TPM2_ECC_NIST_P521) {
      return absl::InvalidArgumentError(absl::StrCat(
          "AK is on ECC curve 0x", absl::Hex(curve),
          ": attestation keys must be ECC NIST P-256, P-384 or P-521, or RSA-2048 or larger"));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("AK is neither RSA nor ECC");
}

}  // namespace vigil::tpm
