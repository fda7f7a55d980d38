// The swtpm fixture itself: a manufactured TPM with an EK certificate that chains to the
// fixture's CA bundle, reachable over its TCTI, and a Restart that keeps NV.
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/swtpm_fixture.h"

namespace vigil::testing {
namespace {

int Shell(const std::string& cmd) { return std::system(cmd.c_str()); }

std::string Tools(const SwtpmFixture& tpm) {
  return absl::StrCat("TPM2TOOLS_TCTI='", tpm.tools_tcti(), "' ");
}

TEST(SwtpmFixtureTest, EkCertificateInNvChainsToCaBundle) {
  auto tpm = SwtpmFixture::Start();
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  std::string der = (*tpm)->scratch_dir() + "/ek.der";
  ASSERT_EQ(
      Shell(absl::StrCat(Tools(**tpm), "tpm2_nvread 0x01c00002 -o ", der, " >/dev/null 2>&1")), 0);
  ASSERT_EQ(Shell(absl::StrCat("openssl x509 -inform DER -in ", der, " -out ", der, ".pem")), 0);
  EXPECT_EQ(Shell(absl::StrCat("openssl verify -CAfile ", (*tpm)->ek_ca_path(), " ", der,
                               ".pem >/dev/null")),
            0);
}

TEST(SwtpmFixtureTest, RestartKeepsNvAndResetsPcrs) {
  auto tpm = SwtpmFixture::Start();
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  std::string pcr = (*tpm)->scratch_dir() + "/pcr";
  ASSERT_EQ(Shell(absl::StrCat(Tools(**tpm), "tpm2_pcrextend 16:sha256=", std::string(64, 'a'),
                               " >/dev/null 2>&1")),
            0);
  ASSERT_EQ(Shell(absl::StrCat(Tools(**tpm), "tpm2_pcrread sha256:16 -o ", pcr,
                               ".before >/dev/null 2>&1")),
            0);
  ASSERT_TRUE((*tpm)->Restart().ok());
  ASSERT_EQ(Shell(absl::StrCat(Tools(**tpm), "tpm2_pcrread sha256:16 -o ", pcr,
                               ".after >/dev/null 2>&1")),
            0);
  EXPECT_NE(Shell(absl::StrCat("cmp -s ", pcr, ".before ", pcr, ".after")), 0);
  EXPECT_EQ(Shell(absl::StrCat(Tools(**tpm), "tpm2_nvreadpublic 0x01c00002 >/dev/null 2>&1")), 0);
}

TEST(SwtpmFixtureTest, TwoFixturesAreIndependent) {
  auto a = SwtpmFixture::Start();
  auto b = SwtpmFixture::Start({.fresh_tpm = true});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*a)->port(), (*b)->port());
  std::string ea = (*a)->scratch_dir() + "/ek.der", eb = (*b)->scratch_dir() + "/ek.der";
  ASSERT_EQ(Shell(absl::StrCat(Tools(**a), "tpm2_nvread 0x01c00002 -o ", ea, " >/dev/null 2>&1")),
            0);
  ASSERT_EQ(Shell(absl::StrCat(Tools(**b), "tpm2_nvread 0x01c00002 -o ", eb, " >/dev/null 2>&1")),
            0);
  // A freshly manufactured TPM has its own EK, hence its own certificate.
  EXPECT_NE(Shell(absl::StrCat("cmp -s ", ea, " ", eb)), 0);
}

}  // namespace
}  // namespace vigil::testing
