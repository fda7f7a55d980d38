#pragma once

// The verifier's EAR signing keys: ES256 (P-256) keys kept as PEM files in a directory,
// rotated on demand and by age, with the public keys published as a JWKS (RFC 7517) that
// keeps retired keys for a grace period so tokens signed just before a rotation still verify.
//
// Key directory layout: DIR (mode 0700) holds ear-<created unix nanoseconds>.pem (PKCS#8,
// mode 0600, created with that mode). The newest file is the signing key; each older key
// retired when the next one was created.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/openssl_util.h"
#include "nlohmann/json.hpp"
#include "verifier/results/ear_claims.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

struct EarSignerConfig {
  /// Where the keys live; created 0700 when missing, refused when group or others may
  /// enter it.
  std::string key_dir;
  /// A signing key older than this at Open() is rotated before first use.
  absl::Duration max_key_age = absl::Hours(24 * 30);
  /// How long a retired key's public half stays in the JWKS (and its file on disk).
  absl::Duration grace = absl::Hours(24 * 7);
  /// `ear.verifier-id` of every token.
  EarVerifierId verifier_id;
};

/// Signs EAR tokens. Thread-safe: Sign and Jwks may run while Rotate does.
class EarSigner {
 public:
  using Clock = std::function<absl::Time()>;

  /// Loads the keys in config.key_dir (creating the directory and a first key when there is
  /// none), rotates when the signing key is older than max_key_age, and deletes retired keys
  /// past their grace period. `clock` is the time source (tests inject one).
  static absl::StatusOr<std::unique_ptr<EarSigner>> Open(EarSignerConfig config,
                                                         Clock clock = &absl::Now);

  /// Makes a new signing key; the previous one stays in the JWKS for the grace period.
  absl::Status Rotate();

  /// Signs `claims` as a compact JWS: header {"alg":"ES256","typ":"JWT","kid":...}.
  absl::StatusOr<std::string> Sign(const nlohmann::json& claims) const;

  /// Signs the EAR claim set of `verdict` (BuildEarClaims), issued now.
  absl::StatusOr<std::string> SignVerdict(const v1::Verdict& verdict) const;

  /// The JWKS document: the signing key and every retired key still in its grace period,
  /// newest first, each {kty, crv, x, y, kid, alg: ES256, use: sig}.
  std::string Jwks() const;

  /// The RFC 7638 thumbprint of the signing key.
  std::string current_kid() const;

 private:
  struct Key {
    absl::Time created;
    std::string path;
    EvpPkeyPtr pkey;
    nlohmann::json public_jwk;  // with kid, alg and use
    std::string kid;
  };

  EarSigner(EarSignerConfig config, Clock clock) : config_(std::move(config)), clock_(clock) {}

  absl::Status LoadKeys() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RotateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether keys_[i] (oldest first) still belongs in the JWKS at `now`.
  bool PublishedLocked(size_t i, absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const EarSignerConfig config_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  std::vector<Key> keys_ ABSL_GUARDED_BY(mu_);  // oldest first; back() signs
};

}  // namespace vigil::verifier
