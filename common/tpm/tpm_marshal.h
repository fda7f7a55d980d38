#pragma once

// Byte-exact TPM structure marshalling (TPM 2.0 Part 2 canonical, big-endian) through
// tss2-mu, as strings. Unmarshalling is strict: every byte must be consumed, otherwise
// InvalidArgument. Shared by the node (which sends these bytes) and the verifier.

#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace vigil {

namespace tpm_marshal_internal {
template <typename T>
using MarshalFn = TSS2_RC (*)(const T*, uint8_t[], size_t, size_t*);
template <typename T>
using UnmarshalFn = TSS2_RC (*)(const uint8_t[], size_t, size_t*, T*);

template <typename T>
absl::StatusOr<std::string> Marshal(MarshalFn<T> fn, const T& value, const char* what) {
  std::string out(sizeof(T) + 16, '\0');
  size_t offset = 0;
  TSS2_RC rc = fn(&value, reinterpret_cast<uint8_t*>(out.data()), out.size(), &offset);
  if (rc != TSS2_RC_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat("marshal ", what, ": rc 0x", absl::Hex(rc)));
  }
  out.resize(offset);
  return out;
}

template <typename T>
absl::StatusOr<T> Unmarshal(UnmarshalFn<T> fn, std::string_view bytes, const char* what) {
  T value{};
  size_t offset = 0;
  TSS2_RC rc = fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &offset, &value);
  if (rc != TSS2_RC_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat("unmarshal ", what, ": rc 0x", absl::Hex(rc)));
  }
  if (offset != bytes.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unmarshal ", what, ": ", bytes.size() - offset, " trailing bytes"));
  }
  return value;
}
}  // namespace tpm_marshal_internal

#define VIGIL_TPM_MARSHAL_PAIR_(Type)                                                       \
  /** Marshals a Type. */                                                                   \
  inline absl::StatusOr<std::string> Marshal##Type(const Type& v) {                         \
    return tpm_marshal_internal::Marshal<Type>(Tss2_MU_##Type##_Marshal, v, #Type);         \
  }                                                                                         \
  /** Unmarshals a Type, consuming every byte. */                                           \
  inline absl::StatusOr<Type> Unmarshal##Type(std::string_view bytes) {                     \
    return tpm_marshal_internal::Unmarshal<Type>(Tss2_MU_##Type##_Unmarshal, bytes, #Type); \
  }

VIGIL_TPM_MARSHAL_PAIR_(TPM2B_PUBLIC)
VIGIL_TPM_MARSHAL_PAIR_(TPMT_PUBLIC)
VIGIL_TPM_MARSHAL_PAIR_(TPM2B_PRIVATE)
VIGIL_TPM_MARSHAL_PAIR_(TPM2B_NAME)
VIGIL_TPM_MARSHAL_PAIR_(TPMS_ATTEST)
VIGIL_TPM_MARSHAL_PAIR_(TPMT_SIGNATURE)
VIGIL_TPM_MARSHAL_PAIR_(TPM2B_ID_OBJECT)
VIGIL_TPM_MARSHAL_PAIR_(TPM2B_ENCRYPTED_SECRET)
VIGIL_TPM_MARSHAL_PAIR_(TPML_PCR_SELECTION)

#undef VIGIL_TPM_MARSHAL_PAIR_

}  // namespace vigil
