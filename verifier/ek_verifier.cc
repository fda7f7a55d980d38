#include "verifier/ek_verifier.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace vigil::verifier {

std::string_view EkTrustName(EkTrust trust) {
  switch (trust) {
    case EkTrust::kCertificate:
      return "certificate";
    case EkTrust::kOperatorApproved:
      return "operator-approved";
    case EkTrust::kTrustOnFirstUse:
      return "tofu";
    case EkTrust::kSimulated:
      return "simulated-tpm";
  }
  return "unknown";
}

namespace {

// A store holding the CA certificates of the PEM file at `path`.
absl::StatusOr<X509StorePtr> LoadStore(const std::string& path) {
  X509StorePtr store(X509_STORE_new());
  if (store == nullptr) return absl::InternalError("OpenSSL: X509_STORE_new failed");
  if (X509_STORE_load_file(store.get(), path.c_str()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a PEM bundle of CA certificates"));
  }
  return store;
}

// `ek_certificate_der` chains to `store` and certifies `ek`.
absl::Status CheckChain(X509_STORE* store, const tpm::TpmPublic& ek,
                        std::string_view ek_certificate_der, const char* what) {
  if (ek_certificate_der.empty()) return absl::FailedPreconditionError("no EK certificate sent");
  const auto* p = reinterpret_cast<const unsigned char*>(ek_certificate_der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(ek_certificate_der.size())));
  if (cert == nullptr || p != reinterpret_cast<const unsigned char*>(ek_certificate_der.data()) +
                                  ek_certificate_der.size()) {
    ERR_clear_error();
    return absl::FailedPreconditionError("EK certificate is not one DER certificate");
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr || X509_STORE_CTX_init(ctx.get(), store, cert.get(), nullptr) != 1) {
    return absl::InternalError("OpenSSL: cannot set up certificate verification");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrCat("EK certificate does not chain to ", what,
                                                      ": ", X509_verify_cert_error_string(err)));
  }
  ASSIGN_OR_RETURN(EvpPkeyPtr ek_key, tpm::PublicKeyOf(ek.area));
  EVP_PKEY* cert_key = X509_get0_pubkey(cert.get());
  if (cert_key == nullptr || EVP_PKEY_eq(cert_key, ek_key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError("EK certificate certifies a different key than ek_public");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<EkVerifier>> EkVerifier::Create(const Options& options,
                                                               const NodeRegistry* registry) {
  X509StorePtr store;
  if (!options.ca_bundle_path.empty()) {
    ASSIGN_OR_RETURN(store, LoadStore(options.ca_bundle_path));
  }
  X509StorePtr simulated_store;
  if (!options.simulated_ca_path.empty()) {
    ASSIGN_OR_RETURN(simulated_store, LoadStore(options.simulated_ca_path));
    spdlog::warn(
        "SIMULATED TPMs ACCEPTED (--accept-simulated-tpm {}): EKs certified by this CA are "
        "software keys; their nodes enroll as simulated and every verdict about them says "
        "tpm_simulated with no hardware claim. Benchmarks only, never production.",
        options.simulated_ca_path);
  }
  if (options.trust_on_first_use) {
    spdlog::warn(
        "EK trust-on-first-use is on: any TPM that reaches the enrollment listener "
        "can enroll");
  }
  return std::unique_ptr<EkVerifier>(
      new EkVerifier(options, registry, std::move(store), std::move(simulated_store)));
}

absl::Status EkVerifier::CheckCertificate(const tpm::TpmPublic& ek,
                                          std::string_view ek_certificate_der) const {
  if (store_ == nullptr) return absl::FailedPreconditionError("no EK CA bundle is configured");
  return CheckChain(store_.get(), ek, ek_certificate_der, "the CA bundle");
}

absl::StatusOr<EkTrust> EkVerifier::Check(const tpm::TpmPublic& ek,
                                          std::string_view ek_certificate_der,
                                          const std::string& node_id) const {
  if (simulated_store_ != nullptr &&
      CheckChain(simulated_store_.get(), ek, ek_certificate_der, "the simulated-TPM CA").ok()) {
    return EkTrust::kSimulated;
  }
  absl::Status cert = CheckCertificate(ek, ek_certificate_der);
  if (cert.ok()) return EkTrust::kCertificate;
  if (registry_->IsApproved(node_id)) return EkTrust::kOperatorApproved;
  if (options_.trust_on_first_use) {
    spdlog::warn("node {} enrolls by trust-on-first-use ({})", node_id,
                 std::string(cert.message()));
    return EkTrust::kTrustOnFirstUse;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "EK not trusted: ", cert.message(), "; node ", node_id,
      " is not operator-approved (vigilctl nodes approve); trust-on-first-use is off"));
}

}  // namespace vigil::verifier
