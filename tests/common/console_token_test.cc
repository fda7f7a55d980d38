#include "common/console_token.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ear_verify.h"
#include "common/pki.h"
#include "nlohmann/json.hpp"
#include "tests/testing/pki_fixture.h"

namespace vigil {
namespace {

using testing::TestPki;

std::string Der64(const std::string& cert_pem) {
  absl::StatusOr<X509Ptr> cert = CertificateFromPem(cert_pem);
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert->get(), &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                  reinterpret_cast<const unsigned char*>(bytes.data()),
                  static_cast<int>(bytes.size()));
  return out;
}

// A token with any header and claims, signed with `key_pem`.
std::string SignToken(const nlohmann::json& header, const nlohmann::json& claims,
                      const std::string& key_pem) {
  const std::string input =
      absl::StrCat(Base64UrlEncode(header.dump()), ".", Base64UrlEncode(claims.dump()));
  absl::StatusOr<EvpPkeyPtr> key = PrivateKeyFromPem(key_pem);
  absl::StatusOr<std::string> signature = SignEs256(input, key->get());
  return absl::StrCat(input, ".", *signature);
}

class ConsoleTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    absl::StatusOr<CertAndKey> auditor = pki_->IssueClient("ann", "auditor");
    ASSERT_TRUE(auditor.ok()) << auditor.status();
    auditor_ = *auditor;
    absl::StatusOr<ConsoleTokenVerifier> verifier =
        ConsoleTokenVerifier::Create(pki_->ca_cert_pem(), TestPki::kTrustDomain);
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_.emplace(*std::move(verifier));
  }

  nlohmann::json Header(const CertAndKey& who) const {
    return {{"alg", "ES256"}, {"typ", "JWT"}, {"x5c", {Der64(who.cert_pem)}}};
  }
  nlohmann::json Claims(const std::string& sub) const {
    return {{"aud", "vigil-console"},
            {"sub", sub},
            {"iat", absl::ToUnixSeconds(now_)},
            {"exp", absl::ToUnixSeconds(now_ + absl::Minutes(10))},
            {"jti", "abc"}};
  }
  std::string AuditorId() const {
    return absl::StrCat("spiffe://", TestPki::kTrustDomain, "/vigil/auditor/ann");
  }

  // Whole seconds, as tokens carry them; the certificates are valid from five minutes ago.
  const absl::Time now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  std::unique_ptr<TestPki> pki_;
  CertAndKey auditor_;
  std::optional<ConsoleTokenVerifier> verifier_;
};

TEST_F(ConsoleTokenTest, AMintedTokenVerifiesWithTheCertificatesIdentity) {
  absl::StatusOr<std::string> token =
      MintConsoleToken(auditor_.cert_pem, auditor_.key_pem, absl::Minutes(10), now_);
  ASSERT_TRUE(token.ok()) << token.status();
  absl::StatusOr<ConsoleTokenClaims> claims = verifier_->Verify(*token, now_ + absl::Minutes(9));
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->role, SpiffeRole::kAuditor);
  EXPECT_EQ(claims->name, "ann");
  EXPECT_EQ(claims->spiffe_id, AuditorId());
  EXPECT_EQ(claims->expires, now_ + absl::Minutes(10));
  EXPECT_FALSE(claims->token_id.empty());
  EXPECT_GT(claims->certificate_expires, now_);

  // Each mint has its own id.
  absl::StatusOr<std::string> again =
      MintConsoleToken(auditor_.cert_pem, auditor_.key_pem, absl::Minutes(10), now_);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(verifier_->Verify(*again, now_)->token_id, claims->token_id);

  // The operator certificate the PKI was made with signs in as an operator.
  absl::StatusOr<std::string> op =
      MintConsoleToken(pki_->client().cert_pem, pki_->client().key_pem, absl::Minutes(1), now_);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(verifier_->Verify(*op, now_)->role, SpiffeRole::kOperator);
}

TEST_F(ConsoleTokenTest, MintRefusesLongLifetimesOtherRolesAndMismatchedKeys) {
  EXPECT_EQ(MintConsoleToken(auditor_.cert_pem, auditor_.key_pem, absl::Minutes(16), now_)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(
      MintConsoleToken(auditor_.cert_pem, auditor_.key_pem, absl::ZeroDuration(), now_).ok());
  absl::StatusOr<CertAndKey> orchestrator = pki_->IssueClient("k8s", "orchestrator");
  ASSERT_TRUE(orchestrator.ok());
  EXPECT_FALSE(
      MintConsoleToken(orchestrator->cert_pem, orchestrator->key_pem, absl::Minutes(5), now_).ok());
  EXPECT_FALSE(
      MintConsoleToken(auditor_.cert_pem, pki_->client().key_pem, absl::Minutes(5), now_).ok());
}

TEST_F(ConsoleTokenTest, RefusesExpiredAndFutureTokens) {
  absl::StatusOr<std::string> token =
      MintConsoleToken(auditor_.cert_pem, auditor_.key_pem, absl::Minutes(10), now_);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(verifier_->Verify(*token, now_ + absl::Minutes(10)).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(verifier_->Verify(*token, now_ - absl::Minutes(2)).status().code(),
            absl::StatusCode::kUnauthenticated);
  // Within the minute of skew: accepted.
  EXPECT_TRUE(verifier_->Verify(*token, now_ - absl::Seconds(30)).ok());
}

TEST_F(ConsoleTokenTest, RefusesCertificatesTheConsoleDoesNotTrustOrAdmit) {
  const std::string id = AuditorId();
  // Another CA, same trust domain.
  absl::StatusOr<CertAndKey> foreign = pki_->IssueForeign(id);
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(verifier_->Verify(SignToken(Header(*foreign), Claims(id), foreign->key_pem), now_)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  // Expired certificate.
  absl::StatusOr<CertAndKey> expired =
      pki_->IssueWithValidity(id, Validity{now_ - absl::Hours(48), now_ - absl::Hours(24)});
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(verifier_->Verify(SignToken(Header(*expired), Claims(id), expired->key_pem), now_)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  // Another trust domain on the console's side.
  absl::StatusOr<ConsoleTokenVerifier> other =
      ConsoleTokenVerifier::Create(pki_->ca_cert_pem(), "other.test");
  ASSERT_TRUE(other.ok());
  absl::StatusOr<std::string> token =
      MintConsoleToken(auditor_.cert_pem, auditor_.key_pem, absl::Minutes(10), now_);
  EXPECT_EQ(other->Verify(*token, now_).status().code(), absl::StatusCode::kUnauthenticated);
  // Orchestrators and nodes are not the console's readers.
  absl::StatusOr<CertAndKey> orchestrator = pki_->IssueClient("k8s", "orchestrator");
  ASSERT_TRUE(orchestrator.ok());
  const std::string orchestrator_id =
      absl::StrCat("spiffe://", TestPki::kTrustDomain, "/vigil/orchestrator/k8s");
  EXPECT_EQ(
      verifier_
          ->Verify(SignToken(Header(*orchestrator), Claims(orchestrator_id), orchestrator->key_pem),
                   now_)
          .status()
          .code(),
      absl::StatusCode::kPermissionDenied);
  const std::string node_id =
      absl::StrCat("spiffe://", TestPki::kTrustDomain, "/vigil/node/", TestPki::kNodeId);
  EXPECT_EQ(
      verifier_
          ->Verify(SignToken(Header(pki_->node()), Claims(node_id), pki_->node().key_pem), now_)
          .status()
          .code(),
      absl::StatusCode::kPermissionDenied);
}

TEST_F(ConsoleTokenTest, RefusesTokensWhoseClaimsOrSignatureAreWrong) {
  const std::string id = AuditorId();
  ASSERT_TRUE(
      verifier_->Verify(SignToken(Header(auditor_), Claims(id), auditor_.key_pem), now_).ok());
  struct Case {
    const char* what;
    std::string token;
  };
  nlohmann::json wrong_aud = Claims(id);
  wrong_aud["aud"] = "vigil-fleet";
  nlohmann::json array_aud = Claims(id);
  array_aud["aud"] = {"vigil-console"};
  nlohmann::json wrong_sub = Claims(id);
  wrong_sub["sub"] = absl::StrCat("spiffe://", TestPki::kTrustDomain, "/vigil/operator/ann");
  nlohmann::json too_long = Claims(id);
  too_long["exp"] = absl::ToUnixSeconds(now_ + absl::Minutes(16));
  nlohmann::json no_jti = Claims(id);
  no_jti.erase("jti");
  nlohmann::json string_exp = Claims(id);
  string_exp["exp"] = "tomorrow";
  nlohmann::json hs256 = Header(auditor_);
  hs256["alg"] = "HS256";
  nlohmann::json none = Header(auditor_);
  none["alg"] = "none";
  nlohmann::json crit = Header(auditor_);
  crit["crit"] = {"b64"};
  nlohmann::json two_certs = Header(auditor_);
  two_certs["x5c"].push_back(Der64(pki_->ca_cert_pem()));
  nlohmann::json no_x5c = Header(auditor_);
  no_x5c.erase("x5c");

  const std::string good = SignToken(Header(auditor_), Claims(id), auditor_.key_pem);
  const std::string other_claims = SignToken(Header(auditor_), wrong_sub, auditor_.key_pem);
  const std::string header_part = good.substr(0, good.find('.'));
  const std::string signature_part = good.substr(good.rfind('.') + 1);
  const std::string claims_part = other_claims.substr(
      other_claims.find('.') + 1, other_claims.rfind('.') - other_claims.find('.') - 1);

  const Case cases[] = {
      {"wrong audience", SignToken(Header(auditor_), wrong_aud, auditor_.key_pem)},
      {"audience as an array", SignToken(Header(auditor_), array_aud, auditor_.key_pem)},
      {"subject is not the certificate", SignToken(Header(auditor_), wrong_sub, auditor_.key_pem)},
      {"lifetime over 15 minutes", SignToken(Header(auditor_), too_long, auditor_.key_pem)},
      {"no jti", SignToken(Header(auditor_), no_jti, auditor_.key_pem)},
      {"exp not a number", SignToken(Header(auditor_), string_exp, auditor_.key_pem)},
      {"HS256", SignToken(hs256, Claims(id), auditor_.key_pem)},
      {"alg none", SignToken(none, Claims(id), auditor_.key_pem)},
      {"critical extension", SignToken(crit, Claims(id), auditor_.key_pem)},
      {"a chain instead of the certificate", SignToken(two_certs, Claims(id), auditor_.key_pem)},
      {"no x5c", SignToken(no_x5c, Claims(id), auditor_.key_pem)},
      {"signed by another client's key",
       SignToken(Header(auditor_), Claims(id), pki_->client().key_pem)},
      {"claims swapped under the signature",
       absl::StrCat(header_part, ".", claims_part, ".", signature_part)},
      {"no signature", good.substr(0, good.rfind('.') + 1)},
      {"two parts", good.substr(0, good.rfind('.'))},
      {"four parts", good + ".x"},
      {"empty", ""},
      {"not base64url", "!!.??.**"},
      {"oversized", std::string(kConsoleTokenMaxBytes + 1, 'a')},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ConsoleTokenClaims> claims = verifier_->Verify(c.token, now_);
    EXPECT_FALSE(claims.ok()) << c.what;
    EXPECT_EQ(claims.status().code(), absl::StatusCode::kUnauthenticated) << c.what;
    // A refusal never quotes the token.
    if (c.token.size() > 20) {
      EXPECT_EQ(std::string(claims.status().message()).find(c.token.substr(0, 20)),
                std::string::npos)
          << c.what;
    }
  }
}

}  // namespace
}  // namespace vigil
