#pragma once

#include <grpcpp/grpcpp.h>

#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/spiffe.h"

namespace vigil::verifier {

/// Who is calling, taken from the verified client certificate and nothing else.
struct PeerIdentity {
  SpiffeRole role = SpiffeRole::kNode;
  /// The node id (role kNode) or the client's name (client roles).
  std::string name;
  /// The full SPIFFE URI of the certificate.
  std::string spiffe_id;
};

/// The identity in an authenticated channel's auth context: the peer certificate
/// (x509_pem_cert) must carry exactly one URI SAN, a Vigil SPIFFE ID in `trust_domain`.
/// UNAUTHENTICATED when there is no verified certificate or it names no valid identity.
absl::StatusOr<PeerIdentity> PeerIdentityFromAuthContext(const grpc::AuthContext& auth,
                                                         const std::string& trust_domain);

/// The caller's identity on a server call. Every service asks this, and only this.
absl::StatusOr<PeerIdentity> PeerIdentityOf(const grpc::CallbackServerContext& context,
                                            const std::string& trust_domain);

/// The caller's identity if its role is one of `allowed`; PERMISSION_DENIED for any other
/// role, UNAUTHENTICATED when there is no identity. Node services require kNode; each
/// operator and relying-party call names the client roles that may make it.
absl::StatusOr<PeerIdentity> RequireRole(const grpc::CallbackServerContext& context,
                                         const std::string& trust_domain,
                                         std::initializer_list<SpiffeRole> allowed);

/// RequireRole for one role.
inline absl::StatusOr<PeerIdentity> RequireRole(const grpc::CallbackServerContext& context,
                                                const std::string& trust_domain, SpiffeRole role) {
  return RequireRole(context, trust_domain, {role});
}

/// Every client role (operator, auditor, orchestrator).
inline constexpr std::initializer_list<SpiffeRole> kAnyClientRole = {
    SpiffeRole::kOperator, SpiffeRole::kAuditor, SpiffeRole::kOrchestrator};

/// absl::Status to grpc::Status (the codes are the same numbers): for the RPC edge only.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace vigil::verifier
