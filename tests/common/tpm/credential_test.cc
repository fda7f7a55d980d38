#include "common/tpm/credential.h"

#include <gtest/gtest.h>

#include <string>

#include "common/tpm/tpm_public.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/tpm2_tools_node.h"

namespace vigil::tpm {
namespace {

using ::vigil::testing::ToolsNode;

class CredentialActivationTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto node = ToolsNode::Create(GetParam());
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto ek = ParseTpm2bPublic(node_->ek_public());
    ASSERT_TRUE(ek.ok()) << ek.status();
    ek_ = *ek;
    ak_name_ = node_->ak_tpm2b_name().substr(2);
    ASSERT_EQ(ak_name_.size(), 34u);
  }

  absl::StatusOr<std::string> Activate(const Credential& cred) {
    return node_->Activate(cred.credential_blob, cred.encrypted_secret);
  }

  std::unique_ptr<ToolsNode> node_;
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

INSTANTIATE_TEST_SUITE_P(Eks, CredentialActivationTest, ::testing::Values("rsa", "ecc", "ecc384"));

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
}  // namespace vigil::tpm
