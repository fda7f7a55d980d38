#include "node/tpm/tpm_context.h"

#include <tss2/tss2_rc.h>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace vigil::node::tpm {

absl::Status TssError(TSS2_RC rc, std::string_view what) {
  const char* decoded = Tss2_RC_Decode(rc);
  std::string message = absl::StrCat(std::string(what), ": ", decoded != nullptr ? decoded : "?",
                                     " (0x", absl::Hex(rc, absl::kZeroPad8), ")");
  TSS2_RC base = rc & ~TSS2_RC_LAYER_MASK;
  if (base == TPM2_RC_RETRY || base == TPM2_RC_YIELDED || base == TPM2_RC_TESTING ||
      rc == TSS2_ESYS_RC_IO_ERROR || rc == TSS2_TCTI_RC_IO_ERROR) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

absl::StatusOr<std::unique_ptr<TpmContext>> TpmContext::Open(const std::string& tcti) {
  std::unique_ptr<TpmContext> ctx(new TpmContext());
  ctx->tcti_ = tcti;
  TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti.empty() ? nullptr : tcti.c_str(), &ctx->tcti_ctx_);
  if (rc != TSS2_RC_SUCCESS) {
    return TssError(rc, absl::StrCat("open TPM TCTI \"", tcti, "\""));
  }
  rc = Esys_Initialize(&ctx->esys_, ctx->tcti_ctx_, nullptr);
  if (rc != TSS2_RC_SUCCESS) {
    return TssError(rc, absl::StrCat("initialize ESAPI over \"", tcti, "\""));
  }
  // A resource manager (tpmrm0) or swtpm with startup-clear has run TPM2_Startup already;
  // a bare TPM or simulator has not. TPM_RC_INITIALIZE means "already started".
  rc = Esys_Startup(ctx->esys_, TPM2_SU_CLEAR);
  if (rc != TSS2_RC_SUCCESS && (rc & ~TSS2_RC_LAYER_MASK) != TPM2_RC_INITIALIZE) {
    spdlog::debug("TPM2_Startup on {}: {}", tcti, Tss2_RC_Decode(rc));
  }
  return ctx;
}

TpmContext::~TpmContext() {
  if (esys_ != nullptr) Esys_Finalize(&esys_);
  if (tcti_ctx_ != nullptr) Tss2_TctiLdr_Finalize(&tcti_ctx_);
}

TransientHandle& TransientHandle::operator=(TransientHandle&& o) noexcept {
  if (this != &o) {
    Reset();
    esys_ = o.esys_;
    handle_ = o.handle_;
    o.handle_ = ESYS_TR_NONE;
  }
  return *this;
}

void TransientHandle::Reset() {
  if (esys_ != nullptr && handle_ != ESYS_TR_NONE) {
    TSS2_RC rc = Esys_FlushContext(esys_, handle_);
    if (rc != TSS2_RC_SUCCESS) {
      spdlog::warn("flush TPM object: {}", Tss2_RC_Decode(rc));
    }
  }
  handle_ = ESYS_TR_NONE;
}

ResourceHandle::~ResourceHandle() {
  if (esys_ != nullptr && handle_ != ESYS_TR_NONE) Esys_TR_Close(esys_, &handle_);
}

absl::StatusOr<PrimaryObject> CreatePrimary(TpmContext& tpm, ESYS_TR hierarchy,
                                            const TPM2B_PUBLIC& in_public, std::string_view what) {
  TPM2B_SENSITIVE_CREATE in_sensitive{};
  TPM2B_DATA outside_info{};
  TPML_PCR_SELECTION creation_pcr{};
  ESYS_TR handle = ESYS_TR_NONE;
  TPM2B_PUBLIC* out_public = nullptr;
  TPM2B_CREATION_DATA* creation_data = nullptr;
  TPM2B_DIGEST* creation_hash = nullptr;
  TPMT_TK_CREATION* creation_ticket = nullptr;
  TSS2_RC rc =
      Esys_CreatePrimary(tpm.esys(), hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                         &in_sensitive, &in_public, &outside_info, &creation_pcr, &handle,
                         &out_public, &creation_data, &creation_hash, &creation_ticket);
  EsysPtr<TPM2B_PUBLIC> free_public(out_public);
  EsysPtr<TPM2B_CREATION_DATA> free_data(creation_data);
  EsysPtr<TPM2B_DIGEST> free_hash(creation_hash);
  EsysPtr<TPMT_TK_CREATION> free_ticket(creation_ticket);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, absl::StrCat("create ", std::string(what)));
  return PrimaryObject{TransientHandle(tpm.esys(), handle), *out_public};
}

}  // namespace vigil::node::tpm
