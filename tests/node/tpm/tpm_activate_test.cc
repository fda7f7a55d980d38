// TPM2_ActivateCredential against credentials made by tpm2_makecredential (tpm2-tools, the
// independent peer) for the node's EK and AK, for RSA and ECC EKs.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/tpm/tpm_marshal.h"
#include "gtest/gtest.h"
#include "node/tpm/node_tpm.h"
#include "tests/testing/swtpm_fixture.h"

namespace vigil::node::tpm {
namespace {

using testing::SwtpmFixture;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Credential {
  std::string blob;    // marshalled TPM2B_ID_OBJECT
  std::string secret;  // marshalled TPM2B_ENCRYPTED_SECRET
};

// tpm2_makecredential's output file: 4-byte magic 0xBADCC0DE, 4-byte version, then the
// marshalled TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
bool ParseToolsCredential(const std::string& file, Credential* out) {
  if (file.size() < 8 || file.compare(0, 4, "\xBA\xDC\xC0\xDE") != 0) return false;
  size_t at = 8;
  auto take = [&](std::string* dst) {
    if (file.size() < at + 2) return false;
    size_t n = (uint8_t(file[at]) << 8) | uint8_t(file[at + 1]);
    if (file.size() < at + 2 + n) return false;
    *dst = file.substr(at, n + 2);
    at += n + 2;
    return true;
  };
  return take(&out->blob) && take(&out->secret) && at == file.size();
}

class TpmActivateTest : public ::testing::TestWithParam<EkType> {
 protected:
  void SetUp() override {
    auto swtpm = SwtpmFixture::Start();
    ASSERT_TRUE(swtpm.ok()) << swtpm.status();
    swtpm_ = std::move(*swtpm);
    dir_ = swtpm_->scratch_dir();
    NodeTpm::Options o;
    o.tcti = swtpm_->tcti();
    o.state_dir = dir_ + "/state";
    o.ek_preference = {GetParam()};
    auto node = NodeTpm::Open(o);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
  }

  // Runs tpm2_makecredential without a TPM for the node's EK and `name` (TPM2B_NAME
  // contents, given to the tool in hex).
  Credential MakeCredential(const std::string& secret, const std::string& name) {
    std::ofstream(dir_ + "/ek.pub", std::ios::binary) << node_->ek_public();
    std::ofstream(dir_ + "/secret", std::ios::binary) << secret;
    std::string cmd =
        absl::StrCat("tpm2_makecredential -T none -u ", dir_, "/ek.pub -s ", dir_, "/secret -n ",
                     HexEncode(name), " -o ", dir_, "/cred >", dir_, "/makecred.log 2>&1");
    EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadAll(dir_ + "/makecred.log");
    Credential c;
    std::string file = ReadAll(dir_ + "/cred");
    EXPECT_TRUE(ParseToolsCredential(file, &c)) << HexEncode(file.substr(0, 16));
    return c;
  }

  std::string AkName() {
    auto name = UnmarshalTPM2B_NAME(node_->ak_name());
    EXPECT_TRUE(name.ok());
    return std::string(reinterpret_cast<const char*>(name->name), name->size);
  }

  std::unique_ptr<SwtpmFixture> swtpm_;
  std::unique_ptr<NodeTpm> node_;
  std::string dir_;
};

TEST_P(TpmActivateTest, RecoversSecretMadeForThisEkAndAk) {
  EXPECT_EQ(node_->ek_type(), GetParam());
  Credential c = MakeCredential("thirty-two bytes of enrollment!!", AkName());
  auto secret = node_->ActivateCredential(c.blob, c.secret);
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, "thirty-two bytes of enrollment!!");
  // Activation can be repeated (each call recreates and flushes the EK).
  EXPECT_TRUE(node_->ActivateCredential(c.blob, c.secret).ok());
}

TEST_P(TpmActivateTest, RefusesCredentialMadeForAnotherObject) {
  std::string other = AkName();
  other.back() ^= 1;
  Credential c = MakeCredential("secret", other);
  auto secret = node_->ActivateCredential(c.blob, c.secret);
  EXPECT_FALSE(secret.ok());
}

TEST_P(TpmActivateTest, RefusesGarbageWithoutCrashing) {
  EXPECT_EQ(node_->ActivateCredential("\x00", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  Credential c = MakeCredential("secret", AkName());
  c.secret[c.secret.size() / 2] ^= 0x40;
  EXPECT_FALSE(node_->ActivateCredential(c.blob, c.secret).ok());
}

INSTANTIATE_TEST_SUITE_P(EkTypes, TpmActivateTest,
                         ::testing::Values(EkType::kRsa2048, EkType::kEccP256, EkType::kEccP384),
                         [](const auto& info) {
                           switch (info.param) {
                             case EkType::kRsa2048:
                               return std::string("Rsa2048");
                             case EkType::kEccP256:
                               return std::string("EccP256");
                             default:
                               return std::string("EccP384");
                           }
                         });

}  // namespace
}  // namespace vigil::node::tpm
