#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/console_token.h"
#include "common/spiffe.h"

namespace vigil::verifier::console {

/// Who is looking at the console: from a client certificate or a session.
struct Viewer {
  SpiffeRole role = SpiffeRole::kOperator;
  std::string name;
  std::string spiffe_id;
  /// When the session ends (absl::InfiniteFuture() for a client certificate).
  absl::Time expires = absl::InfiniteFuture();
};

/// The console's sign-in sessions, in memory: a verified token is exchanged once for a
/// random session id (the cookie), which the console looks up on every request. Only the
/// SHA-256 of each session id is kept, so the table holds no usable secret. Thread-safe.
class Sessions {
 public:
  struct Options {
    /// How long a session lasts (never past its client certificate's expiry).
    absl::Duration lifetime = absl::Hours(8);
    /// Open sessions (and remembered token ids) at most; more are refused.
    size_t max_sessions = 1024;
  };

  struct Opened {
    /// The session id: 32 random bytes, base64url. A secret: never log it.
    std::string id;
    Viewer viewer;
  };

  explicit Sessions(Options options) : options_(options) {}

  /// Opens a session for a verified token. UNAUTHENTICATED when this token (its jti) was
  /// already exchanged (a token signs in once); RESOURCE_EXHAUSTED when the table is full.
  absl::StatusOr<Opened> Open(const ConsoleTokenClaims& token, absl::Time now);
  /// The viewer of a live session; nullopt for an unknown or expired id.
  std::optional<Viewer> Find(std::string_view session_id, absl::Time now);

 private:
  void DropExpiredLocked(absl::Time now);

  const Options options_;
  std::mutex mu_;
  // Keyed by the hex SHA-256 of the session id.
  std::map<std::string, Viewer> sessions_;  // guarded by mu_
  // jti -> the token's expiry: exchanged tokens, kept until they expire.
  std::map<std::string, absl::Time> used_tokens_;  // guarded by mu_
};

}  // namespace vigil::verifier::console
