#include "common/tpm/tpm_marshal.h"

#include <openssl/evp.h>

#include "common/digest.h"
#include "common/status_macros.h"

namespace vigil {

absl::StatusOr<std::string> NodeIdForEkPublic(const TPM2B_PUBLIC& ek_public) {
  ASSIGN_OR_RETURN(std::string tpmt, MarshalTPMT_PUBLIC(ek_public.publicArea));
  return HexEncode(Sha256(tpmt));
}

absl::StatusOr<std::string> ObjectName(const TPMT_PUBLIC& area) {
  const EVP_MD* md = nullptr;
  switch (area.nameAlg) {
    case TPM2_ALG_SHA256:
      md = EVP_sha256();
      break;
    case TPM2_ALG_SHA384:
      md = EVP_sha384();
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported nameAlg 0x", absl::Hex(area.nameAlg)));
  }
  ASSIGN_OR_RETURN(std::string tpmt, MarshalTPMT_PUBLIC(area));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(tpmt.data(), tpmt.size(), digest, &len, md, nullptr) != 1) {
    return absl::InternalError("EVP_Digest failed");
  }
  std::string name;
  name.push_back(static_cast<char>(area.nameAlg >> 8));
  name.push_back(static_cast<char>(area.nameAlg & 0xff));
  name.append(reinterpret_cast<const char*>(digest), len);
  return name;
}

}  // namespace vigil
