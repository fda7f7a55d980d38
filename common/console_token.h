#pragma once

// The web console's sign-in token (docs/console.md): a compact JWS (ES256) that an operator
// or auditor signs, offline, with the private key of their own client certificate, carrying
// that certificate (x5c). The console checks the certificate against the client CA, its
// role, the signature, the audience and a short expiry, then opens a session. The verifier
// holds no secret to mint tokens: whoever holds a client key can sign in as that client,
// exactly as they could call the Fleet API.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/openssl_util.h"
#include "common/spiffe.h"

namespace vigil {

/// The `aud` claim of every console token.
inline constexpr std::string_view kConsoleTokenAudience = "vigil-console";
/// The longest lifetime (exp - iat) a console accepts.
inline constexpr absl::Duration kConsoleTokenMaxLifetime = absl::Minutes(15);
/// Clock skew tolerated between the signer and the console.
inline constexpr absl::Duration kConsoleTokenClockSkew = absl::Minutes(1);
/// Tokens longer than this are refused unread.
inline constexpr size_t kConsoleTokenMaxBytes = 16 << 10;

/// What a verified token says.
struct ConsoleTokenClaims {
  SpiffeRole role = SpiffeRole::kOperator;
  /// The client's name and full SPIFFE ID, from the certificate.
  std::string name;
  std::string spiffe_id;
  /// The token's id (jti), unique per minted token.
  std::string token_id;
  absl::Time expires;
  /// When the client certificate expires.
  absl::Time certificate_expires;
};

/// Mints a token for the client certificate `cert_pem` (exactly one certificate, an
/// operator or auditor SPIFFE ID) signed with its P-256 private key `key_pem`, valid from
/// `now` for `lifetime` (at most kConsoleTokenMaxLifetime). INVALID_ARGUMENT when the
/// certificate, key or lifetime will not do (naming why).
absl::StatusOr<std::string> MintConsoleToken(std::string_view cert_pem, std::string_view key_pem,
                                             absl::Duration lifetime, absl::Time now);

/// Checks console tokens against the client CA and trust domain.
class ConsoleTokenVerifier {
 public:
  /// `ca_pem` is the CA client certificates chain to (its first certificate).
  static absl::StatusOr<ConsoleTokenVerifier> Create(std::string_view ca_pem,
                                                     std::string trust_domain);

  /// The token's claims when it is well formed, its certificate chains to the CA at `now`
  /// and names an operator or auditor in the trust domain, its ES256 signature verifies with
  /// that certificate's key, its audience is the console, its subject is the certificate's
  /// SPIFFE ID, and it is within its lifetime at `now` (which is at most
  /// kConsoleTokenMaxLifetime). UNAUTHENTICATED otherwise (PERMISSION_DENIED for a valid
  /// certificate of another role), with a reason that never quotes the token.
  absl::StatusOr<ConsoleTokenClaims> Verify(std::string_view token, absl::Time now) const;

 private:
  ConsoleTokenVerifier(X509Ptr ca, std::string trust_domain)
      : ca_(std::move(ca)), trust_domain_(std::move(trust_domain)) {}

  std::shared_ptr<X509> ca_;
  std::string trust_domain_;
};

/// The client's identity in a verified certificate: UNAUTHENTICATED unless it carries
/// exactly one URI SAN, a Vigil SPIFFE ID in `trust_domain`; PERMISSION_DENIED unless
/// the role is operator or auditor (the console's readers). `uri`, when given, receives the
/// SAN as written.
absl::StatusOr<SpiffeId> ConsoleReaderIdentity(X509* cert, std::string_view trust_domain,
                                               std::string* uri = nullptr);

}  // namespace vigil
