// Storage root key and attestation key.

#include "node/tpm/keys.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "common/tpm/tpm_marshal.h"

namespace vigil::node::tpm {
namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// noDA: the AK's authValue is empty, so dictionary-attack protection guards nothing and would
// only let a TPM in lockout (after unclean shutdowns, say) stop the node from quoting.
constexpr TPMA_OBJECT kAkAttributes =
    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;

}  // namespace

absl::StatusOr<AkType> ParseAkType(std::string_view name) {
  if (name == "ecc") return AkType::kEccP256;
  if (name == "rsa") return AkType::kRsa2048;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown AK algorithm \"", std::string(name), "\" (ecc or rsa)"));
}

TPM2B_PUBLIC AkTemplate(AkType type) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = kAkAttributes;
  if (type == AkType::kEccP256) {
    p.type = TPM2_ALG_ECC;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  } else {
    p.type = TPM2_ALG_RSA;
    p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    p.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.rsaDetail.keyBits = 2048;
    p.parameters.rsaDetail.exponent = 0;
  }
  return t;
}

TPM2B_PUBLIC SrkTemplate() {
  // TCG TPM v2.0 Provisioning Guidance, storage root key: unique zeroed, empty auth and policy.
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.type = TPM2_ALG_ECC;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                       TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  p.parameters.eccDetail.symmetric = {TPM2_ALG_AES, {.aes = 128}, {.aes = TPM2_ALG_CFB}};
  p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
  p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  p.unique.ecc.x.size = 32;
  p.unique.ecc.y.size = 32;
  return t;
}

absl::StatusOr<TransientHandle> CreateSrk(TpmContext& tpm) {
  TPM2B_PUBLIC in_public = SrkTemplate();
  ASSIGN_OR_RETURN(PrimaryObject srk,
                   CreatePrimary(tpm, ESYS_TR_RH_OWNER, in_public, "storage root key"));
  return std::move(srk.handle);
}

absl::StatusOr<AkBlob> CreateAk(TpmContext& tpm, ESYS_TR srk, AkType type) {
  TPM2B_PUBLIC in_public = AkTemplate(type);
  TPM2B_SENSITIVE_CREATE in_sensitive{};
  TPM2B_DATA outside_info{};
  TPML_PCR_SELECTION creation_pcr{};
  TPM2B_PRIVATE* out_private = nullptr;
  TPM2B_PUBLIC* out_public = nullptr;
  TPM2B_CREATION_DATA* creation_data = nullptr;
  TPM2B_DIGEST* creation_hash = nullptr;
  TPMT_TK_CREATION* creation_ticket = nullptr;
  TSS2_RC rc = Esys_Create(tpm.esys(), srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           &in_sensitive, &in_public, &outside_info, &creation_pcr, &out_private,
                           &out_public, &creation_data, &creation_hash, &creation_ticket);
  EsysPtr<TPM2B_PRIVATE> free_private(out_private);
  EsysPtr<TPM2B_PUBLIC> free_public(out_public);
  EsysPtr<TPM2B_CREATION_DATA> free_data(creation_data);
  EsysPtr<TPM2B_DIGEST> free_hash(creation_hash);
  EsysPtr<TPMT_TK_CREATION> free_ticket(creation_ticket);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "create attestation key");
  return AkBlob{*out_public, *out_private};
}

absl::StatusOr<TransientHandle> LoadAk(TpmContext& tpm, ESYS_TR srk, const AkBlob& blob) {
  ESYS_TR handle = ESYS_TR_NONE;
  TSS2_RC rc = Esys_Load(tpm.esys(), srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                         &blob.private_area, &blob.public_area, &handle);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "load attestation key");
  return TransientHandle(tpm.esys(), handle);
}

absl::Status SaveAkBlob(const std::string& dir, const AkBlob& blob) {
  ASSIGN_OR_RETURN(std::string pub, MarshalTPM2B_PUBLIC(blob.public_area));
  ASSIGN_OR_RETURN(std::string priv, MarshalTPM2B_PRIVATE(blob.private_area));
  RETURN_IF_ERROR(ReplacePrivateFileAtomically(dir + "/ak.priv", priv));
  return ReplacePrivateFileAtomically(dir + "/ak.pub", pub);
}

absl::StatusOr<AkBlob> ReadAkBlob(const std::string& dir) {
  ASSIGN_OR_RETURN(std::string pub, ReadWholeFile(dir + "/ak.pub"));
  ASSIGN_OR_RETURN(std::string priv, ReadWholeFile(dir + "/ak.priv"));
  AkBlob blob;
  ASSIGN_OR_RETURN(blob.public_area, UnmarshalTPM2B_PUBLIC(pub));
  ASSIGN_OR_RETURN(blob.private_area, UnmarshalTPM2B_PRIVATE(priv));
  return blob;
}

}  // namespace vigil::node::tpm
