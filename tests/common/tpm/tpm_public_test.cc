#include "common/tpm/tpm_public.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <string>

#include "common/digest.h"
#include "common/openssl_util.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/tpm2_tools_util.h"

namespace vigil::tpm {
namespace {

using ::vigil::testing::ReadBytes;
using ::vigil::testing::RunTpm2Tool;
using ::vigil::testing::SwtpmFixture;

EvpPkeyPtr PemKey(const std::string& pem) {
  BioPtr bio = MemBioOver(pem);
  return EvpPkeyPtr(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
}

// Keys made by tpm2-tools on a swtpm, checked against tpm2-tools' own name and PEM output.
class TpmPublicTest : public ::testing::TestWithParam<const char*> {
 protected:
  static void SetUpTestSuite() {
    auto tpm = SwtpmFixture::Start();
    ASSERT_TRUE(tpm.ok()) << tpm.status();
    tpm_ = tpm->release();
  }
  static void TearDownTestSuite() { delete tpm_; }
  static absl::StatusOr<std::string> Tool(const std::string& cmd) {
    return RunTpm2Tool(tpm_->tools_tcti(), cmd);
  }
  static SwtpmFixture* tpm_;
};
SwtpmFixture* TpmPublicTest::tpm_ = nullptr;

TEST_P(TpmPublicTest, EkAndAkDecodeWithToolsNameAndKey) {
  const std::string d = absl::StrCat(tpm_->scratch_dir(), "/", GetParam());
  ASSERT_TRUE(Tool("mkdir -p " + d).ok());
  auto out = Tool(absl::StrCat("tpm2_createek -G ", GetParam(), " -c ", d, "/ek.ctx -u ", d,
                               "/ek.pub && ", "tpm2_readpublic -c ", d, "/ek.ctx -f pem -o ", d,
                               "/ek.pem -n ", d, "/ek.name && ",
                               "tpm2_flushcontext -t && tpm2_createak -C ", d, "/ek.ctx -c ", d,
                               "/ak.ctx -G rsa -g sha256 -s rsassa -u ", d, "/ak.pub -n ", d,
                               "/ak.name && ", "tpm2_flushcontext -t && tpm2_readpublic -c ", d,
                               "/ak.ctx -f pem -o ", d, "/ak.pem && tpm2_flushcontext -t"));
  ASSERT_TRUE(out.ok()) << out.status();

  const std::string ek_bytes = ReadBytes(d + "/ek.pub");
  auto ek = ParseTpm2bPublic(ek_bytes);
  ASSERT_TRUE(ek.ok()) << ek.status();
  EXPECT_EQ(ek->marshalled, ek_bytes.substr(2));
  EXPECT_EQ(NodeIdForEk(*ek), HexEncode(Sha256(ek_bytes.substr(2))));
  auto ek_name = ComputeName(*ek);
  ASSERT_TRUE(ek_name.ok());
  EXPECT_EQ(*ek_name, ReadBytes(d + "/ek.name"));
  auto ek_key = PublicKeyOf(ek->area);
  ASSERT_TRUE(ek_key.ok()) << ek_key.status();
  EvpPkeyPtr tools_ek = PemKey(ReadBytes(d + "/ek.pem"));
  ASSERT_NE(tools_ek, nullptr);
  EXPECT_EQ(EVP_PKEY_eq(ek_key->get(), tools_ek.get()), 1);
  EXPECT_FALSE(CheckAttestationKeyAttributes(*ek).ok()) << "an EK decrypts; it is no AK";

  auto ak = ParseTpm2bPublic(ReadBytes(d + "/ak.pub"));
  ASSERT_TRUE(ak.ok()) << ak.status();
  auto ak_name = ComputeName(*ak);
  ASSERT_TRUE(ak_name.ok());
  EXPECT_EQ(*ak_name, ReadBytes(d + "/ak.name"));
  auto ak_key = PublicKeyOf(ak->area);
  ASSERT_TRUE(ak_key.ok()) << ak_key.status();
  EvpPkeyPtr tools_ak = PemKey(ReadBytes(d + "/ak.pem"));
  ASSERT_NE(tools_ak, nullptr);
  EXPECT_EQ(EVP_PKEY_eq(ak_key->get(), tools_ak.get()), 1);
  if (ak->area.nameAlg == TPM2_ALG_SHA256) {
    EXPECT_TRUE(CheckAttestationKeyAttributes(*ak).ok());
  }

  std::string prefixed = std::string("\x00\x22", 2) + *ak_name;
  if (ak_name->size() == 34) {
    EXPECT_EQ(*UnwrapTpm2bName(prefixed), *ak_name);
  }
}

INSTANTIATE_TEST_SUITE_P(Eks, TpmPublicTest, ::testing::Values("rsa", "ecc", "ecc384"));

TEST(TpmPublicParseTest, RefusesBadSizePrefixTruncationAndTrailingBytes) {
  EXPECT_FALSE(ParseTpm2bPublic("").ok());
  EXPECT_FALSE(ParseTpm2bPublic(std::string("\x00\x05\x00\x01", 4)).ok());
  EXPECT_FALSE(ParseTpm2bPublic(std::string("\x00\x02\x00\x01", 4)).ok());
  EXPECT_FALSE(ParseTpmtPublic(std::string(100, '\xff')).ok());
  EXPECT_FALSE(UnwrapTpm2bName(std::string("\x00\x03\x00", 3)).ok());
}

TEST(TpmPublicParseTest, RefusesEccPointOffTheCurve) {
  TPMT_PUBLIC area{};
  area.type = TPM2_ALG_ECC;
  area.nameAlg = TPM2_ALG_SHA256;
  area.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  area.unique.ecc.x.size = 32;
  area.unique.ecc.y.size = 32;
  area.unique.ecc.x.buffer[31] = 1;
  area.unique.ecc.y.buffer[31] = 1;
  EXPECT_FALSE(PublicKeyOf(area).ok());
}

}  // namespace
}  // namespace vigil::tpm
