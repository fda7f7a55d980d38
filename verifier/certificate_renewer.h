#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pki.h"
#include "verifier/attestation_service.h"
#include "verifier/node_registry.h"
#include "verifier/peer_identity.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// Renews node certificates on the Attest stream ("same key" renewal). The new certificate
/// names the SPIFFE ID of the certificate the node is connected with, never anything the CSR
/// asks for, and is only issued when the CSR's key is the key of that certificate: a stolen
/// stream cannot move the identity to another key. Only a node that is still enrolled (its
/// EK/AK binding is in the registry) is renewed and, when nodes are admitted by operator
/// approval, only while its approval stands: a withdrawn approval ends the node's identity
/// when its certificate expires.
class CertificateRenewerImpl {
 public:
  struct Options {
    /// The new certificate's lifetime.
    absl::Duration lifetime = absl::Hours(24);
    /// Renew only nodes on the registry's approval list. Set it when EKs are admitted only by
    /// operator approval (no EK CA bundle, no trust-on-first-use).
    bool require_approval = false;
  };

  /// `ca` and `registry` are not owned and must outlive the renewer.
  CertificateRenewerImpl(const CaMaterial* ca, const NodeRegistry* registry, Options options);

  /// Signs `request.csr_pem` for `node`. `peer_certificate_pem` is the verified certificate
  /// the node presented on this stream. INVALID_ARGUMENT for a malformed CSR or a CSR for
  /// another key; PERMISSION_DENIED when `node` is not a node identity, is not enrolled, or
  /// (with require_approval) is not approved.
  absl::StatusOr<v1::CertificateRenewal> Renew(const PeerIdentity& node,
                                               std::string_view peer_certificate_pem,
                                               const v1::CertificateRenewalRequest& request) const;

  /// The hook for AttestationOptions::renewer (this object must outlive the service).
  CertificateRenewer AsHook() const;

 private:
  const CaMaterial* const ca_;
  const NodeRegistry* const registry_;
  const Options options_;
};

}  // namespace vigil::verifier
