#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pki.h"
#include "verifier/attestation_service.h"
#include "verifier/peer_identity.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// Renews node certificates on the Attest stream ("same key" renewal). The new certificate
/// names the SPIFFE ID of the certificate the node is connected with, never anything the CSR
/// asks for, and is only issued when the CSR's key is the key of that certificate: a stolen
/// stream cannot move the identity to another key.
class CertificateRenewerImpl {
 public:
  /// `ca` is not owned and must outlive the renewer. `lifetime` is the new certificate's.
  CertificateRenewerImpl(const CaMaterial* ca, absl::Duration lifetime);

  /// Signs `request.csr_pem` for `node`. `peer_certificate_pem` is the verified certificate
  /// the node presented on this stream. INVALID_ARGUMENT for a malformed CSR or a CSR for
  /// another key; PERMISSION_DENIED when `node` is not a node identity.
  absl::StatusOr<v1::CertificateRenewal> Renew(const PeerIdentity& node,
                                               std::string_view peer_certificate_pem,
                                               const v1::CertificateRenewalRequest& request) const;

  /// The hook for AttestationOptions::renewer (this object must outlive the service).
  CertificateRenewer AsHook() const;

 private:
  const CaMaterial* const ca_;
  const absl::Duration lifetime_;
};

}  // namespace vigil::verifier
