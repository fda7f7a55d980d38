#include "common/ear_verify.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <array>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/status_macros.h"

namespace vigil {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kCoordinateBytes = 32;

int DecodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

struct ParamBldDeleter {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};

absl::StatusOr<std::string> StringMember(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("missing string member \"", name, "\""));
  }
  return it->get<std::string>();
}

absl::StatusOr<std::string> Coordinate(const nlohmann::json& jwk, const char* name) {
  ASSIGN_OR_RETURN(std::string text, StringMember(jwk, name));
  ASSIGN_OR_RETURN(std::string bytes, Base64UrlDecode(text));
  if (bytes.size() != kCoordinateBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWK member \"", name, "\" is not a 32-byte P-256 coordinate"));
  }
  return bytes;
}

absl::StatusOr<nlohmann::json> ParseJsonObject(std::string_view text, std::string_view what) {
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(what), " is not a JSON object"));
  }
  return value;
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  // Sized once and written in place: tokens are encoded on every verdict.
  std::string out((bytes.size() * 4 + 2) / 3, '\0');
  char* o = out.data();
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                 (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8) |
                 uint32_t{static_cast<uint8_t>(bytes[i + 2])};
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
    *o++ = kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    uint32_t v = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                 (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8);
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
  }
  return out;
}

absl::StatusOr<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return absl::InvalidArgumentError("base64url text has a bad length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = DecodeChar(c);
    if (v < 0)
      return absl::InvalidArgumentError("base64url text has a character outside the alphabet");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero, so every byte string has exactly one encoding.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError("base64url text has non-zero trailing bits");
  }
  return out;
}

absl::StatusOr<nlohmann::json> EcPublicJwk(EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    return absl::InvalidArgumentError("not an EC key");
  }
  char group[64] = {};
  size_t group_len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     &group_len) != 1 ||
      std::string_view(group, group_len) != "prime256v1") {
    return absl::InvalidArgumentError("not a P-256 key");
  }
  BIGNUM* raw_x = nullptr;
  BIGNUM* raw_y = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &raw_x) != 1) {
    return OpenSslError("EVP_PKEY_get_bn_param(x)");
  }
  BignumPtr x(raw_x);
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &raw_y) != 1) {
    return OpenSslError("EVP_PKEY_get_bn_param(y)");
  }
  BignumPtr y(raw_y);
  std::array<unsigned char, kCoordinateBytes> xb{}, yb{};
  if (BN_bn2binpad(x.get(), xb.data(), xb.size()) < 0 ||
      BN_bn2binpad(y.get(), yb.data(), yb.size()) < 0) {
    return OpenSslError("BN_bn2binpad");
  }
  return nlohmann::json{
      {"kty", "EC"},
      {"crv", "P-256"},
      {"x", Base64UrlEncode(std::string_view(reinterpret_cast<char*>(xb.data()), xb.size()))},
      {"y", Base64UrlEncode(std::string_view(reinterpret_cast<char*>(yb.data()), yb.size()))},
  };
}

absl::StatusOr<std::string> JwkThumbprint(const nlohmann::json& jwk) {
  if (!jwk.is_object()) return absl::InvalidArgumentError("JWK is not an object");
  ASSIGN_OR_RETURN(std::string crv, StringMember(jwk, "crv"));
  ASSIGN_OR_RETURN(std::string kty, StringMember(jwk, "kty"));
  ASSIGN_OR_RETURN(std::string x, StringMember(jwk, "x"));
  ASSIGN_OR_RETURN(std::string y, StringMember(jwk, "y"));
  // RFC 7638: the required members in lexicographic order, no whitespace. nlohmann::json
  // objects are ordered maps and dump() is compact, which is exactly that form.
  nlohmann::json canonical{{"crv", crv}, {"kty", kty}, {"x", x}, {"y", y}};
  Sha256Digest digest = Sha256(canonical.dump());
  return Base64UrlEncode(DigestBytes(digest));
}

absl::StatusOr<EvpPkeyPtr> EcPublicKeyFromJwk(const nlohmann::json& jwk) {
  if (!jwk.is_object()) return absl::InvalidArgumentError("JWK is not an object");
  ASSIGN_OR_RETURN(std::string kty, StringMember(jwk, "kty"));
  ASSIGN_OR_RETURN(std::string crv, StringMember(jwk, "crv"));
  if (kty != "EC" || crv != "P-256") {
    return absl::InvalidArgumentError("JWK is not an EC P-256 key");
  }
  if (jwk.contains("d")) return absl::InvalidArgumentError("JWK carries a private key");
  ASSIGN_OR_RETURN(std::string x, Coordinate(jwk, "x"));
  ASSIGN_OR_RETURN(std::string y, Coordinate(jwk, "y"));
  std::string point = absl::StrCat(std::string(1, '\x04'), x, y);

  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return OpenSslError("OSSL_PARAM_BLD");
  }
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return OpenSslError("EVP_PKEY_fromdata_init");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return OpenSslError("JWK point is not on P-256", absl::StatusCode::kInvalidArgument);
  }
  EvpPkeyPtr key(raw);
  // fromdata does not promise an on-curve check for every provider; ask explicitly.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    return OpenSslError("JWK point is not on P-256", absl::StatusCode::kInvalidArgument);
  }
  return key;
}

absl::StatusOr<std::string> EcdsaDerToRaw(std::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (sig == nullptr) return OpenSslError("d2i_ECDSA_SIG", absl::StatusCode::kInvalidArgument);
  std::string raw(2 * kCoordinateBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, kCoordinateBytes) < 0 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + kCoordinateBytes, kCoordinateBytes) < 0) {
    return OpenSslError("ECDSA signature component is too large");
  }
  return raw;
}

absl::StatusOr<std::string> EcdsaRawToDer(std::string_view raw) {
  if (raw.size() != 2 * kCoordinateBytes) {
    return absl::InvalidArgumentError("ES256 signature is not 64 bytes");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  BignumPtr r(BN_bin2bn(in, kCoordinateBytes, nullptr));
  BignumPtr s(BN_bin2bn(in + kCoordinateBytes, kCoordinateBytes, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || sig == nullptr ||
      ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return OpenSslError("ECDSA_SIG_set0");
  }
  // The signature owns r and s now.
  (void)r.release();
  (void)s.release();
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return OpenSslError("i2d_ECDSA_SIG");
  OpenSslStringPtr owned(reinterpret_cast<char*>(der));
  return std::string(owned.get(), static_cast<size_t>(len));
}

absl::StatusOr<std::vector<std::string_view>> SplitCompactJws(std::string_view token) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t dot = token.find('.', start);
    parts.push_back(token.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts.size() != 3) {
    return absl::InvalidArgumentError("token is not a compact JWS (header.payload.signature)");
  }
  return parts;
}

absl::StatusOr<std::string> SignEs256(std::string_view signing_input, EVP_PKEY* key) {
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  if (md == nullptr ||
      EVP_DigestSignInit_ex(md.get(), nullptr, "SHA256", nullptr, nullptr, key, nullptr) != 1) {
    return OpenSslError("EVP_DigestSignInit_ex");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(signing_input.data());
  size_t len = 0;
  if (EVP_DigestSign(md.get(), nullptr, &len, in, signing_input.size()) != 1) {
    return OpenSslError("EVP_DigestSign");
  }
  std::string der(len, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(der.data()), &len, in,
                     signing_input.size()) != 1) {
    return OpenSslError("EVP_DigestSign");
  }
  der.resize(len);
  ASSIGN_OR_RETURN(std::string raw, EcdsaDerToRaw(der));
  return Base64UrlEncode(raw);
}

absl::Status VerifyEs256(std::string_view signing_input, std::string_view signature_b64url,
                         EVP_PKEY* key) {
  absl::StatusOr<std::string> raw_sig = Base64UrlDecode(signature_b64url);
  if (!raw_sig.ok()) return absl::UnauthenticatedError("the ES256 signature is not base64url");
  auto der = EcdsaRawToDer(*raw_sig);
  if (!der.ok()) return absl::UnauthenticatedError(der.status().message());
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  if (md == nullptr ||
      EVP_DigestVerifyInit_ex(md.get(), nullptr, "SHA256", nullptr, nullptr, key, nullptr) != 1) {
    return OpenSslError("EVP_DigestVerifyInit_ex");
  }
  int ok = EVP_DigestVerify(
      md.get(), reinterpret_cast<const unsigned char*>(der->data()), der->size(),
      reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size());
  DrainOpenSslErrors();
  if (ok != 1) return absl::UnauthenticatedError("ES256 signature does not verify");
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> VerifyEarToken(std::string_view token, std::string_view jwks_json) {
  ASSIGN_OR_RETURN(std::vector<std::string_view> parts, SplitCompactJws(token));
  ASSIGN_OR_RETURN(std::string header_text, Base64UrlDecode(parts[0]));
  ASSIGN_OR_RETURN(nlohmann::json header, ParseJsonObject(header_text, "JWS header"));
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || *alg != "ES256") {
    return absl::UnauthenticatedError(
        absl::StrCat("JWS alg must be ES256, token says ",
                     alg == header.end() ? std::string("nothing") : alg->dump()));
  }
  if (header.contains("crit")) {
    return absl::UnauthenticatedError("JWS header has critical extensions this verifier lacks");
  }
  auto kid = header.find("kid");
  if (kid == header.end() || !kid->is_string()) {
    return absl::UnauthenticatedError("JWS header names no kid");
  }

  ASSIGN_OR_RETURN(nlohmann::json jwks, ParseJsonObject(jwks_json, "JWKS"));
  auto keys = jwks.find("keys");
  if (keys == jwks.end() || !keys->is_array()) {
    return absl::InvalidArgumentError("JWKS has no \"keys\" array");
  }
  const nlohmann::json* jwk = nullptr;
  for (const nlohmann::json& k : *keys) {
    if (k.is_object() && k.contains("kid") && k["kid"] == *kid) {
      jwk = &k;
      break;
    }
  }
  if (jwk == nullptr) {
    return absl::NotFoundError(absl::StrCat("no key in the JWKS has kid ", kid->dump(),
                                            " (rotated out, or another verifier)"));
  }
  if (jwk->contains("alg") && (*jwk)["alg"] != "ES256") {
    return absl::UnauthenticatedError("the JWKS key for this kid is not an ES256 key");
  }
  if (jwk->contains("use") && (*jwk)["use"] != "sig") {
    return absl::UnauthenticatedError("the JWKS key for this kid is not a signing key");
  }
  ASSIGN_OR_RETURN(EvpPkeyPtr key, EcPublicKeyFromJwk(*jwk));

  RETURN_IF_ERROR(
      VerifyEs256(token.substr(0, parts[0].size() + 1 + parts[1].size()), parts[2], key.get()));

  ASSIGN_OR_RETURN(std::string payload_text, Base64UrlDecode(parts[1]));
  ASSIGN_OR_RETURN(nlohmann::json claims, ParseJsonObject(payload_text, "JWT claims"));
  auto profile = claims.find("eat_profile");
  if (profile == claims.end() || !profile->is_string() ||
      profile->get<std::string>() != kEarProfile) {
    return absl::UnauthenticatedError("token is not an EAR (eat_profile is not the EAR profile)");
  }
  return claims;
}

}  // namespace vigil
