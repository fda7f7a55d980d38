#include "common/ear_verify.h"

#include <gtest/gtest.h>

#include <openssl/hmac.h>

#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/pki.h"
#include "tests/verifier/results/ear_test_util.h"
#include "verifier/results/ear_signer.h"

namespace vigil {
namespace {

// Token parts, to tamper with.
struct Parts {
  std::string header, payload, signature;
  std::string Join() const { return absl::StrCat(header, ".", payload, ".", signature); }
};

Parts Split(const std::string& token) {
  std::vector<std::string> p = absl::StrSplit(token, '.');
  EXPECT_EQ(p.size(), 3u);
  return Parts{p[0], p[1], p[2]};
}

std::string Reencode(const std::string& b64, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = nlohmann::json::parse(*Base64UrlDecode(b64));
  edit(j);
  return Base64UrlEncode(j.dump());
}

class EarVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    verifier::EarSignerConfig config;
    config.key_dir = dir_.path() + "/keys";
    config.verifier_id.build = "test";
    auto signer = verifier::EarSigner::Open(config);
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = *std::move(signer);
    claims_ = {{"eat_profile", std::string(kEarProfile)},
               {"iat", 1700000000},
               {"submods", {{"vigil-node", {{"ear.status", "affirming"}}}}}};
    auto token = signer_->Sign(claims_);
    ASSERT_TRUE(token.ok()) << token.status();
    token_ = *token;
    jwks_ = signer_->Jwks().value();
  }

  testing::ScopedTempDir dir_{"ear-verify"};
  std::unique_ptr<verifier::EarSigner> signer_;
  nlohmann::json claims_;
  std::string token_;
  std::string jwks_;
};

TEST(Base64UrlTest, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 70; ++i) {
    auto decoded = Base64UrlDecode(Base64UrlEncode(bytes));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, bytes);
    bytes.push_back(static_cast<char>(i * 37 + 250));
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
}

TEST(Base64UrlTest, RefusesPaddingAndForeignCharacters) {
  EXPECT_FALSE(Base64UrlDecode("QQ==").ok());
  EXPECT_FALSE(Base64UrlDecode("a+b/").ok());
  EXPECT_FALSE(Base64UrlDecode("QQ Q").ok());
  EXPECT_FALSE(Base64UrlDecode("Q").ok());
  // "QR" has non-zero trailing bits: not the canonical encoding of "A".
  EXPECT_FALSE(Base64UrlDecode("QR").ok());
}

TEST(JwkTest, RoundTripsAP256KeyAndThumbprintIsStable) {
  auto key = GenerateKey();
  ASSERT_TRUE(key.ok());
  auto jwk = EcPublicJwk(key->get());
  ASSERT_TRUE(jwk.ok()) << jwk.status();
  EXPECT_EQ((*jwk)["kty"], "EC");
  EXPECT_EQ((*jwk)["crv"], "P-256");
  auto back = EcPublicKeyFromJwk(*jwk);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(EVP_PKEY_eq(key->get(), back->get()), 1);

  auto thumb = JwkThumbprint(*jwk);
  ASSERT_TRUE(thumb.ok());
  // Members beyond the required ones do not change the thumbprint.
  nlohmann::json extended = *jwk;
  extended["kid"] = "anything";
  extended["use"] = "sig";
  EXPECT_EQ(*JwkThumbprint(extended), *thumb);
  EXPECT_EQ(thumb->size(), 43u);  // 32 bytes, base64url
}

TEST(JwkTest, RefusesOffCurvePointsAndOtherKeyTypes) {
  auto key = GenerateKey();
  ASSERT_TRUE(key.ok());
  nlohmann::json jwk = *EcPublicJwk(key->get());
  nlohmann::json off = jwk;
  std::string y = *Base64UrlDecode(jwk["y"].get<std::string>());
  y[31] = static_cast<char>(y[31] ^ 1);
  off["y"] = Base64UrlEncode(y);
  EXPECT_FALSE(EcPublicKeyFromJwk(off).ok());
  nlohmann::json rsa = jwk;
  rsa["kty"] = "RSA";
  EXPECT_FALSE(EcPublicKeyFromJwk(rsa).ok());
  nlohmann::json p384 = jwk;
  p384["crv"] = "P-384";
  EXPECT_FALSE(EcPublicKeyFromJwk(p384).ok());
  nlohmann::json short_x = jwk;
  short_x["x"] = Base64UrlEncode("short");
  EXPECT_FALSE(EcPublicKeyFromJwk(short_x).ok());
}

TEST_F(EarVerifyTest, AcceptsTheSignersTokenAndReturnsItsClaims) {
  auto claims = VerifyEarToken(token_, jwks_);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(*claims, claims_);
  Parts p = Split(token_);
  EXPECT_EQ(Base64UrlDecode(p.signature)->size(), 64u);
  nlohmann::json header = nlohmann::json::parse(*Base64UrlDecode(p.header));
  EXPECT_EQ(header["alg"], "ES256");
  EXPECT_EQ(header["kid"], signer_->current_kid());
}

TEST_F(EarVerifyTest, RefusesATamperedPayload) {
  Parts p = Split(token_);
  p.payload = Reencode(p.payload, [](nlohmann::json& j) {
    j["submods"]["vigil-node"]["ear.status"] = "contraindicated";
  });
  auto claims = VerifyEarToken(p.Join(), jwks_);
  EXPECT_EQ(claims.status().code(), absl::StatusCode::kUnauthenticated) << claims.status();
}

TEST_F(EarVerifyTest, RefusesATamperedSignature) {
  Parts p = Split(token_);
  std::string sig = *Base64UrlDecode(p.signature);
  sig[10] = static_cast<char>(sig[10] ^ 0x40);
  p.signature = Base64UrlEncode(sig);
  EXPECT_EQ(VerifyEarToken(p.Join(), jwks_).status().code(), absl::StatusCode::kUnauthenticated);
  // A DER signature (what OpenSSL makes) is not the JWS form.
  p = Split(token_);
  p.signature = Base64UrlEncode(*EcdsaRawToDer(*Base64UrlDecode(p.signature)));
  EXPECT_FALSE(VerifyEarToken(p.Join(), jwks_).ok());
}

TEST_F(EarVerifyTest, RefusesAnUnknownOrSwappedKid) {
  Parts p = Split(token_);
  p.header = Reencode(p.header, [](nlohmann::json& j) { j["kid"] = "not-a-published-kid"; });
  EXPECT_EQ(VerifyEarToken(p.Join(), jwks_).status().code(), absl::StatusCode::kNotFound);
  // Another key of the same JWKS shape, under the token's kid, does not verify it.
  ASSERT_TRUE(signer_->Rotate().ok());
  nlohmann::json jwks = nlohmann::json::parse(signer_->Jwks().value());
  ASSERT_EQ(jwks["keys"].size(), 2u);
  std::string old_kid = jwks["keys"][1]["kid"];
  jwks["keys"][0]["kid"] = old_kid;
  jwks["keys"].erase(1);
  EXPECT_EQ(VerifyEarToken(token_, jwks.dump()).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(EarVerifyTest, RefusesAlgNone) {
  Parts p = Split(token_);
  p.header = Reencode(p.header, [](nlohmann::json& j) { j["alg"] = "none"; });
  EXPECT_EQ(VerifyEarToken(p.Join(), jwks_).status().code(), absl::StatusCode::kUnauthenticated);
  p.signature.clear();
  EXPECT_EQ(VerifyEarToken(p.Join(), jwks_).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(EarVerifyTest, RefusesHs256KeyedWithThePublicKey) {
  // The classic algorithm confusion: an HMAC whose key is public material.
  Parts p = Split(token_);
  p.header = Reencode(p.header, [](nlohmann::json& j) { j["alg"] = "HS256"; });
  std::string input = absl::StrCat(p.header, ".", p.payload);
  std::string key = jwks_;
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  p.signature = Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), len));
  EXPECT_EQ(VerifyEarToken(p.Join(), jwks_).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(EarVerifyTest, RefusesAJwksKeyMarkedForAnotherAlgorithm) {
  nlohmann::json jwks = nlohmann::json::parse(jwks_);
  jwks["keys"][0]["alg"] = "ES384";
  EXPECT_EQ(VerifyEarToken(token_, jwks.dump()).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(EarVerifyTest, RefusesASignedTokenThatIsNotAnEar) {
  auto token = signer_->Sign({{"iat", 1}, {"sub", "something else"}});
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(VerifyEarToken(*token, jwks_).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(EarVerifyTest, MalformedInputIsAnErrorNotACrash) {
  for (const std::string& bad :
       {std::string(), std::string("."), std::string(".."), std::string("a.b.c"),
        std::string("a.b"), token_ + ".", std::string("eyJhbGciOiJFUzI1NiJ9..AAAA"),
        Base64UrlEncode("[1,2]") + "." + Split(token_).payload + "." + Split(token_).signature,
        std::string(1000, '.')}) {
    EXPECT_FALSE(VerifyEarToken(bad, jwks_).ok()) << bad;
  }
  for (const std::string& bad_jwks :
       {std::string(), std::string("{"), std::string("[]"), std::string("{\"keys\":{}}"),
        std::string("{\"keys\":[1,\"x\",null]}")}) {
    EXPECT_FALSE(VerifyEarToken(token_, bad_jwks).ok()) << bad_jwks;
  }
}

}  // namespace
}  // namespace vigil
