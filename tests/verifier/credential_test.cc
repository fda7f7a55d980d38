#include "verifier/tpm/credential.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/testing/swtpm_fixture.h"
#include "tests/verifier/tpm2_tools_util.h"
#include "verifier/tpm/tpm_public.h"

namespace vigil::verifier::tpm {
namespace {

using ::vigil::testing::ReadBytes;
using ::vigil::testing::RunTpm2Tool;
using ::vigil::testing::SwtpmFixture;
using ::vigil::testing::WriteBytes;

// tpm2-tools' credential file: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
std::string ToolsCredentialFile(const Credential& c) {
  return std::string("\xba\xdc\xc0\xde\x00\x00\x00\x01", 8) + c.credential_blob +
         c.encrypted_secret;
}

struct EkCase {
  const char* tools_alg;  // tpm2_createek -G
  bool needs_policy;      // low-range EKs authorize use with PolicySecret(endorsement)
};

class CredentialActivationTest : public ::testing::TestWithParam<EkCase> {
 protected:
  void SetUp() override {
    auto tpm = SwtpmFixture::Start();
    ASSERT_TRUE(tpm.ok()) << tpm.status();
    tpm_ = std::move(*tpm);
    dir_ = tpm_->scratch_dir();
    ASSERT_TRUE(Tool(absl::StrCat("tpm2_createek -G ", GetParam().tools_alg, " -c ", dir_,
                                  "/ek.ctx -u ", dir_, "/ek.pub"))
                    .ok());
    auto ak = Tool(absl::StrCat("tpm2_createak -C ", dir_, "/ek.ctx -c ", dir_,
                                "/ak.ctx -G ecc -g sha256 -s ecdsa -u ", dir_, "/ak.pub -n ", dir_,
                                "/ak.name"));
    ASSERT_TRUE(ak.ok()) << ak.status();
    auto ek = ParseTpm2bPublic(ReadBytes(dir_ + "/ek.pub"));
    ASSERT_TRUE(ek.ok()) << ek.status();
    ek_ = *ek;
    ak_name_ = ReadBytes(dir_ + "/ak.name");
    ASSERT_GE(ak_name_.size(), 34u);
  }

  absl::StatusOr<std::string> Tool(const std::string& cmd) {
    return RunTpm2Tool(tpm_->tools_tcti(), cmd);
  }

  // Activates `cred` on the TPM with the AK and EK; returns the recovered secret.
  absl::StatusOr<std::string> Activate(const Credential& cred) {
    if (!WriteBytes(dir_ + "/cred", ToolsCredentialFile(cred))) {
      return absl::InternalError("cannot write the credential file");
    }
    std::string auth;
    if (GetParam().needs_policy) {
      auto s =
          Tool(absl::StrCat("tpm2_startauthsession --policy-session -S ", dir_,
                            "/session.ctx && tpm2_policysecret -S ", dir_, "/session.ctx -c e"));
      if (!s.ok()) return s.status();
      auth = absl::StrCat(" -P session:", dir_, "/session.ctx");
    }
    auto out = Tool(absl::StrCat("tpm2_activatecredential -c ", dir_, "/ak.ctx -C ", dir_,
                                 "/ek.ctx -i ", dir_, "/cred -o ", dir_, "/secret.out", auth));
    if (GetParam().needs_policy)
      (void)Tool(absl::StrCat("tpm2_flushcontext ", dir_, "/session.ctx"));
    if (!out.ok()) return out.status();
    return ReadBytes(dir_ + "/secret.out");
  }

  std::unique_ptr<SwtpmFixture> tpm_;
  std::string dir_;
  TpmPublic ek_;
  std::string ak_name_;
};

TEST_P(CredentialActivationTest, TpmActivatesSoftwareCredential) {
  const std::string secret = "vigil enrollment secret, 32 byte";
  ASSERT_EQ(secret.size(), 32u);
  auto cred = MakeCredential(ek_, ak_name_, secret);
  ASSERT_TRUE(cred.ok()) << cred.status();
  auto recovered = Activate(*cred);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(*recovered, secret);
  EXPECT_NE(*recovered, std::string("vigil enrollment secret, 32 byt!"));
}

TEST_P(CredentialActivationTest, TpmRefusesCredentialForAnotherObjectName) {
  std::string other_name = ak_name_;
  other_name.back() ^= 0x01;
  auto cred = MakeCredential(ek_, other_name, "0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(cred.ok()) << cred.status();
  EXPECT_FALSE(Activate(*cred).ok());
}

TEST_P(CredentialActivationTest, TpmRefusesTamperedBlob) {
  auto cred = MakeCredential(ek_, ak_name_, "0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(cred.ok()) << cred.status();
  cred->credential_blob.back() ^= 0x40;
  EXPECT_FALSE(Activate(*cred).ok());
}

INSTANTIATE_TEST_SUITE_P(Eks, CredentialActivationTest,
                         ::testing::Values(EkCase{"rsa", true}, EkCase{"ecc", true},
                                           EkCase{"ecc384", false}),
                         [](const auto& info) { return std::string(info.param.tools_alg); });

TEST(CredentialTest, RefusesOversizedSecret) {
  TpmPublic ek;
  ek.area.type = TPM2_ALG_RSA;
  ek.area.nameAlg = TPM2_ALG_SHA256;
  EXPECT_FALSE(MakeCredential(ek, std::string(34, 'n'), std::string(33, 's')).ok());
}

TEST(CredentialTest, KdfAProducesRequestedLengthAndDependsOnLabel) {
  auto a = KdfA(TPM2_ALG_SHA256, "key", "STORAGE", "ctx", "", 128);
  auto b = KdfA(TPM2_ALG_SHA256, "key", "INTEGRITY", "ctx", "", 128);
  auto c = KdfA(TPM2_ALG_SHA256, "key", "STORAGE", "ctx", "", 512);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->size(), 16u);
  EXPECT_EQ(c->size(), 64u);
  EXPECT_NE(*a, *b);
  // Counter mode with [L] in the input: a longer output is not an extension of a shorter one.
  EXPECT_NE(c->substr(0, 16), *a);
}

}  // namespace
}  // namespace vigil::verifier::tpm
