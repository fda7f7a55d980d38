#include "bench/fleetsim/simulated_tpm.h"

#include <openssl/core_names.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ek_certificate.h"
#include "common/status_macros.h"
#include "common/tpm/credential.h"
#include "common/tpm/software_quote.h"
#include "common/tpm/tpm_marshal.h"
#include "node/tpm/keys.h"

namespace vigil::fleetsim {
namespace {

// The boot PCRs' values: what one firmware and boot chain would leave, the same on every
// simulated node.
const std::string& BootPcr(uint32_t index) {
  static const std::vector<std::string> values = [] {
    std::vector<std::string> v;
    for (uint32_t i = 0; i < 8; ++i) {
      v.emplace_back(DigestBytes(Sha256(absl::StrCat("vigil-fleetsim boot PCR ", i))));
    }
    return v;
  }();
  return values[index];
}

absl::Status CopyBn(EVP_PKEY* key, const char* param, uint8_t* out, size_t size) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &raw) != 1) {
    return absl::InternalError(absl::StrCat("OpenSSL: cannot read ", param));
  }
  BignumPtr bn(raw);
  if (BN_bn2binpad(bn.get(), out, static_cast<int>(size)) < 0) {
    return absl::InternalError(absl::StrCat("OpenSSL: ", param, " does not fit"));
  }
  return absl::OkStatus();
}

// Fills an ECC P-256 area's unique field with `key`'s public point.
absl::Status SetEccUnique(EVP_PKEY* key, TPMT_PUBLIC& area) {
  area.unique.ecc.x.size = 32;
  area.unique.ecc.y.size = 32;
  RETURN_IF_ERROR(CopyBn(key, OSSL_PKEY_PARAM_EC_PUB_X, area.unique.ecc.x.buffer, 32));
  return CopyBn(key, OSSL_PKEY_PARAM_EC_PUB_Y, area.unique.ecc.y.buffer, 32);
}

absl::StatusOr<EvpPkeyPtr> NewKey(EkAlgorithm algorithm) {
  EvpPkeyPtr key(algorithm == EkAlgorithm::kRsa2048
                     ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                     : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return absl::InternalError("OpenSSL: key generation failed");
  return key;
}

// The EK's TPM2B_PUBLIC: the TCG default template (L-1 or L-2) with the key's public part.
absl::StatusOr<std::string> EkPublic(EkAlgorithm algorithm, EVP_PKEY* key) {
  TPM2B_PUBLIC pub =
      node::tpm::EkTemplate(algorithm == EkAlgorithm::kRsa2048 ? node::tpm::EkType::kRsa2048
                                                               : node::tpm::EkType::kEccP256);
  TPMT_PUBLIC& a = pub.publicArea;
  if (algorithm == EkAlgorithm::kRsa2048) {
    a.unique.rsa.size = 256;
    RETURN_IF_ERROR(CopyBn(key, OSSL_PKEY_PARAM_RSA_N, a.unique.rsa.buffer, 256));
  } else {
    RETURN_IF_ERROR(SetEccUnique(key, a));
  }
  return MarshalTPM2B_PUBLIC(pub);
}

}  // namespace

absl::StatusOr<std::string> SimulatedSrkPublic(EVP_PKEY* key) {
  TPM2B_PUBLIC pub = node::tpm::SrkTemplate();
  RETURN_IF_ERROR(SetEccUnique(key, pub.publicArea));
  return MarshalTPM2B_PUBLIC(pub);
}

absl::StatusOr<std::unique_ptr<SimulatedTpm>> SimulatedTpm::Create(EkAlgorithm algorithm,
                                                                   const CaMaterial& ek_ca) {
  std::unique_ptr<SimulatedTpm> t(new SimulatedTpm());
  ASSIGN_OR_RETURN(t->ek_key_, NewKey(algorithm));
  ASSIGN_OR_RETURN(t->ek_public_, EkPublic(algorithm, t->ek_key_.get()));
  ASSIGN_OR_RETURN(t->ek_, tpm::ParseTpm2bPublic(t->ek_public_));
  t->node_id_ = tpm::NodeIdForEk(t->ek_);
  ASSIGN_OR_RETURN(t->ek_certificate_der_,
                   IssueEkCertificate(ek_ca, t->ek_key_.get(),
                                      absl::StrCat("vigil-fleetsim EK ", t->node_id_.substr(0, 16)),
                                      Validity::FromNow(absl::Hours(24 * 365))));
  ASSIGN_OR_RETURN(EvpPkeyPtr srk_key, NewKey(EkAlgorithm::kEccP256));
  ASSIGN_OR_RETURN(t->srk_public_, SimulatedSrkPublic(srk_key.get()));
  ASSIGN_OR_RETURN(t->ak_, tpm::SoftwareAk::Create());
  t->ak_tpm2b_name_.push_back(static_cast<char>(t->ak_.name.size() >> 8));
  t->ak_tpm2b_name_.push_back(static_cast<char>(t->ak_.name.size() & 0xff));
  t->ak_tpm2b_name_ += t->ak_.name;
  ASSIGN_OR_RETURN(tpm::TpmPublic srk, tpm::ParseTpm2bPublic(t->srk_public_));
  ASSIGN_OR_RETURN(tpm::TpmPublic ak, tpm::ParseTpm2bPublic(t->ak_.tpm2b_public));
  ASSIGN_OR_RETURN(std::string srk_qualified_name, tpm::PrimaryQualifiedName(TPM2_RH_OWNER, srk));
  ASSIGN_OR_RETURN(t->ak_qualified_name_, tpm::ChildQualifiedName(srk_qualified_name, ak));
  // A TPM's clock counts milliseconds since its last clear: start each somewhere different.
  unsigned char offset[4];
  if (RAND_bytes(offset, sizeof(offset)) != 1) return absl::InternalError("OpenSSL: no randomness");
  std::memcpy(&t->clock_offset_ms_, offset, sizeof(offset));
  t->started_ = absl::Now();
  return t;
}

absl::StatusOr<std::string> SimulatedTpm::ActivateCredential(std::string_view credential_blob,
                                                             std::string_view encrypted_secret) {
  if (ek_key_ == nullptr) return absl::FailedPreconditionError("the EK was already used");
  absl::StatusOr<std::string> secret =
      tpm::ActivateCredential(ek_, ek_key_.get(), ak_.name, credential_blob, encrypted_secret);
  ek_key_.reset();
  return secret;
}

void SimulatedTpm::Measure(std::string_view event_type, std::string_view content,
                           std::string_view digest) {
  v1::MeasurementLogEntry& e = log_.emplace_back();
  e.set_recnum(log_.size() - 1);
  e.set_pcr(kMeasurementPcr);
  e.set_digest(std::string(digest));
  e.set_event_type(std::string(event_type));
  e.set_content(std::string(content));
  measurement_pcr_ = Sha256Concat({DigestBytes(measurement_pcr_), digest});
}

absl::StatusOr<v1::Quote> SimulatedTpm::Quote(const std::vector<uint32_t>& pcrs,
                                              std::string_view qualifying_data) {
  std::map<uint32_t, std::string> values;
  for (uint32_t index : pcrs) {
    if (index < 8) {
      values[index] = BootPcr(index);
    } else if (index == kMeasurementPcr) {
      values[index] = std::string(DigestBytes(measurement_pcr_));
    } else if (index < 24) {
      values[index] = std::string(32, '\0');
    } else {
      return absl::InvalidArgumentError(absl::StrCat("PCR ", index, " does not exist"));
    }
  }
  const uint64_t now_ms =
      clock_offset_ms_ + static_cast<uint64_t>(absl::ToInt64Milliseconds(absl::Now() - started_));
  last_clock_ms_ = std::max(now_ms, last_clock_ms_ + 1);
  tpm::QuoteAttestFields fields{.qualified_signer = ak_qualified_name_,
                                .extra_data = qualifying_data};
  fields.clock_info.clock = last_clock_ms_;
  fields.clock_info.resetCount = 1;
  fields.clock_info.restartCount = 0;
  fields.clock_info.safe = 1;
  ASSIGN_OR_RETURN(std::string attest, tpm::MarshalQuoteAttest(fields, values));
  ASSIGN_OR_RETURN(std::string signature, ak_.Sign(attest));
  v1::Quote quote;
  quote.set_attest(std::move(attest));
  quote.set_signature(std::move(signature));
  for (const auto& [index, value] : values) {
    v1::PcrValue* v = quote.add_pcr_values();
    v->set_index(index);
    v->set_digest(value);
  }
  return quote;
}

}  // namespace vigil::fleetsim
