// Node TPM identity on a real (software) TPM: EK selection and certificates, node_id, the
// AK's template and its survival across node restarts.
#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"

#include "common/digest.h"
#include "common/tpm/tpm_marshal.h"
#include "common/tpm/tpm_public.h"
#include "gtest/gtest.h"
#include "node/tpm/node_tpm.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/tpm2_tools_util.h"

namespace vigil::node::tpm {
namespace {

using testing::SwtpmFixture;

class TpmKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tpm = SwtpmFixture::Start();
    ASSERT_TRUE(tpm.ok()) << tpm.status();
    swtpm_ = std::move(*tpm);
    state_dir_ = swtpm_->scratch_dir() + "/state";
  }
  NodeTpm::Options Options() const {
    NodeTpm::Options o;
    o.tcti = swtpm_->tcti();
    o.state_dir = state_dir_;
    return o;
  }
  std::unique_ptr<SwtpmFixture> swtpm_;
  std::string state_dir_;
};

TEST_F(TpmKeysTest, PrefersRsaEkWithCertificateAndDerivesNodeIdFromTpmtPublic) {
  auto node = NodeTpm::Open(Options());
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ((*node)->ek_type(), EkType::kRsa2048);
  EXPECT_FALSE((*node)->ek_certificate_der().empty());
  // node_id = hex SHA-256 of the TPM2B_PUBLIC without its 2-byte size prefix.
  const std::string& ek = (*node)->ek_public();
  ASSERT_GT(ek.size(), 2u);
  EXPECT_EQ(static_cast<size_t>((uint8_t(ek[0]) << 8) | uint8_t(ek[1])), ek.size() - 2);
  EXPECT_EQ((*node)->node_id(), HexEncode(Sha256(std::string_view(ek).substr(2))));
  auto pub = UnmarshalTPM2B_PUBLIC(ek);
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(CheckCertificateMatchesKey((*node)->ek_certificate_der(), pub->publicArea).ok());
}

TEST_F(TpmKeysTest, HighRangeEccP384EkMatchesItsCertificate) {
  NodeTpm::Options o = Options();
  o.ek_preference = {EkType::kEccP384};
  auto node = NodeTpm::Open(o);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ((*node)->ek_type(), EkType::kEccP384);
  EXPECT_FALSE((*node)->ek_certificate_der().empty());
  auto pub = UnmarshalTPM2B_PUBLIC((*node)->ek_public());
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(CheckCertificateMatchesKey((*node)->ek_certificate_der(), pub->publicArea).ok());
}

// swtpm provisions no low-range ECC certificate, so the test plays the manufacturer: it
// issues a certificate for the P-256 EK (template L-2) and stores it at NV 0x01C0000A.
TEST_F(TpmKeysTest, LowRangeEccP256EkReadsItsCertificateFromNv) {
  const std::string d = swtpm_->scratch_dir();
  auto made = testing::RunTpm2Tool(
      swtpm_->tools_tcti(),
      absl::StrCat("tpm2_createek -G ecc -c ", d, "/ek.ctx -u ", d, "/ek.pem -f pem && ",
                   "tpm2_flushcontext -t && ",
                   "openssl ecparam -name prime256v1 -genkey -noout -out ", d, "/ca.key && ",
                   "openssl x509 -new -subj /CN=vigil-test-ek -key ", d, "/ca.key -force_pubkey ",
                   d, "/ek.pem -days 1 -outform der -out ", d, "/ek.der && ",
                   "tpm2_nvdefine 0x01c0000a -C o -s $(stat -c %s ", d, "/ek.der) ",
                   "-a 'ownerwrite|ownerread|authread|authwrite|no_da' && ",
                   "tpm2_nvwrite 0x01c0000a -C o -i ", d, "/ek.der"));
  ASSERT_TRUE(made.ok()) << made.status();
  NodeTpm::Options o = Options();
  o.ek_preference = {EkType::kEccP256};
  auto node = NodeTpm::Open(o);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ((*node)->ek_type(), EkType::kEccP256);
  EXPECT_EQ((*node)->ek_certificate_der(), testing::ReadBytes(d + "/ek.der"));
  auto pub = UnmarshalTPM2B_PUBLIC((*node)->ek_public());
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(pub->publicArea.parameters.eccDetail.curveID, TPM2_ECC_NIST_P256);
  EXPECT_TRUE(CheckCertificateMatchesKey((*node)->ek_certificate_der(), pub->publicArea).ok());
}

TEST_F(TpmKeysTest, EkWithoutCertificateIsUsedWhenNoneHasOne) {
  NodeTpm::Options o = Options();
  o.ek_preference = {EkType::kEccP256};  // swtpm provisions no P-256 EK certificate
  auto node = NodeTpm::Open(o);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ((*node)->ek_type(), EkType::kEccP256);
  EXPECT_TRUE((*node)->ek_certificate_der().empty());
}

TEST_F(TpmKeysTest, CertificateOfAnotherKeyIsRefused) {
  auto rsa = NodeTpm::Open(Options());
  ASSERT_TRUE(rsa.ok()) << rsa.status();
  NodeTpm::Options o = Options();
  o.ek_preference = {EkType::kEccP384};
  auto ecc = NodeTpm::Open(o);
  ASSERT_TRUE(ecc.ok()) << ecc.status();
  auto ecc_pub = UnmarshalTPM2B_PUBLIC((*ecc)->ek_public());
  ASSERT_TRUE(ecc_pub.ok());
  EXPECT_FALSE(CheckCertificateMatchesKey((*rsa)->ek_certificate_der(), ecc_pub->publicArea).ok());
}

TEST_F(TpmKeysTest, AkIsARestrictedSigningKeySavedPrivately) {
  auto node = NodeTpm::Open(Options());
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_TRUE((*node)->ak_created());
  auto ak = UnmarshalTPM2B_PUBLIC((*node)->ak_public());
  ASSERT_TRUE(ak.ok());
  const TPMT_PUBLIC& p = ak->publicArea;
  EXPECT_EQ(p.type, TPM2_ALG_ECC);
  EXPECT_EQ(p.parameters.eccDetail.curveID, TPM2_ECC_NIST_P256);
  EXPECT_EQ(p.parameters.eccDetail.scheme.scheme, TPM2_ALG_ECDSA);
  EXPECT_EQ(p.objectAttributes, TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                    TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
                                    TPMA_OBJECT_SIGN_ENCRYPT);
  // The name the TPM reports is nameAlg || SHA-256(TPMT_PUBLIC).
  auto parsed = vigil::tpm::ParseTpm2bPublic((*node)->ak_public());
  ASSERT_TRUE(parsed.ok());
  auto name = vigil::tpm::ComputeName(*parsed);
  ASSERT_TRUE(name.ok());
  auto tpm_name = UnmarshalTPM2B_NAME((*node)->ak_name());
  ASSERT_TRUE(tpm_name.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(tpm_name->name), tpm_name->size), *name);
  for (const char* f : {"/ak.pub", "/ak.priv"}) {
    struct stat st {};
    ASSERT_EQ(stat((state_dir_ + f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
}

TEST_F(TpmKeysTest, AkSurvivesNodeRestart) {
  std::string first_ak, first_id;
  {
    auto node = NodeTpm::Open(Options());
    ASSERT_TRUE(node.ok()) << node.status();
    first_ak = (*node)->ak_public();
    first_id = (*node)->node_id();
  }
  auto again = NodeTpm::Open(Options());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE((*again)->ak_created());
  EXPECT_EQ((*again)->ak_public(), first_ak);
  EXPECT_EQ((*again)->node_id(), first_id);
  // The saved AK still signs: a quote works after the restart.
  EXPECT_TRUE((*again)->Quote({15}, "fresh").ok());
}

TEST_F(TpmKeysTest, AkSurvivesTpmPowerCycle) {
  std::string first_ak;
  {
    auto node = NodeTpm::Open(Options());
    ASSERT_TRUE(node.ok()) << node.status();
    first_ak = (*node)->ak_public();
  }
  ASSERT_TRUE(swtpm_->Restart().ok());
  auto again = NodeTpm::Open(Options());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE((*again)->ak_created());
  EXPECT_EQ((*again)->ak_public(), first_ak);
}

TEST_F(TpmKeysTest, RsaAkByOption) {
  NodeTpm::Options o = Options();
  o.ak_algorithm = "rsa";
  auto node = NodeTpm::Open(o);
  ASSERT_TRUE(node.ok()) << node.status();
  auto ak = UnmarshalTPM2B_PUBLIC((*node)->ak_public());
  ASSERT_TRUE(ak.ok());
  EXPECT_EQ(ak->publicArea.type, TPM2_ALG_RSA);
  EXPECT_EQ(ak->publicArea.parameters.rsaDetail.scheme.scheme, TPM2_ALG_RSASSA);
  EXPECT_EQ(ak->publicArea.parameters.rsaDetail.keyBits, 2048);
}

// What the verifier computes from the SRK public area sent at enrollment is exactly what the
// TPM reports as the AK's qualified name (TPM2_ReadPublic), i.e. what its quotes carry as
// qualifiedSigner: for an ECC and an RSA AK, and again after the node restarts.
TEST_F(TpmKeysTest, AkQualifiedNameIsComputedFromTheSrkPublicArea) {
  for (const char* algorithm : {"ecc", "rsa"}) {
    SCOPED_TRACE(algorithm);
    NodeTpm::Options o = Options();
    o.ak_algorithm = algorithm;
    o.state_dir = absl::StrCat(state_dir_, "-", algorithm);
    for (int start = 0; start < 2; ++start) {
      auto node = NodeTpm::Open(o);
      ASSERT_TRUE(node.ok()) << node.status();
      auto srk = vigil::tpm::ParseTpm2bPublic((*node)->srk_public());
      ASSERT_TRUE(srk.ok()) << srk.status();
      EXPECT_TRUE(vigil::tpm::CheckStorageParentAttributes(*srk).ok());
      auto ak = vigil::tpm::ParseTpm2bPublic((*node)->ak_public());
      ASSERT_TRUE(ak.ok()) << ak.status();
      auto srk_qualified_name = vigil::tpm::PrimaryQualifiedName(TPM2_RH_OWNER, *srk);
      ASSERT_TRUE(srk_qualified_name.ok()) << srk_qualified_name.status();
      auto computed = vigil::tpm::ChildQualifiedName(*srk_qualified_name, *ak);
      ASSERT_TRUE(computed.ok()) << computed.status();
      EXPECT_EQ(HexEncode(*computed), HexEncode((*node)->ak_qualified_name()));
      // Not the name: the qualified name also covers the parent and the hierarchy.
      auto name = vigil::tpm::ComputeName(*ak);
      ASSERT_TRUE(name.ok());
      EXPECT_NE(*computed, *name);
      // Under another hierarchy the same SRK would give another qualified name.
      auto endorsement = vigil::tpm::PrimaryQualifiedName(TPM2_RH_ENDORSEMENT, *srk);
      ASSERT_TRUE(endorsement.ok());
      EXPECT_NE(*vigil::tpm::ChildQualifiedName(*endorsement, *ak), *computed);
    }
  }
}

TEST_F(TpmKeysTest, UnknownAkAlgorithmAndUnreachableTpmAreErrors) {
  NodeTpm::Options o = Options();
  o.ak_algorithm = "dsa";
  EXPECT_EQ(NodeTpm::Open(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options();
  o.tcti = "swtpm:host=127.0.0.1,port=1";
  absl::Status st = NodeTpm::Open(o).status();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("0x"), absl::string_view::npos) << st;
}

}  // namespace
}  // namespace vigil::node::tpm
