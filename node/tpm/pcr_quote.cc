#include "node/tpm/pcr_quote.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tpm/tpm_marshal.h"

namespace vigil::node::tpm {
namespace {

constexpr int kQuoteAttempts = 5;

absl::StatusOr<TPML_PCR_SELECTION> Sha256Selection(const std::vector<uint32_t>& pcrs) {
  TPML_PCR_SELECTION sel{};
  sel.count = 1;
  sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
  sel.pcrSelections[0].sizeofSelect = 3;
  for (uint32_t pcr : pcrs) {
    if (pcr >= 24) return absl::InvalidArgumentError(absl::StrCat("PCR ", pcr, " out of range"));
    sel.pcrSelections[0].pcrSelect[pcr / 8] |= static_cast<uint8_t>(1u << (pcr % 8));
  }
  return sel;
}

Sha256Digest DigestOfValues(const std::vector<PcrReading>& readings) {
  std::string all;
  for (const PcrReading& r : readings) all.append(DigestBytes(r.value));
  return Sha256(all);
}

}  // namespace

absl::Status ExtendPcr(TpmContext& tpm, uint32_t pcr, const Sha256Digest& digest) {
  if (pcr >= 24) return absl::InvalidArgumentError(absl::StrCat("PCR ", pcr, " out of range"));
  TPML_DIGEST_VALUES values{};
  values.count = 1;
  values.digests[0].hashAlg = TPM2_ALG_SHA256;
  std::memcpy(values.digests[0].digest.sha256, digest.data(), digest.size());
  TSS2_RC rc = Esys_PCR_Extend(tpm.esys(), ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, &values);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, absl::StrCat("extend PCR ", pcr));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PcrReading>> ReadPcrs(TpmContext& tpm, std::vector<uint32_t> pcrs) {
  std::sort(pcrs.begin(), pcrs.end());
  if (std::adjacent_find(pcrs.begin(), pcrs.end()) != pcrs.end()) {
    return absl::InvalidArgumentError("duplicate PCR in selection");
  }
  std::vector<PcrReading> out;
  std::vector<uint32_t> pending = pcrs;
  // The TPM returns a prefix of the selection (at most 8 digests); ask again for the rest.
  while (!pending.empty()) {
    ASSIGN_OR_RETURN(TPML_PCR_SELECTION sel, Sha256Selection(pending));
    UINT32 update_counter = 0;
    TPML_PCR_SELECTION* sel_out_raw = nullptr;
    TPML_DIGEST* values_raw = nullptr;
    TSS2_RC rc = Esys_PCR_Read(tpm.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel,
                               &update_counter, &sel_out_raw, &values_raw);
    EsysPtr<TPML_PCR_SELECTION> sel_out(sel_out_raw);
    EsysPtr<TPML_DIGEST> values(values_raw);
    if (rc != TSS2_RC_SUCCESS) return TssError(rc, "read PCRs");
    std::vector<uint32_t> returned;
    for (uint32_t i = 0; i < sel_out->count; ++i) {
      const TPMS_PCR_SELECTION& s = sel_out->pcrSelections[i];
      if (s.hash != TPM2_ALG_SHA256) continue;
      for (uint32_t pcr = 0; pcr < 8u * s.sizeofSelect; ++pcr) {
        if (s.pcrSelect[pcr / 8] & (1u << (pcr % 8))) returned.push_back(pcr);
      }
    }
    if (returned.empty() || returned.size() != values->count) {
      return absl::DataLossError(absl::StrCat("PCR_Read returned ", values->count, " digests for ",
                                              returned.size(),
                                              " PCRs (is the SHA-256 bank active?)"));
    }
    for (size_t i = 0; i < returned.size(); ++i) {
      if (values->digests[i].size != 32) return absl::DataLossError("PCR digest is not SHA-256");
      PcrReading r;
      r.index = returned[i];
      std::memcpy(r.value.data(), values->digests[i].buffer, 32);
      out.push_back(r);
      pending.erase(std::remove(pending.begin(), pending.end(), returned[i]), pending.end());
    }
  }
  std::sort(out.begin(), out.end(),
            [](const PcrReading& a, const PcrReading& b) { return a.index < b.index; });
  return out;
}

absl::StatusOr<QuoteResult> Quote(TpmContext& tpm, ESYS_TR ak, const std::vector<uint32_t>& pcrs,
                                  std::string_view qualifying_data) {
  TPM2B_DATA extra{};
  if (qualifying_data.size() > sizeof(extra.buffer)) {
    return absl::InvalidArgumentError("qualifying data too long");
  }
  extra.size = static_cast<UINT16>(qualifying_data.size());
  // An empty view may have no data at all: memcpy from null is undefined even for 0 bytes.
  if (!qualifying_data.empty()) {
    std::memcpy(extra.buffer, qualifying_data.data(), qualifying_data.size());
  }
  ASSIGN_OR_RETURN(TPML_PCR_SELECTION sel, Sha256Selection(pcrs));
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // the AK's own scheme

  for (int attempt = 0; attempt < kQuoteAttempts; ++attempt) {
    TPM2B_ATTEST* quoted_raw = nullptr;
    TPMT_SIGNATURE* signature_raw = nullptr;
    TSS2_RC rc = Esys_Quote(tpm.esys(), ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &extra,
                            &scheme, &sel, &quoted_raw, &signature_raw);
    EsysPtr<TPM2B_ATTEST> quoted(quoted_raw);
    EsysPtr<TPMT_SIGNATURE> signature(signature_raw);
    if (rc != TSS2_RC_SUCCESS) return TssError(rc, "quote");

    QuoteResult result;
    result.attest.assign(reinterpret_cast<const char*>(quoted->attestationData), quoted->size);
    ASSIGN_OR_RETURN(result.signature, MarshalTPMT_SIGNATURE(*signature));
    ASSIGN_OR_RETURN(TPMS_ATTEST attest, UnmarshalTPMS_ATTEST(result.attest));
    ASSIGN_OR_RETURN(result.pcrs, ReadPcrs(tpm, pcrs));
    const TPM2B_DIGEST& quoted_digest = attest.attested.quote.pcrDigest;
    Sha256Digest read_digest = DigestOfValues(result.pcrs);
    if (quoted_digest.size == read_digest.size() &&
        std::memcmp(quoted_digest.buffer, read_digest.data(), read_digest.size()) == 0) {
      return result;
    }
    // A PCR was extended between the quote and the read: quote again.
  }
  return absl::AbortedError("PCRs kept changing while quoting");
}

absl::StatusOr<std::string> ActivateCredential(TpmContext& tpm, ESYS_TR ak, ESYS_TR ek,
                                               const TPMT_PUBLIC& ek_public,
                                               std::string_view credential_blob,
                                               std::string_view encrypted_secret) {
  ASSIGN_OR_RETURN(TPM2B_ID_OBJECT blob, UnmarshalTPM2B_ID_OBJECT(credential_blob));
  ASSIGN_OR_RETURN(TPM2B_ENCRYPTED_SECRET secret,
                   UnmarshalTPM2B_ENCRYPTED_SECRET(encrypted_secret));
  ESYS_CONTEXT* esys = tpm.esys();

  ESYS_TR ek_session = ESYS_TR_PASSWORD;
  TransientHandle policy_session;
  if ((ek_public.objectAttributes & TPMA_OBJECT_USERWITHAUTH) == 0) {
    // Low-range EK: the USER role needs its authPolicy, PolicySecret(TPM_RH_ENDORSEMENT),
    // computed with the EK's nameAlg.
    TPMT_SYM_DEF symmetric{};
    symmetric.algorithm = TPM2_ALG_NULL;
    ESYS_TR session = ESYS_TR_NONE;
    TSS2_RC rc = Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, nullptr, TPM2_SE_POLICY, &symmetric,
                                       ek_public.nameAlg, &session);
    if (rc != TSS2_RC_SUCCESS) return TssError(rc, "start EK policy session");
    policy_session = TransientHandle(esys, session);
    TPM2B_TIMEOUT* timeout = nullptr;
    TPMT_TK_AUTH* ticket = nullptr;
    rc = Esys_PolicySecret(esys, ESYS_TR_RH_ENDORSEMENT, session, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, nullptr, nullptr, nullptr, 0, &timeout, &ticket);
    EsysPtr<TPM2B_TIMEOUT> free_timeout(timeout);
    EsysPtr<TPMT_TK_AUTH> free_ticket(ticket);
    if (rc != TSS2_RC_SUCCESS) return TssError(rc, "PolicySecret(endorsement) for the EK");
    ek_session = session;
  }

  TPM2B_DIGEST* cert_info = nullptr;
  TSS2_RC rc = Esys_ActivateCredential(esys, ak, ek, ESYS_TR_PASSWORD, ek_session, ESYS_TR_NONE,
                                       &blob, &secret, &cert_info);
  EsysPtr<TPM2B_DIGEST> free_cert_info(cert_info);
  if (rc != TSS2_RC_SUCCESS) return TssError(rc, "activate credential");
  return std::string(reinterpret_cast<const char*>(cert_info->buffer), cert_info->size);
}

}  // namespace vigil::node::tpm
