#pragma once

// Offline verification of EAR tokens (EAT Attestation Results, draft-fv-rats-ear): compact
// JWS, ES256 (ECDSA P-256 with SHA-256, raw r||s signatures), keys from a JWKS (RFC 7517)
// selected by `kid`. Also the JOSE pieces the signer shares: base64url, EC JWKs and their
// RFC 7638 thumbprints. Depends on nothing but OpenSSL and nlohmann-json, so vigilctl can
// check a token without linking the verifier.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/openssl_util.h"
#include "nlohmann/json.hpp"

namespace vigil {

/// The `eat_profile` of every Vigil EAR token (the Veraison EAR profile).
inline constexpr std::string_view kEarProfile = "tag:github.com,2023:veraison/ear";

/// Base64url without padding (RFC 7515 section 2).
std::string Base64UrlEncode(std::string_view bytes);
/// Decodes unpadded base64url; refuses padding, whitespace and any other character.
absl::StatusOr<std::string> Base64UrlDecode(std::string_view text);

/// The public JWK of a P-256 key: {"kty":"EC","crv":"P-256","x":...,"y":...}.
absl::StatusOr<nlohmann::json> EcPublicJwk(EVP_PKEY* key);
/// The RFC 7638 thumbprint (base64url SHA-256 over the required members) of an EC JWK.
absl::StatusOr<std::string> JwkThumbprint(const nlohmann::json& jwk);
/// A P-256 public key from an EC JWK. Refuses other curves, key types and off-curve points.
absl::StatusOr<EvpPkeyPtr> EcPublicKeyFromJwk(const nlohmann::json& jwk);

/// Converts an ECDSA P-256 signature between DER (what OpenSSL makes) and the 64-byte
/// r||s form JWS uses.
absl::StatusOr<std::string> EcdsaDerToRaw(std::string_view der);
absl::StatusOr<std::string> EcdsaRawToDer(std::string_view raw);

/// Signs the JWS signing input ("header.payload", both base64url) with a P-256 key: the
/// base64url of the 64-byte r||s ES256 signature.
absl::StatusOr<std::string> SignEs256(std::string_view signing_input, EVP_PKEY* key);

/// Checks a base64url ES256 signature over `signing_input` with a P-256 public key:
/// kUnauthenticated when it is malformed or does not verify.
absl::Status VerifyEs256(std::string_view signing_input, std::string_view signature_b64url,
                         EVP_PKEY* key);

/// Splits a compact JWS into its three base64url parts; kInvalidArgument otherwise.
absl::StatusOr<std::vector<std::string_view>> SplitCompactJws(std::string_view token);

/// Verifies a compact-JWS EAR token against a JWKS document: the header must say alg
/// "ES256" and name a `kid` the JWKS holds (an EC P-256 key whose `alg`, when present, is
/// ES256 and whose `use`, when present, is "sig"); the signature must verify; the payload
/// must be a JSON object whose `eat_profile` is kEarProfile. Returns the claims.
/// Fails with kInvalidArgument for a malformed token or JWKS, kUnauthenticated for a token
/// that does not verify, and kNotFound for an unknown `kid`.
absl::StatusOr<nlohmann::json> VerifyEarToken(std::string_view token, std::string_view jwks_json);

}  // namespace vigil
