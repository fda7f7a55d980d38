// libFuzzer harness for the quote structures a node sends: arbitrary bytes decoded as a
// TPMS_ATTEST (Quote.attest) and as a TPMT_SIGNATURE (Quote.signature). Must never crash or
// trip a sanitizer. Decoding is strict, so whatever decodes re-encodes to exactly the input;
// a quote's PCR selection yields ascending SHA-256 indices inside the selection; and no
// signature verifies under a key that never signed anything.
//
// Input: the bytes, as is (seeds are a TPMS_ATTEST and TPMT_SIGNATUREs from swtpm and the
// software AK).

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tpm/attest.h"
#include "common/tpm/software_ak.h"
#include "common/tpm/tpm_marshal.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using ::vigil::fuzz::Check;

const vigil::tpm::SoftwareAk& Key() {
  static const vigil::tpm::SoftwareAk* ak = [] {
    absl::StatusOr<vigil::tpm::SoftwareAk> created = vigil::tpm::SoftwareAk::Create();
    Check(created.ok());
    return new vigil::tpm::SoftwareAk(std::move(*created));
  }();
  return *ak;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<TPMS_ATTEST> attest = vigil::UnmarshalTPMS_ATTEST(bytes);
  if (attest.ok()) {
    absl::StatusOr<std::string> again = vigil::MarshalTPMS_ATTEST(*attest);
    Check(again.ok() && *again == bytes);
    if (attest->type == TPM2_ST_ATTEST_QUOTE) {
      const TPML_PCR_SELECTION& selection = attest->attested.quote.pcrSelect;
      absl::StatusOr<std::vector<uint32_t>> indices = vigil::tpm::Sha256PcrIndices(selection);
      if (indices.ok()) {
        for (size_t i = 0; i < indices->size(); ++i) {
          Check(i == 0 || (*indices)[i - 1] < (*indices)[i]);
          Check((*indices)[i] < 8 * sizeof(selection.pcrSelections[0].pcrSelect));
        }
      }
    }
  } else {
    Check(attest.status().code() == absl::StatusCode::kInvalidArgument);
  }

  absl::StatusOr<TPMT_SIGNATURE> signature = vigil::UnmarshalTPMT_SIGNATURE(bytes);
  if (signature.ok()) {
    absl::StatusOr<std::string> again = vigil::MarshalTPMT_SIGNATURE(*signature);
    Check(again.ok() && *again == bytes);
    absl::Status verified = vigil::tpm::VerifySignature(Key().key.get(), *signature, bytes);
    Check(!verified.ok());
  } else {
    Check(signature.status().code() == absl::StatusCode::kInvalidArgument);
  }
  return 0;
}
