#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vigil {

/// Which kind of Vigil principal a SPIFFE ID names.
enum class SpiffeRole {
  kNode,    ///< spiffe://<td>/vigil/node/<node_id>: a vigil-node (Attestation only).
  kClient,  ///< spiffe://<td>/vigil/client/<name>: an operator or relying party.
};

/// A parsed Vigil SPIFFE ID.
struct SpiffeId {
  std::string trust_domain;
  SpiffeRole role = SpiffeRole::kNode;
  /// The node id (kNode) or client name (kClient).
  std::string name;

  bool operator==(const SpiffeId&) const = default;
};

/// "node" or "client".
std::string_view SpiffeRoleName(SpiffeRole role);

/// Checks a trust domain: 1..255 characters of [a-z0-9._-] (the SPIFFE spec's set).
absl::Status ValidateTrustDomain(std::string_view trust_domain);

/// Checks a node id or client name: 1..64 characters of [A-Za-z0-9._-], not "." or "..".
absl::Status ValidateSpiffeName(std::string_view name);

/// Parses exactly spiffe://<td>/vigil/node/<id> or spiffe://<td>/vigil/client/<name>.
/// Anything else (other schemes, ports, user info, queries, fragments, percent-encoding,
/// extra or empty path segments) is INVALID_ARGUMENT.
absl::StatusOr<SpiffeId> ParseSpiffeId(std::string_view uri);

/// Formats `id` as a URI. Fails when a part is invalid.
absl::StatusOr<std::string> FormatSpiffeId(const SpiffeId& id);

}  // namespace vigil
