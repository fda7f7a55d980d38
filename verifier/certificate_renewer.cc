#include "verifier/certificate_renewer.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/spiffe.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace vigil::verifier {

CertificateRenewerImpl::CertificateRenewerImpl(const CaMaterial* ca, const NodeRegistry* registry,
                                               Options options)
    : ca_(ca), registry_(registry), options_(options) {}

absl::StatusOr<v1::CertificateRenewal> CertificateRenewerImpl::Renew(
    const PeerIdentity& node, std::string_view peer_certificate_pem,
    const v1::CertificateRenewalRequest& request) const {
  if (node.role != SpiffeRole::kNode || node.spiffe_id.empty()) {
    return absl::PermissionDeniedError("only a node certificate can be renewed");
  }
  // A valid certificate outlives its enrollment: the registry decides whether it may live on.
  if (registry_->Find(node.name) == nullptr) {
    spdlog::warn("renewal for node {} refused: not enrolled", node.name);
    return absl::PermissionDeniedError("the node is not enrolled: enroll it again");
  }
  if (options_.require_approval && !registry_->IsApproved(node.name)) {
    spdlog::warn("renewal for node {} refused: its approval was withdrawn", node.name);
    return absl::PermissionDeniedError(
        "the node is not approved (approval withdrawn): its certificate is not renewed");
  }
  absl::StatusOr<X509ReqPtr> csr = CsrFromPem(request.csr_pem());
  if (!csr.ok()) {
    spdlog::warn("renewal for node {} refused: {}", node.name, csr.status().ToString());
    return csr.status();
  }
  ASSIGN_OR_RETURN(X509Ptr current, CertificateFromPem(peer_certificate_pem));
  EVP_PKEY* current_key = X509_get0_pubkey(current.get());
  EVP_PKEY* requested_key = X509_REQ_get0_pubkey(csr->get());
  if (current_key == nullptr || requested_key == nullptr ||
      EVP_PKEY_eq(current_key, requested_key) != 1) {
    spdlog::warn("renewal for node {} refused: the CSR's key is not the certificate's key",
                 node.name);
    return absl::InvalidArgumentError(
        "renewal keeps the key: the CSR must be for the key of the connected certificate");
  }
  // The identity comes from the verified peer certificate only.
  ASSIGN_OR_RETURN(std::string cert_pem,
                   SignCsr(*ca_, request.csr_pem(), node.spiffe_id, options_.lifetime));
  ASSIGN_OR_RETURN(X509Ptr issued, CertificateFromPem(cert_pem));
  ASSIGN_OR_RETURN(Validity validity, CertificateValidity(issued.get()));
  v1::CertificateRenewal renewal;
  renewal.set_certificate_chain_pem(absl::StrCat(cert_pem, ca_->cert_pem));
  renewal.set_not_after_unix_nano(absl::ToUnixNanos(validity.not_after));
  spdlog::info("renewed the certificate of node {} until {}", node.name,
               absl::FormatTime(validity.not_after, absl::UTCTimeZone()));
  return renewal;
}

CertificateRenewer CertificateRenewerImpl::AsHook() const {
  return [this](const PeerIdentity& node, std::string_view peer_certificate_pem,
                const v1::CertificateRenewalRequest& request) {
    return Renew(node, peer_certificate_pem, request);
  };
}

}  // namespace vigil::verifier
