#include "verifier/console/console_sessions.h"

#include <openssl/rand.h>

#include <algorithm>

#include "common/digest.h"
#include "common/ear_verify.h"

namespace vigil::verifier::console {
namespace {

std::string SessionKey(std::string_view session_id) { return HexEncode(Sha256(session_id)); }

}  // namespace

void Sessions::DropExpiredLocked(absl::Time now) {
  std::erase_if(sessions_, [now](const auto& s) { return s.second.expires <= now; });
  std::erase_if(used_tokens_, [now](const auto& t) { return t.second <= now; });
}

absl::StatusOr<Sessions::Opened> Sessions::Open(const ConsoleTokenClaims& token, absl::Time now) {
  unsigned char random[32];
  if (RAND_bytes(random, sizeof(random)) != 1) {
    return absl::InternalError("no randomness for a session id");
  }
  Opened out;
  out.id = Base64UrlEncode(std::string_view(reinterpret_cast<char*>(random), sizeof(random)));
  out.viewer.role = token.role;
  out.viewer.name = token.name;
  out.viewer.spiffe_id = token.spiffe_id;
  out.viewer.expires = std::min(now + options_.lifetime, token.certificate_expires);

  std::lock_guard<std::mutex> lock(mu_);
  DropExpiredLocked(now);
  if (used_tokens_.count(token.token_id) != 0) {
    return absl::UnauthenticatedError("this token was used already: mint a new one");
  }
  if (sessions_.size() >= options_.max_sessions || used_tokens_.size() >= options_.max_sessions) {
    return absl::ResourceExhaustedError("the console has as many sessions as it holds");
  }
  used_tokens_.emplace(token.token_id, token.expires);
  sessions_.emplace(SessionKey(out.id), out.viewer);
  return out;
}

std::optional<Viewer> Sessions::Find(std::string_view session_id, absl::Time now) {
  if (session_id.empty()) return std::nullopt;
  // The lookup is by the digest, so its timing tells nothing about stored ids.
  const std::string key = SessionKey(session_id);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

}  // namespace vigil::verifier::console
