#pragma once

// Where verifier replicas sharing a database publish the public halves of their EAR signing
// keys, so that the JWKS any replica serves verifies the tokens every replica signs. Private
// keys never leave the replica that made them (EarSigner's key directory).

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vigil::verifier {

/// One published public key.
struct PublishedEarKey {
  /// The RFC 7638 thumbprint the tokens' `kid` header names.
  std::string kid;
  /// The public JWK as the JWKS serves it ({kty, crv, x, y, kid, alg, use}).
  std::string jwk_json;
  absl::Time created;
  /// The key leaves the JWKS at this time: its retirement plus the grace period, or, while
  /// it signs, a lease its replica keeps extending.
  absl::Time not_after;
};

/// The shared table of published keys (PostgreSQL: ear_keys). Thread-safe.
class EarKeyTable {
 public:
  virtual ~EarKeyTable() = default;
  /// Inserts `key` or replaces the row with its kid, and deletes every row whose not_after is
  /// not after `now`.
  virtual absl::Status Publish(const PublishedEarKey& key, absl::Time now) = 0;
  /// Every key whose not_after is after `now`, newest first.
  virtual absl::StatusOr<std::vector<PublishedEarKey>> Published(absl::Time now) const = 0;
};

}  // namespace vigil::verifier
