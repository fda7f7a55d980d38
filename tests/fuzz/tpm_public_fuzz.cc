// libFuzzer harness for TPM public areas (an EK's or AK's TPM2B_PUBLIC, sent at enrollment):
// arbitrary bytes read as a TPM2B_PUBLIC, as a TPMT_PUBLIC and as a TPM2B_NAME. Must never
// crash or trip a sanitizer. Checks: a parsed area keeps exactly the bytes it came from and
// re-encodes to them; its Name is nameAlg (big-endian) followed by a digest of that
// algorithm's size over those bytes; the node id is 64 lowercase hex digits; a key that
// converts to an EVP_PKEY has the area's type; an area fit to be an AK is restricted,
// signing, not decrypting and SHA-256-named.
//
// Input: the bytes, as is (seeds are EK and AK public areas from swtpm and the software AK).

#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/tpm/tpm_marshal.h"
#include "common/tpm/tpm_public.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using ::vigil::fuzz::Check;

void CheckPublic(const vigil::tpm::TpmPublic& pub) {
  absl::StatusOr<std::string> again = vigil::MarshalTPMT_PUBLIC(pub.area);
  Check(again.ok() && *again == pub.marshalled);

  absl::StatusOr<std::string> name = vigil::tpm::ComputeName(pub);
  absl::StatusOr<const EVP_MD*> md = vigil::tpm::DigestForAlg(pub.area.nameAlg);
  Check(name.ok() == md.ok());
  if (name.ok()) {
    Check(name->size() == 2 + static_cast<size_t>(EVP_MD_get_size(*md)));
    Check(static_cast<uint8_t>((*name)[0]) == pub.area.nameAlg >> 8 &&
          static_cast<uint8_t>((*name)[1]) == (pub.area.nameAlg & 0xff));
  }

  const std::string node_id = vigil::tpm::NodeIdForEk(pub);
  Check(node_id.size() == 64 && node_id.find_first_not_of("0123456789abcdef") == std::string::npos);

  absl::StatusOr<vigil::EvpPkeyPtr> key = vigil::tpm::PublicKeyOf(pub.area);
  if (key.ok()) {
    const int type = EVP_PKEY_get_base_id(key->get());
    Check(pub.area.type == TPM2_ALG_RSA ? type == EVP_PKEY_RSA : type == EVP_PKEY_EC);
  }
  if (vigil::tpm::CheckAttestationKeyAttributes(pub).ok()) {
    Check((pub.area.objectAttributes & TPMA_OBJECT_RESTRICTED) != 0);
    Check((pub.area.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) != 0);
    Check((pub.area.objectAttributes & TPMA_OBJECT_DECRYPT) == 0);
    Check(pub.area.nameAlg == TPM2_ALG_SHA256);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<vigil::tpm::TpmPublic> tpm2b = vigil::tpm::ParseTpm2bPublic(bytes);
  if (tpm2b.ok()) {
    Check(size >= 2 && tpm2b->marshalled == bytes.substr(2));
    Check(((data[0] << 8) | data[1]) == static_cast<int>(size - 2));
    CheckPublic(*tpm2b);
  }

  absl::StatusOr<vigil::tpm::TpmPublic> tpmt = vigil::tpm::ParseTpmtPublic(bytes);
  if (tpmt.ok()) {
    Check(tpmt->marshalled == bytes);
    CheckPublic(*tpmt);
  }

  absl::StatusOr<std::string> name = vigil::tpm::UnwrapTpm2bName(bytes);
  if (name.ok()) Check(*name == bytes.substr(2));
  return 0;
}
