#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vigil {

/// Which kind of Vigil principal a SPIFFE ID names. Clients (everyone but nodes) carry their
/// role in the path: spiffe://<td>/vigil/<role>/<name>.
enum class SpiffeRole {
  kNode,          ///< spiffe://<td>/vigil/node/<node_id>: a vigil-node (Attestation only).
  kOperator,      ///< .../vigil/operator/<name>: reads everything, approves, revokes, sets policy.
  kAuditor,       ///< .../vigil/auditor/<name>: reads results, evidence, exports, the audit log.
  kOrchestrator,  ///< .../vigil/orchestrator/<name>: reads results and asks for admission.
  /// The operator role as certificates issued before client roles existed name it
  /// (.../vigil/client/<name>): such a certificate parses as kOperator.
  kClient = kOperator,
};

/// Whether `role` is a client role (any role but kNode).
constexpr bool IsClientRole(SpiffeRole role) { return role != SpiffeRole::kNode; }

/// Parses a client role name: "operator", "auditor" or "orchestrator".
absl::StatusOr<SpiffeRole> ParseClientRole(std::string_view name);

/// A parsed Vigil SPIFFE ID.
struct SpiffeId {
  std::string trust_domain;
  SpiffeRole role = SpiffeRole::kNode;
  /// The node id (kNode) or client name (kClient).
  std::string name;

  bool operator==(const SpiffeId&) const = default;
};

/// "node", "operator", "auditor" or "orchestrator".
std::string_view SpiffeRoleName(SpiffeRole role);

/// Checks a trust domain: 1..255 characters of [a-z0-9._-] (the SPIFFE spec's set).
absl::Status ValidateTrustDomain(std::string_view trust_domain);

/// Checks a node id or client name: 1..64 characters of [A-Za-z0-9._-], not "." or "..".
absl::Status ValidateSpiffeName(std::string_view name);

/// Parses exactly spiffe://<td>/vigil/<role>/<name>, role one of node, operator, auditor,
/// orchestrator, or client (the older spelling of operator).
/// Anything else (other schemes, ports, user info, queries, fragments, percent-encoding,
/// extra or empty path segments) is INVALID_ARGUMENT.
absl::StatusOr<SpiffeId> ParseSpiffeId(std::string_view uri);

/// Formats `id` as a URI. Fails when a part is invalid.
absl::StatusOr<std::string> FormatSpiffeId(const SpiffeId& id);

}  // namespace vigil
