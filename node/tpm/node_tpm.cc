#include "node/tpm/node_tpm.h"

#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tpm/tpm_marshal.h"
#include "common/tpm/tpm_public.h"
#include "spdlog/spdlog.h"

namespace vigil::node::tpm {

absl::StatusOr<std::unique_ptr<NodeTpm>> NodeTpm::Open(const Options& options) {
  ASSIGN_OR_RETURN(AkType ak_type, ParseAkType(options.ak_algorithm));
  if (options.state_dir.empty()) return absl::InvalidArgumentError("no state directory");
  std::error_code ec;
  if (!std::filesystem::exists(options.state_dir, ec)) {
    std::filesystem::create_directories(options.state_dir, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("mkdir ", options.state_dir, ": ", ec.message()));
    }
    chmod(options.state_dir.c_str(), 0700);
  }

  std::unique_ptr<NodeTpm> node(new NodeTpm());
  absl::MutexLock lock(&node->mu_);
  ASSIGN_OR_RETURN(node->tpm_, TpmContext::Open(options.tcti));
  TpmContext& tpm = *node->tpm_;

  {
    ASSIGN_OR_RETURN(Ek ek, SelectEk(tpm, options.ek_preference));
    node->ek_type_ = ek.type;
    ASSIGN_OR_RETURN(node->ek_public_, MarshalTPM2B_PUBLIC(ek.public_area));
    ASSIGN_OR_RETURN(vigil::tpm::TpmPublic ek_public,
                     vigil::tpm::ParseTpm2bPublic(node->ek_public_));
    node->node_id_ = vigil::tpm::NodeIdForEk(ek_public);
    node->ek_certificate_der_ = std::move(ek.certificate_der);
  }  // EK flushed: only activation needs it.

  ASSIGN_OR_RETURN(TransientHandle srk, CreateSrk(tpm));
  absl::StatusOr<AkBlob> saved = ReadAkBlob(options.state_dir);
  if (saved.ok()) {
    absl::StatusOr<TransientHandle> loaded = LoadAk(tpm, srk.get(), *saved);
    if (loaded.ok()) {
      node->ak_ = std::move(*loaded);
    } else {
      // A blob from another TPM (or a cleared owner hierarchy) cannot load; the node gets a
      // new AK and must enroll again.
      spdlog::warn("saved AK in {} does not load on this TPM ({}); creating a new AK",
                   options.state_dir, loaded.status().ToString());
      saved = loaded.status();
    }
  } else if (!absl::IsNotFound(saved.status())) {
    spdlog::warn("saved AK in {} unreadable ({}); creating a new AK", options.state_dir,
                 saved.status().ToString());
  }
  if (!node->ak_.valid()) {
    ASSIGN_OR_RETURN(AkBlob blob, CreateAk(tpm, srk.get(), ak_type));
    RETURN_IF_ERROR(SaveAkBlob(options.state_dir, blob));
    ASSIGN_OR_RETURN(node->ak_, LoadAk(tpm, srk.get(), blob));
    node->ak_created_ = true;
    saved = std::move(blob);
  }
  {
    // The SRK's public area, for the verifier to compute the AK's qualified name from.
    TPM2B_PUBLIC* srk_public = nullptr;
    TPM2B_NAME* srk_name = nullptr;
    TPM2B_NAME* srk_qualified = nullptr;
    TSS2_RC rc = Esys_ReadPublic(tpm.esys(), srk.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                 &srk_public, &srk_name, &srk_qualified);
    EsysPtr<TPM2B_PUBLIC> free_public(srk_public);
    EsysPtr<TPM2B_NAME> free_name(srk_name);
    EsysPtr<TPM2B_NAME> free_qualified(srk_qualified);
    if (rc != TSS2_RC_SUCCESS) return TssError(rc, "read SRK public");
    ASSIGN_OR_RETURN(node->srk_public_, MarshalTPM2B_PUBLIC(*srk_public));
  }
  srk.Reset();  // the loaded AK no longer needs its parent
  node->ak_blob_ = *saved;

  ASSIGN_OR_RETURN(node->ak_public_, MarshalTPM2B_PUBLIC(saved->public_area));
  TPM2B_NAME* name_raw = nullptr;
  TSS2_RC rc = Esys_TR_GetName(tpm.esys(), node->ak_.get(), &name_raw);
  EsysPtr<TPM2B_NAME> name(name_raw);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "AK name");
  ASSIGN_OR_RETURN(node->ak_name_, MarshalTPM2B_NAME(*name));
  TPM2B_PUBLIC* read_public = nullptr;
  TPM2B_NAME* read_name = nullptr;
  TPM2B_NAME* qualified = nullptr;
  rc = Esys_ReadPublic(tpm.esys(), node->ak_.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                       &read_public, &read_name, &qualified);
  EsysPtr<TPM2B_PUBLIC> free_public(read_public);
  EsysPtr<TPM2B_NAME> free_name(read_name);
  EsysPtr<TPM2B_NAME> free_qualified(qualified);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "read AK public");
  node->ak_qualified_name_.assign(reinterpret_cast<const char*>(qualified->name), qualified->size);
  spdlog::info("TPM {}: node_id {} ({} EK{}), {} AK", options.tcti, node->node_id_,
               EkTypeName(node->ek_type_),
               node->ek_certificate_der_.empty() ? ", no certificate" : " with certificate",
               node->ak_created_ ? "new" : "saved");
  return node;
}

absl::Status NodeTpm::ExtendPcr(uint32_t pcr, const Sha256Digest& digest) {
  absl::MutexLock lock(&mu_);
  return tpm::ExtendPcr(*tpm_, pcr, digest);
}

absl::StatusOr<std::vector<PcrReading>> NodeTpm::ReadPcrs(const std::vector<uint32_t>& pcrs) {
  absl::MutexLock lock(&mu_);
  return tpm::ReadPcrs(*tpm_, pcrs);
}

absl::StatusOr<QuoteResult> NodeTpm::Quote(const std::vector<uint32_t>& pcrs,
                                           std::string_view qualifying_data) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<QuoteResult> quote = tpm::Quote(*tpm_, ak_.get(), pcrs, qualifying_data);
  if (quote.ok()) return quote;
  // After a TPM Restart the AK is no longer loaded: load it under a new SRK and retry once.
  ak_.Reset();
  absl::StatusOr<TransientHandle> srk = CreateSrk(*tpm_);
  if (!srk.ok()) return quote.status();
  absl::StatusOr<TransientHandle> loaded = LoadAk(*tpm_, srk->get(), ak_blob_);
  if (!loaded.ok()) return quote.status();
  ak_ = std::move(*loaded);
  spdlog::warn("quote failed ({}); AK loaded again (TPM Restart?)", quote.status().ToString());
  return tpm::Quote(*tpm_, ak_.get(), pcrs, qualifying_data);
}

absl::StatusOr<std::string> NodeTpm::ActivateCredential(std::string_view credential_blob,
                                                        std::string_view encrypted_secret) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Ek ek, CreateEk(*tpm_, ek_type_));
  ASSIGN_OR_RETURN(std::string ek_public, MarshalTPM2B_PUBLIC(ek.public_area));
  if (ek_public != ek_public_) {
    return absl::FailedPreconditionError("the TPM's EK changed since the node started");
  }
  return tpm::ActivateCredential(*tpm_, ak_.get(), ek.handle.get(), ek.public_area.publicArea,
                                 credential_blob, encrypted_secret);
}

}  // namespace vigil::node::tpm
