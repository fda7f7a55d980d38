#include "common/console_token.h"

#include <openssl/rand.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/ear_verify.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace vigil {
namespace {

// Standard base64 with padding, as RFC 7515 wants for x5c.
std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

absl::StatusOr<std::string> Base64Decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > kConsoleTokenMaxBytes) {
    return absl::UnauthenticatedError("x5c entry is not base64");
  }
  std::string out(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return absl::UnauthenticatedError("x5c entry is not base64");
  size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text[text.size() - 2] == '=') ++padding;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

std::string CertificateDer(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len <= 0) return "";
  OpenSslStringPtr owned(reinterpret_cast<char*>(der));
  return std::string(owned.get(), static_cast<size_t>(len));
}

absl::StatusOr<nlohmann::json> DecodeJsonObject(std::string_view b64url, std::string_view what) {
  absl::StatusOr<std::string> text = Base64UrlDecode(b64url);
  if (!text.ok())
    return absl::UnauthenticatedError(
        absl::StrCat("the token's ", std::string(what), " is not base64url"));
  nlohmann::json out = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!out.is_object()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the token's ", std::string(what), " is not a JSON object"));
  }
  return out;
}

// A whole-seconds NumericDate claim.
absl::StatusOr<absl::Time> TimeClaim(const nlohmann::json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number_integer()) {
    return absl::UnauthenticatedError(absl::StrCat("the token has no integer \"", name, "\""));
  }
  return absl::FromUnixSeconds(it->get<int64_t>());
}

}  // namespace

absl::StatusOr<SpiffeId> ConsoleReaderIdentity(X509* cert, std::string_view trust_domain,
                                               std::string* uri) {
  absl::StatusOr<SpiffeId> id = CertificateSpiffeId(cert, trust_domain, uri);
  if (!id.ok()) return id.status();
  if (id->role != SpiffeRole::kOperator && id->role != SpiffeRole::kAuditor) {
    return absl::PermissionDeniedError(
        absl::StrCat("the ", std::string(SpiffeRoleName(id->role)),
                     " role may not use the console (operator or auditor)"));
  }
  return *id;
}

absl::StatusOr<std::string> MintConsoleToken(std::string_view cert_pem, std::string_view key_pem,
                                             absl::Duration lifetime, absl::Time now) {
  if (lifetime <= absl::ZeroDuration() || lifetime > kConsoleTokenMaxLifetime) {
    return absl::InvalidArgumentError(
        absl::StrCat("the token lifetime must be more than 0 and at most ",
                     absl::FormatDuration(kConsoleTokenMaxLifetime)));
  }
  ASSIGN_OR_RETURN(X509Ptr cert, CertificateFromPem(cert_pem));
  ASSIGN_OR_RETURN(std::vector<std::string> uris, UriSans(cert.get()));
  if (uris.size() != 1) {
    return absl::InvalidArgumentError("the client certificate must carry exactly one URI SAN");
  }
  absl::StatusOr<SpiffeId> id = ParseSpiffeId(uris[0]);
  if (!id.ok()) return id.status();
  if (id->role != SpiffeRole::kOperator && id->role != SpiffeRole::kAuditor) {
    return absl::InvalidArgumentError(absl::StrCat("the certificate's role is ",
                                                   std::string(SpiffeRoleName(id->role)),
                                                   "; the console admits operators and auditors"));
  }
  ASSIGN_OR_RETURN(EvpPkeyPtr key, PrivateKeyFromPem(key_pem));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("the private key does not match the client certificate");
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
    return absl::InvalidArgumentError("the client key is not an ECC P-256 key (ES256)");
  }
  unsigned char jti[16];
  if (RAND_bytes(jti, sizeof(jti)) != 1) return OpenSslError("RAND_bytes");
  const nlohmann::json header{
      {"alg", "ES256"}, {"typ", "JWT"}, {"x5c", {Base64Encode(CertificateDer(cert.get()))}}};
  const int64_t iat = absl::ToUnixSeconds(now);
  const nlohmann::json claims{
      {"aud", std::string(kConsoleTokenAudience)},
      {"sub", uris[0]},
      {"iat", iat},
      {"exp", iat + absl::ToInt64Seconds(lifetime)},
      {"jti", Base64UrlEncode(std::string_view(reinterpret_cast<char*>(jti), sizeof(jti)))}};
  const std::string signing_input =
      absl::StrCat(Base64UrlEncode(header.dump()), ".", Base64UrlEncode(claims.dump()));
  ASSIGN_OR_RETURN(std::string signature, SignEs256(signing_input, key.get()));
  return absl::StrCat(signing_input, ".", signature);
}

absl::StatusOr<ConsoleTokenVerifier> ConsoleTokenVerifier::Create(std::string_view ca_pem,
                                                                  std::string trust_domain) {
  ASSIGN_OR_RETURN(X509Ptr ca, CertificateFromPem(ca_pem));
  RETURN_IF_ERROR(ValidateTrustDomain(trust_domain));
  return ConsoleTokenVerifier(std::move(ca), std::move(trust_domain));
}

absl::StatusOr<ConsoleTokenClaims> ConsoleTokenVerifier::Verify(std::string_view token,
                                                                absl::Time now) const {
  if (token.size() > kConsoleTokenMaxBytes) {
    return absl::UnauthenticatedError("the token is too long");
  }
  absl::StatusOr<std::vector<std::string_view>> parts = SplitCompactJws(token);
  if (!parts.ok()) return absl::UnauthenticatedError(parts.status().message());
  ASSIGN_OR_RETURN(nlohmann::json header, DecodeJsonObject((*parts)[0], "header"));
  if (header.value("alg", nlohmann::json()) != "ES256") {
    return absl::UnauthenticatedError("the token's alg must be ES256");
  }
  if (header.contains("crit")) {
    return absl::UnauthenticatedError("the token has critical header extensions");
  }
  auto x5c = header.find("x5c");
  if (x5c == header.end() || !x5c->is_array() || x5c->size() != 1 || !(*x5c)[0].is_string()) {
    return absl::UnauthenticatedError(
        "the token's x5c must hold exactly the client certificate (the CA issues them directly)");
  }
  ASSIGN_OR_RETURN(std::string der, Base64Decode((*x5c)[0].get<std::string>()));
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (cert == nullptr || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    DrainOpenSslErrors();
    return absl::UnauthenticatedError("the token's x5c is not a DER certificate");
  }

  // The certificate chains to the client CA, for client authentication, at `now`.
  X509StorePtr store(X509_STORE_new());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (store == nullptr || ctx == nullptr || X509_STORE_add_cert(store.get(), ca_.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return OpenSslError("setting up certificate verification");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(now));
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) != 1) {
    DrainOpenSslErrors();
    return absl::UnauthenticatedError(
        absl::StrCat("the token's certificate does not verify: ",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()))));
  }
  std::string spiffe_id;
  ASSIGN_OR_RETURN(SpiffeId id, ConsoleReaderIdentity(cert.get(), trust_domain_, &spiffe_id));

  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    return absl::UnauthenticatedError("the token's certificate has no ECC P-256 key");
  }
  RETURN_IF_ERROR(
      VerifyEs256(token.substr(0, (*parts)[0].size() + 1 + (*parts)[1].size()), (*parts)[2], key));

  ASSIGN_OR_RETURN(nlohmann::json claims, DecodeJsonObject((*parts)[1], "claims"));
  if (claims.value("aud", nlohmann::json()) != kConsoleTokenAudience) {
    return absl::UnauthenticatedError("the token is not for the console (aud)");
  }
  if (claims.value("sub", nlohmann::json()) != spiffe_id) {
    return absl::UnauthenticatedError("the token's sub is not its certificate's SPIFFE ID");
  }
  auto jti = claims.find("jti");
  if (jti == claims.end() || !jti->is_string() || jti->get<std::string>().empty() ||
      jti->get<std::string>().size() > 64) {
    return absl::UnauthenticatedError("the token has no jti");
  }
  ASSIGN_OR_RETURN(absl::Time iat, TimeClaim(claims, "iat"));
  ASSIGN_OR_RETURN(absl::Time exp, TimeClaim(claims, "exp"));
  if (exp <= iat || exp - iat > kConsoleTokenMaxLifetime) {
    return absl::UnauthenticatedError(absl::StrCat("the token's lifetime must be at most ",
                                                   absl::FormatDuration(kConsoleTokenMaxLifetime)));
  }
  if (iat > now + kConsoleTokenClockSkew) {
    return absl::UnauthenticatedError("the token was issued in the future");
  }
  if (exp <= now) return absl::UnauthenticatedError("the token has expired");

  ASSIGN_OR_RETURN(Validity validity, CertificateValidity(cert.get()));
  ConsoleTokenClaims out;
  out.role = id.role;
  out.name = id.name;
  out.spiffe_id = std::move(spiffe_id);
  out.token_id = jti->get<std::string>();
  out.expires = exp;
  out.certificate_expires = validity.not_after;
  return out;
}

}  // namespace vigil
