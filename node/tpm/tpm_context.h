#pragma once

// The node's connection to its TPM through tpm2-tss ESAPI, and RAII for the TSS handles and
// buffers the rest of node/tpm uses.

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vigil::node::tpm {

/// An error status for a failed TSS call: `what` was being done, then the return code
/// decoded by Tss2_RC_Decode and in hex. TPM "retry"/"yielded" codes map to Unavailable.
absl::Status TssError(TSS2_RC rc, std::string_view what);

/// Frees a buffer ESAPI allocated (Esys_Free).
struct EsysFreeDeleter {
  void operator()(void* p) const { Esys_Free(p); }
};
/// Owns an ESAPI-allocated output (TPM2B_PUBLIC*, TPMT_SIGNATURE*, ...).
template <typename T>
using EsysPtr = std::unique_ptr<T, EsysFreeDeleter>;

/// One open TPM: the TCTI and the ESAPI context over it. Not thread-safe; the node uses one
/// TpmContext from one thread at a time (callers serialize).
class TpmContext {
 public:
  /// Opens the TPM named by a tpm2-tss TCTI configuration: "device:/dev/tpmrm0",
  /// "swtpm:host=127.0.0.1,port=2321", "mssim:...", or "" for the TCTI loader's default.
  static absl::StatusOr<std::unique_ptr<TpmContext>> Open(const std::string& tcti);

  ~TpmContext();
  TpmContext(const TpmContext&) = delete;
  TpmContext& operator=(const TpmContext&) = delete;

  ESYS_CONTEXT* esys() const { return esys_; }
  const std::string& tcti() const { return tcti_; }

 private:
  TpmContext() = default;
  std::string tcti_;
  TSS2_TCTI_CONTEXT* tcti_ctx_ = nullptr;
  ESYS_CONTEXT* esys_ = nullptr;
};

/// A transient TPM object or session, flushed (Esys_FlushContext) on destruction.
class TransientHandle {
 public:
  TransientHandle() = default;
  TransientHandle(ESYS_CONTEXT* esys, ESYS_TR handle) : esys_(esys), handle_(handle) {}
  TransientHandle(TransientHandle&& o) noexcept { *this = std::move(o); }
  TransientHandle& operator=(TransientHandle&& o) noexcept;
  ~TransientHandle() { Reset(); }

  ESYS_TR get() const { return handle_; }
  bool valid() const { return handle_ != ESYS_TR_NONE; }
  /// Flushes the object now.
  void Reset();

 private:
  ESYS_CONTEXT* esys_ = nullptr;
  ESYS_TR handle_ = ESYS_TR_NONE;
};

/// An ESYS_TR for a TPM resource the node does not own (an NV index, a persistent key),
/// released from ESAPI (Esys_TR_Close) on destruction without touching the TPM.
class ResourceHandle {
 public:
  ResourceHandle(ESYS_CONTEXT* esys, ESYS_TR handle) : esys_(esys), handle_(handle) {}
  ResourceHandle(const ResourceHandle&) = delete;
  ResourceHandle& operator=(const ResourceHandle&) = delete;
  ~ResourceHandle();
  ESYS_TR get() const { return handle_; }

 private:
  ESYS_CONTEXT* esys_;
  ESYS_TR handle_;
};

/// A primary object and the public area the TPM returned for it.
struct PrimaryObject {
  TransientHandle handle;
  TPM2B_PUBLIC public_area{};
};

/// TPM2_CreatePrimary of `in_public` under `hierarchy` (ESYS_TR_RH_OWNER, ...ENDORSEMENT)
/// with empty auth, no outside info and no creation PCRs. `what` names the object in errors.
absl::StatusOr<PrimaryObject> CreatePrimary(TpmContext& tpm, ESYS_TR hierarchy,
                                            const TPM2B_PUBLIC& in_public, std::string_view what);

}  // namespace vigil::node::tpm
