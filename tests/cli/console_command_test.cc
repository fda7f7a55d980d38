#include "cli/console_command.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/console_token.h"
#include "common/pki.h"
#include "tests/testing/pki_fixture.h"

namespace vigil::cli {
namespace {

class ConsoleCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<testing::TestPki>> pki = testing::TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
  }

  int Run(const ConsoleTokenOptions& options, std::string* out, std::string* err) {
    std::ostringstream o, e;
    const int code = RunConsoleToken(options, absl::Now(), o, e);
    *out = o.str();
    *err = e.str();
    return code;
  }

  std::unique_ptr<testing::TestPki> pki_;
};

TEST_F(ConsoleCommandTest, PrintsATokenTheConsoleAcceptsOrASignInLink) {
  ConsoleTokenOptions options;
  options.pki_dir = pki_->dir();
  options.client = testing::TestPki::kClientName;
  std::string out, err;
  ASSERT_EQ(Run(options, &out, &err), 0) << err;
  ASSERT_TRUE(absl::EndsWith(out, "\n"));
  absl::StatusOr<ConsoleTokenVerifier> verifier =
      ConsoleTokenVerifier::Create(pki_->ca_cert_pem(), testing::TestPki::kTrustDomain);
  ASSERT_TRUE(verifier.ok());
  absl::StatusOr<ConsoleTokenClaims> claims =
      verifier->Verify(out.substr(0, out.size() - 1), absl::Now());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->role, SpiffeRole::kOperator);
  EXPECT_LE(claims->expires, absl::Now() + absl::Minutes(10));

  // With --url: the token rides in the fragment, never in the query.
  options.url = "https://console.example:9443";
  ASSERT_EQ(Run(options, &out, &err), 0) << err;
  EXPECT_TRUE(absl::StartsWith(out, "https://console.example:9443/#token=ey")) << out;
  EXPECT_FALSE(absl::StrContains(out, "?"));
}

TEST_F(ConsoleCommandTest, RefusesMissingCredentialsOtherRolesLongLifetimesAndPlainHttp) {
  ASSERT_TRUE(pki_->IssueClient("k8s", "orchestrator").ok());
  struct Case {
    const char* what;
    ConsoleTokenOptions options;
    const char* says;
  };
  ConsoleTokenOptions base;
  base.pki_dir = pki_->dir();
  base.client = testing::TestPki::kClientName;
  ConsoleTokenOptions no_client = base;
  no_client.client.clear();
  ConsoleTokenOptions nothing;
  ConsoleTokenOptions orchestrator = base;
  orchestrator.client = "k8s";
  ConsoleTokenOptions too_long = base;
  too_long.lifetime = absl::Minutes(16);
  ConsoleTokenOptions plain_http = base;
  plain_http.url = "http://console.example:9443";
  ConsoleTokenOptions missing = base;
  missing.client = "nobody";
  const Case cases[] = {
      {"--pki-dir without --client", no_client, "--pki-dir needs --client"},
      {"no credentials", nothing, "give --pki-dir"},
      {"an orchestrator", orchestrator, "role is orchestrator"},
      {"16 minutes", too_long, "at most 15m"},
      {"plain http", plain_http, "https://"},
      {"no such client", missing, "client-nobody.crt"},
  };
  for (const Case& c : cases) {
    std::string out, err;
    EXPECT_EQ(Run(c.options, &out, &err), 2) << c.what;
    EXPECT_EQ(out, "") << c.what;
    EXPECT_TRUE(absl::StrContains(err, c.says)) << c.what << ": " << err;
  }
}

}  // namespace
}  // namespace vigil::cli
