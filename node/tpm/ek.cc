// Endorsement key: TCG EK Credential Profile templates, certificates in NV.

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_rc.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/openssl_util.h"
#include "common/status_macros.h"
#include "node/tpm/keys.h"
#include "spdlog/spdlog.h"

namespace vigil::node::tpm {
namespace {

// PolicyA (SHA-256): PolicySecret(TPM_RH_ENDORSEMENT). TCG EK Credential Profile, B.3.3.
constexpr uint8_t kPolicyASha256[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
    0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA};
// PolicyB (SHA-384): PolicyOR of PolicyA and PolicyC for the high-range templates.
constexpr uint8_t kPolicyBSha384[48] = {
    0xB2, 0x6E, 0x7D, 0x28, 0xD1, 0x1A, 0x50, 0xBC, 0x53, 0xD8, 0x82, 0xBC, 0xF5, 0xFD, 0x3A, 0x1A,
    0x07, 0x41, 0x48, 0xBB, 0x35, 0xD3, 0xB4, 0xE4, 0xCB, 0x1C, 0x0A, 0xD9, 0xBD, 0xE4, 0x19, 0xCA,
    0xCB, 0x47, 0xBA, 0x09, 0x69, 0x96, 0x46, 0x15, 0x0F, 0x9F, 0xC0, 0x00, 0xF3, 0xF8, 0x0E, 0x12};

constexpr TPMA_OBJECT kEkLowAttributes =
    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
    TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;

// Compares a big-endian unsigned value with an OpenSSL BIGNUM, ignoring leading zeros.
bool SameUnsigned(const BIGNUM* bn, const uint8_t* bytes, size_t len) {
  BignumPtr other(BN_bin2bn(bytes, static_cast<int>(len), nullptr));
  return other != nullptr && BN_cmp(bn, other.get()) == 0;
}

absl::StatusOr<BignumPtr> BnParam(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) {
    return OpenSslError(absl::StrCat("read ", name, " of the EK certificate key"));
  }
  return BignumPtr(bn);
}

}  // namespace

std::string_view EkTypeName(EkType type) {
  switch (type) {
    case EkType::kRsa2048:
      return "rsa2048";
    case EkType::kEccP256:
      return "ecc-p256";
    case EkType::kEccP384:
      return "ecc-p384";
  }
  return "?";
}

absl::StatusOr<EkType> ParseEkType(std::string_view name) {
  for (EkType t : {EkType::kRsa2048, EkType::kEccP256, EkType::kEccP384}) {
    if (EkTypeName(t) == name) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown EK type \"", std::string(name), "\" (rsa2048, ecc-p256, ecc-p384)"));
}

TPM2_HANDLE EkCertificateIndex(EkType type) {
  switch (type) {
    case EkType::kRsa2048:
      return 0x01C00002;
    case EkType::kEccP256:
      return 0x01C0000A;
    case EkType::kEccP384:
      return 0x01C00016;
  }
  return 0;
}

TPM2B_PUBLIC EkTemplate(EkType type) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  switch (type) {
    case EkType::kRsa2048:
      p.type = TPM2_ALG_RSA;
      p.nameAlg = TPM2_ALG_SHA256;
      p.objectAttributes = kEkLowAttributes;
      p.authPolicy.size = sizeof(kPolicyASha256);
      std::memcpy(p.authPolicy.buffer, kPolicyASha256, sizeof(kPolicyASha256));
      p.parameters.rsaDetail.symmetric = {TPM2_ALG_AES, {.aes = 128}, {.aes = TPM2_ALG_CFB}};
      p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
      p.parameters.rsaDetail.keyBits = 2048;
      p.parameters.rsaDetail.exponent = 0;
      p.unique.rsa.size = 256;  // all zero
      break;
    case EkType::kEccP256:
      p.type = TPM2_ALG_ECC;
      p.nameAlg = TPM2_ALG_SHA256;
      p.objectAttributes = kEkLowAttributes;
      p.authPolicy.size = sizeof(kPolicyASha256);
      std::memcpy(p.authPolicy.buffer, kPolicyASha256, sizeof(kPolicyASha256));
      p.parameters.eccDetail.symmetric = {TPM2_ALG_AES, {.aes = 128}, {.aes = TPM2_ALG_CFB}};
      p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
      p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
      p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
      p.unique.ecc.x.size = 32;  // all zero
      p.unique.ecc.y.size = 32;
      break;
    case EkType::kEccP384:
      p.type = TPM2_ALG_ECC;
      p.nameAlg = TPM2_ALG_SHA384;
      p.objectAttributes = kEkLowAttributes | TPMA_OBJECT_USERWITHAUTH;
      p.authPolicy.size = sizeof(kPolicyBSha384);
      std::memcpy(p.authPolicy.buffer, kPolicyBSha384, sizeof(kPolicyBSha384));
      p.parameters.eccDetail.symmetric = {TPM2_ALG_AES, {.aes = 256}, {.aes = TPM2_ALG_CFB}};
      p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
      p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P384;
      p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
      // High-range templates leave unique empty.
      break;
  }
  return t;
}

absl::StatusOr<std::string> ReadNvIndex(TpmContext& tpm, TPM2_HANDLE index) {
  ESYS_CONTEXT* esys = tpm.esys();
  ESYS_TR nv = ESYS_TR_NONE;
  TSS2_RC rc = Esys_TR_FromTPMPublic(esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
  if (rc != TSS2_RC_SUCCESS) {
    return absl::NotFoundError(
        absl::StrCat("NV index 0x", absl::Hex(index), " is not defined: ", Tss2_RC_Decode(rc)));
  }
  ResourceHandle nv_handle(esys, nv);
  TPM2B_NV_PUBLIC* pub_raw = nullptr;
  TPM2B_NAME* name_raw = nullptr;
  rc = Esys_NV_ReadPublic(esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub_raw, &name_raw);
  EsysPtr<TPM2B_NV_PUBLIC> pub(pub_raw);
  EsysPtr<TPM2B_NAME> name(name_raw);
  if (rc != TSS2_RC_SUCCESS) {
    return TssError(rc, absl::StrCat("NV_ReadPublic 0x", absl::Hex(index)));
  }
  const TPMS_NV_PUBLIC& info = pub->nvPublic;
  ESYS_TR auth = nv;
  if ((info.attributes & TPMA_NV_AUTHREAD) == 0) {
    if ((info.attributes & TPMA_NV_OWNERREAD) == 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("NV index 0x", absl::Hex(index), " is readable neither by auth nor owner"));
    }
    auth = ESYS_TR_RH_OWNER;
  }

  // The largest NV_Read the TPM accepts (TPM2_PT_NV_BUFFER_MAX); 512 if it does not say.
  uint16_t chunk = 512;
  TPMS_CAPABILITY_DATA* cap_raw = nullptr;
  TPMI_YES_NO more = TPM2_NO;
  if (Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                         TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap_raw) == TSS2_RC_SUCCESS) {
    EsysPtr<TPMS_CAPABILITY_DATA> cap(cap_raw);
    const TPML_TAGGED_TPM_PROPERTY& props = cap->data.tpmProperties;
    if (props.count == 1 && props.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX) {
      chunk = static_cast<uint16_t>(std::clamp<uint32_t>(props.tpmProperty[0].value, 64,
                                                         sizeof(TPM2B_MAX_NV_BUFFER::buffer)));
    }
  }

  std::string out;
  out.reserve(info.dataSize);
  while (out.size() < info.dataSize) {
    uint16_t n = static_cast<uint16_t>(std::min<size_t>(chunk, info.dataSize - out.size()));
    TPM2B_MAX_NV_BUFFER* data_raw = nullptr;
    rc = Esys_NV_Read(esys, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
                      static_cast<uint16_t>(out.size()), &data_raw);
    EsysPtr<TPM2B_MAX_NV_BUFFER> data(data_raw);
    if (rc != TSS2_RC_SUCCESS) {
      return TssError(rc, absl::StrCat("NV_Read 0x", absl::Hex(index), " at ", out.size()));
    }
    if (data->size == 0) return absl::DataLossError("NV_Read returned no data");
    out.append(reinterpret_cast<const char*>(data->buffer), data->size);
  }
  return out;
}

absl::Status CheckCertificateMatchesKey(std::string_view certificate_der, const TPMT_PUBLIC& ek) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(certificate_der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(certificate_der.size())));
  if (cert == nullptr) return OpenSslError("parse EK certificate", absl::StatusCode::kDataLoss);
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr) return OpenSslError("EK certificate public key");
  if (ek.type == TPM2_ALG_RSA) {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
      return absl::FailedPreconditionError("EK is RSA but its certificate's key is not");
    }
    ASSIGN_OR_RETURN(BignumPtr n, BnParam(key, OSSL_PKEY_PARAM_RSA_N));
    ASSIGN_OR_RETURN(BignumPtr e, BnParam(key, OSSL_PKEY_PARAM_RSA_E));
    uint32_t exponent =
        ek.parameters.rsaDetail.exponent == 0 ? 65537 : ek.parameters.rsaDetail.exponent;
    if (!SameUnsigned(n.get(), ek.unique.rsa.buffer, ek.unique.rsa.size) ||
        BN_get_word(e.get()) != exponent) {
      return absl::FailedPreconditionError("EK certificate certifies a different RSA key");
    }
    return absl::OkStatus();
  }
  if (ek.type == TPM2_ALG_ECC) {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
      return absl::FailedPreconditionError("EK is ECC but its certificate's key is not");
    }
    char group[64] = {};
    size_t glen = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen) != 1) {
      return OpenSslError("EK certificate curve");
    }
    std::string_view want = ek.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256   ? "prime256v1"
                            : ek.parameters.eccDetail.curveID == TPM2_ECC_NIST_P384 ? "secp384r1"
                                                                                    : "";
    if (want != std::string_view(group, glen)) {
      return absl::FailedPreconditionError(
          absl::StrCat("EK certificate key is on curve ", group, ", not the EK's"));
    }
    ASSIGN_OR_RETURN(BignumPtr x, BnParam(key, OSSL_PKEY_PARAM_EC_PUB_X));
    ASSIGN_OR_RETURN(BignumPtr y, BnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y));
    if (!SameUnsigned(x.get(), ek.unique.ecc.x.buffer, ek.unique.ecc.x.size) ||
        !SameUnsigned(y.get(), ek.unique.ecc.y.buffer, ek.unique.ecc.y.size)) {
      return absl::FailedPreconditionError("EK certificate certifies a different ECC key");
    }
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError("EK is neither RSA nor ECC");
}

absl::StatusOr<Ek> CreateEk(TpmContext& tpm, EkType type) {
  ASSIGN_OR_RETURN(PrimaryObject primary,
                   CreatePrimary(tpm, ESYS_TR_RH_ENDORSEMENT, EkTemplate(type),
                                 absl::StrCat(std::string(EkTypeName(type)), " EK")));
  Ek ek;
  ek.type = type;
  ek.handle = std::move(primary.handle);
  ek.public_area = primary.public_area;
  absl::StatusOr<std::string> cert = ReadNvIndex(tpm, EkCertificateIndex(type));
  if (cert.ok()) {
    RETURN_IF_ERROR(CheckCertificateMatchesKey(*cert, ek.public_area.publicArea));
    ek.certificate_der = std::move(*cert);
  } else if (!absl::IsNotFound(cert.status())) {
    return cert.status();
  }
  return ek;
}

absl::StatusOr<Ek> SelectEk(TpmContext& tpm, const std::vector<EkType>& preference) {
  if (preference.empty()) return absl::InvalidArgumentError("no EK type to choose from");
  for (EkType type : preference) {
    {
      ESYS_TR nv = ESYS_TR_NONE;
      if (Esys_TR_FromTPMPublic(tpm.esys(), EkCertificateIndex(type), ESYS_TR_NONE, ESYS_TR_NONE,
                                ESYS_TR_NONE, &nv) != TSS2_RC_SUCCESS) {
        continue;
      }
      // Released before CreateEk looks the index up again.
      ResourceHandle probe(tpm.esys(), nv);
    }
    return CreateEk(tpm, type);
  }
  spdlog::warn("TPM has no EK certificate for any of the configured EK types; using {}",
               EkTypeName(preference.front()));
  return CreateEk(tpm, preference.front());
}

}  // namespace vigil::node::tpm
