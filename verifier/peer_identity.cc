#include "verifier/peer_identity.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/str_cat.h"
#include "common/pki.h"
#include "common/status_macros.h"

namespace vigil::verifier {

absl::StatusOr<PeerIdentity> PeerIdentityFromAuthContext(const grpc::AuthContext& auth,
                                                         const std::string& trust_domain) {
  if (!auth.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("no verified client certificate");
  }
  std::vector<grpc::string_ref> pems = auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pems.size() != 1) return absl::UnauthenticatedError("no peer certificate");
  ASSIGN_OR_RETURN(X509Ptr cert,
                   CertificateFromPem(std::string_view(pems[0].data(), pems[0].size())));
  std::string uri;
  ASSIGN_OR_RETURN(SpiffeId id, CertificateSpiffeId(cert.get(), trust_domain, &uri));
  return PeerIdentity{id.role, id.name, uri};
}

absl::StatusOr<PeerIdentity> PeerIdentityOf(const grpc::CallbackServerContext& context,
                                            const std::string& trust_domain) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return absl::UnauthenticatedError("no authentication context");
  return PeerIdentityFromAuthContext(*auth, trust_domain);
}

absl::StatusOr<PeerIdentity> RequireRole(const grpc::CallbackServerContext& context,
                                         const std::string& trust_domain,
                                         std::initializer_list<SpiffeRole> allowed) {
  ASSIGN_OR_RETURN(PeerIdentity peer, PeerIdentityOf(context, trust_domain));
  for (SpiffeRole role : allowed) {
    if (peer.role == role) return peer;
  }
  return absl::PermissionDeniedError(
      absl::StrCat("the ", std::string(SpiffeRoleName(peer.role)), " role may not make this call"));
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace vigil::verifier
