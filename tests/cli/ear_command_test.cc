// `vigilctl ear verify TOKEN --verifier ADDRESS`: the JWKS comes from the verifier's GetJwks
// over mutual TLS (a fake Fleet service serving a real signer's JWKS), the token is checked
// against it; `--jwks FILE` still works and the two exclude each other.

#include "cli/ear_command.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/cli/fake_fleet.h"
#include "verifier/results/ear_signer.h"

namespace vigil::cli {
namespace {

class EarCommandTest : public testing::FakeFleetTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(FakeFleetTest::SetUp());
    verifier::EarSignerConfig config;
    config.key_dir = pki_->dir() + "/ear-keys";
    config.verifier_id.build = "ear-command-test";
    auto signer = verifier::EarSigner::Open(config);
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = std::move(*signer);
    v1::Verdict verdict;
    verdict.set_node_id(testing::NodeId('a'));
    verdict.set_status(v1::TRUST_AFFIRMING);
    verdict.set_appraised_unix_nano(absl::ToUnixNanos(absl::Now()));
    auto token = signer_->SignVerdict(verdict);
    ASSERT_TRUE(token.ok()) << token.status();
    token_ = *token;
    fleet_.jwks_json = signer_->Jwks().value();
  }

  std::unique_ptr<verifier::EarSigner> signer_;
  std::string token_;
};

TEST_F(EarCommandTest, VerifiesWithTheVerifiersJwks) {
  std::string out, err;
  ASSERT_EQ(RunVigilctl("ear verify " + token_ + ConnectionFlags(), &out, &err), 0) << err;
  EXPECT_NE(out.find("\"eat_profile\""), std::string::npos) << out;
  EXPECT_EQ(fleet_.CallCount("GetJwks"), 1);

  // The same call in-process, through RunEarVerify.
  EarVerifyOptions options;
  options.token = token_;
  options.from_verifier = true;
  options.connection = Connection();
  std::istringstream in;
  std::ostringstream out_stream, err_stream;
  EXPECT_EQ(RunEarVerify(options, in, out_stream, err_stream), 0) << err_stream.str();
}

TEST_F(EarCommandTest, TokenFromAnotherSignerIsInvalid) {
  // The verifier now publishes only a fresh key: the token's kid is not in its JWKS.
  verifier::EarSignerConfig config;
  config.key_dir = pki_->dir() + "/other-keys";
  auto other = verifier::EarSigner::Open(config);
  ASSERT_TRUE(other.ok()) << other.status();
  fleet_.jwks_json = (*other)->Jwks().value();
  std::string out, err;
  EXPECT_EQ(RunVigilctl("ear verify " + token_ + ConnectionFlags(), &out, &err), 1) << err;
  EXPECT_NE(err.find("NOT valid"), std::string::npos) << err;
  EXPECT_EQ(out, "");
}

TEST_F(EarCommandTest, VerifierThatCannotGiveKeysIsExit2) {
  fleet_.errors["GetJwks"] =
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this verifier signs no results");
  std::string out, err;
  EXPECT_EQ(RunVigilctl("ear verify " + token_ + ConnectionFlags(), &out, &err), 2) << err;
  EXPECT_NE(err.find("GetJwks: FAILED_PRECONDITION: this verifier signs no results"),
            std::string::npos)
      << err;
  // Bad connection flags are exit 2 as well.
  EXPECT_EQ(RunVigilctl("ear verify " + token_ + " --verifier " + verifier_->address() +
                            " --client operator",
                        &out, &err),
            2);
}

TEST_F(EarCommandTest, KeySourceIsOneOfJwksOrVerifier) {
  const std::string jwks_path = pki_->dir() + "/jwks.json";
  std::ofstream(jwks_path) << signer_->Jwks().value();
  std::string out, err;
  EXPECT_EQ(RunVigilctl("ear verify " + token_ + " --jwks " + jwks_path, &out, &err), 0) << err;
  EXPECT_EQ(RunVigilctl("ear verify " + token_, &out, &err), 2);
  EXPECT_NE(err.find("give --jwks FILE or --verifier ADDRESS"), std::string::npos) << err;
  EXPECT_EQ(
      RunVigilctl("ear verify " + token_ + " --jwks " + jwks_path + ConnectionFlags(), &out, &err),
      2);
  EXPECT_EQ(fleet_.CallCount("GetJwks"), 0);
}

}  // namespace
}  // namespace vigil::cli
