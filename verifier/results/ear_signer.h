#pragma once

// The verifier's EAR signing keys: ES256 (P-256) keys kept as PEM files in a directory,
// rotated on demand and by age, with the public keys published as a JWKS (RFC 7517) that
// keeps retired keys for a grace period so tokens signed just before a rotation still verify.
//
// Key directory layout: DIR (mode 0700) holds ear-<created unix nanoseconds>.pem (PKCS#8,
// mode 0600, created with that mode). The newest file is the signing key; each older key
// retired when the next one was created.
//
// Replicas sharing a database each keep their own directory and publish their public keys in
// the database (EarKeyTable): every replica's JWKS then holds every replica's keys.

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/openssl_util.h"
#include "nlohmann/json.hpp"
#include "verifier/results/ear_claims.h"
#include "verifier/results/ear_key_table.h"
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
  /// Where replicas sharing a database publish their public keys (must outlive the signer);
  /// null for a verifier on its own, whose JWKS holds its own keys only. The signing key is
  /// published with a lease of grace + 2 x publish_interval that the signer extends every
  /// publish_interval, so the key of a replica that stopped leaves every JWKS one grace
  /// period (plus at most two intervals) after its last token.
  EarKeyTable* published = nullptr;
  absl::Duration publish_interval = absl::Minutes(1);
};

/// Signs EAR tokens. Thread-safe: Sign and Jwks may run while Rotate does.
class EarSigner {
 public:
  using Clock = std::function<absl::Time()>;

  /// Loads the keys in config.key_dir (creating the directory and a first key when there is
  /// none), rotates when the signing key is older than max_key_age, and deletes retired keys
  /// past their grace period. With config.published, publishes every key still in its grace
  /// period there (an error when the table cannot be written) and starts the thread that
  /// extends the signing key's lease. `clock` is the time source (tests inject one).
  static absl::StatusOr<std::unique_ptr<EarSigner>> Open(EarSignerConfig config,
                                                         Clock clock = &absl::Now);
  ~EarSigner();

  /// Makes a new signing key; the previous one stays in the JWKS for the grace period. With
  /// config.published the new key is published before it signs anything (the rotation
  /// fails, and the previous key goes on signing, when it cannot be).
  absl::Status Rotate();

  /// Publishes the signing key again with a fresh lease (config.published; OK without
  /// one). The signer's thread calls it every publish_interval.
  absl::Status Publish();

  /// Signs `claims` as a compact JWS: header {"alg":"ES256","typ":"JWT","kid":...}.
  absl::StatusOr<std::string> Sign(const nlohmann::json& claims) const;

  /// Signs the EAR claim set of `verdict` (BuildEarClaims), issued now.
  absl::StatusOr<std::string> SignVerdict(const v1::Verdict& verdict) const;

  /// The JWKS document: the signing key and every retired key still in its grace period,
  /// and with config.published every key published there and not past its not_after (every
  /// replica's), newest first, each {kty, crv, x, y, kid, alg: ES256, use: sig}. UNAVAILABLE
  /// when the published keys cannot be read (a JWKS without them would not verify other
  /// replicas' tokens).
  absl::StatusOr<std::string> Jwks() const;

  /// The RFC 7638 thumbprint of the signing key.
  std::string current_kid() const;

 private:
  struct Key {
    absl::Time created;
    std::string path;
    EvpPkeyPtr pkey;
    nlohmann::json public_jwk;  // with kid, alg and use
    std::string kid;
    // The token header {"alg":"ES256","kid":...,"typ":"JWT"} base64url-encoded: the same for
    // every token the key signs.
    std::string header_b64;
  };

  // A key with its JWK, kid and token header.
  static absl::StatusOr<Key> MakeKey(absl::Time created, std::string path, EvpPkeyPtr pkey);

  EarSigner(EarSignerConfig config, Clock clock) : config_(std::move(config)), clock_(clock) {}

  absl::Status LoadKeys() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RotateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether keys_[i] (oldest first) still belongs in the JWKS at `now`.
  bool PublishedLocked(size_t i, absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The end of a signing key's lease published at `now`: grace + 2 x publish_interval.
  absl::Time LeaseEnd(absl::Time now) const;
  // When keys_[i] leaves the JWKS: its successor's creation plus grace, or for the signing
  // key the end of a lease starting at `now`.
  absl::Time NotAfterLocked(size_t i, absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Writes `key` to config_.published with the given not_after.
  absl::Status PublishKey(const Key& key, absl::Time not_after, absl::Time now) const;
  // Extends the signing key's lease every publish_interval until the signer is destroyed.
  void LeaseLoop();

  const EarSignerConfig config_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  std::vector<Key> keys_ ABSL_GUARDED_BY(mu_);  // oldest first; back() signs

  absl::Mutex lease_mu_;
  bool stopping_ ABSL_GUARDED_BY(lease_mu_) = false;
  std::thread lease_thread_;
};

}  // namespace vigil::verifier
