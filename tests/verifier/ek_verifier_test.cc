#include "verifier/ek_verifier.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include <memory>
#include <string>

#include "common/tpm/tpm_public.h"
#include "tests/testing/tpm2_tools_node.h"

namespace vigil::verifier {
namespace {

using ::vigil::testing::ToolsNode;
using ::vigil::testing::WriteBytes;

class EkVerifierTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto node = ToolsNode::Create(GetParam());
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto ek = tpm::ParseTpm2bPublic(node_->ek_public());
    ASSERT_TRUE(ek.ok()) << ek.status();
    ek_ = *ek;
    node_id_ = tpm::NodeIdForEk(ek_);
    auto registry = NodeRegistry::Open(":memory:");
    ASSERT_TRUE(registry.ok());
    registry_ = std::move(*registry);
  }

  std::unique_ptr<EkVerifier> Verifier(std::string bundle, bool tofu) {
    auto v = EkVerifier::Create({std::move(bundle), tofu}, registry_.get());
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? std::move(*v) : nullptr;
  }

  std::unique_ptr<ToolsNode> node_;
  tpm::TpmPublic ek_;
  std::string node_id_;
  std::unique_ptr<NodeRegistry> registry_;
};

TEST_P(EkVerifierTest, TrustsEkWhoseCertificateChainsToBundle) {
  auto v = Verifier(node_->tpm().ek_ca_path(), false);
  auto trust = v->Check(ek_, node_->ek_certificate(), node_id_);
  ASSERT_TRUE(trust.ok()) << trust.status();
  EXPECT_EQ(*trust, EkTrust::kCertificate);
}

INSTANTIATE_TEST_SUITE_P(Eks, EkVerifierTest, ::testing::Values("rsa", "ecc384"));

class EkTrustPathTest : public EkVerifierTest {
 protected:
  // Another public key of the same type and size: an RSA modulus with one bit flipped, or
  // the ECC point's negation (x, p - y), which is on the curve but is not the EK.
  static void ChangeKey(TPMT_PUBLIC& area) {
    if (area.type == TPM2_ALG_RSA) {
      area.unique.rsa.buffer[10] ^= 0x01;
      return;
    }
    ASSERT_EQ(area.type, TPM2_ALG_ECC);
    const int nid = area.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256   ? NID_X9_62_prime256v1
                    : area.parameters.eccDetail.curveID == TPM2_ECC_NIST_P384 ? NID_secp384r1
                                                                              : NID_undef;
    ASSERT_NE(nid, NID_undef) << "curve " << area.parameters.eccDetail.curveID;
    std::unique_ptr<EC_GROUP, decltype(&EC_GROUP_free)> group(EC_GROUP_new_by_curve_name(nid),
                                                              &EC_GROUP_free);
    std::unique_ptr<BIGNUM, decltype(&BN_free)> p(BN_new(), &BN_free), y(BN_new(), &BN_free);
    ASSERT_TRUE(group && p && y);
    ASSERT_EQ(EC_GROUP_get_curve(group.get(), p.get(), nullptr, nullptr, nullptr), 1);
    TPM2B_ECC_PARAMETER& ty = area.unique.ecc.y;
    ASSERT_NE(BN_bin2bn(ty.buffer, ty.size, y.get()), nullptr);
    ASSERT_EQ(BN_sub(y.get(), p.get(), y.get()), 1);
    ASSERT_EQ(BN_bn2binpad(y.get(), ty.buffer, ty.size), ty.size);
  }
};

TEST_P(EkTrustPathTest, RefusesCertificateFromAnotherCa) {
  const std::string bundle = node_->dir() + "/other-ca.pem";
  // A bundle holding only the EK certificate itself: not a CA, not the issuer.
  auto pem = node_->Run("openssl x509 -inform der -in " + node_->dir() + "/ek.crt -out " + bundle);
  ASSERT_TRUE(pem.ok()) << pem.status();
  auto v = Verifier(bundle, false);
  auto trust = v->Check(ek_, node_->ek_certificate(), node_id_);
  EXPECT_EQ(trust.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(EkTrustPathTest, RefusesKeyMismatchEvenWithValidChain) {
  // Same certificate, but an EK public area with a different (valid) key.
  tpm::TpmPublic other = ek_;
  ASSERT_NO_FATAL_FAILURE(ChangeKey(other.area));
  auto v = Verifier(node_->tpm().ek_ca_path(), false);
  absl::Status st = v->CheckCertificate(other, node_->ek_certificate());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(std::string(st.message()).find("different key"), std::string::npos) << st;
}

TEST_P(EkTrustPathTest, RefusesUnknownEkWithoutCertificate) {
  auto v = Verifier(node_->tpm().ek_ca_path(), false);
  auto trust = v->Check(ek_, "", node_id_);
  EXPECT_EQ(trust.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(trust.status().message()).find("not operator-approved"), std::string::npos);
}

TEST_P(EkTrustPathTest, RefusesGarbageCertificate) {
  auto v = Verifier(node_->tpm().ek_ca_path(), false);
  EXPECT_FALSE(v->CheckCertificate(ek_, "\x30\x03\x02\x01\x01").ok());
}

TEST_P(EkTrustPathTest, TrustsOperatorApprovedEkWithoutCertificate) {
  ASSERT_TRUE(registry_->Approve(node_id_).ok());
  auto v = Verifier("", false);
  auto trust = v->Check(ek_, "", node_id_);
  ASSERT_TRUE(trust.ok()) << trust.status();
  EXPECT_EQ(*trust, EkTrust::kOperatorApproved);
}

TEST_P(EkTrustPathTest, TrustsAnyEkOnlyWhenTofuConfigured) {
  auto v = Verifier("", true);
  auto trust = v->Check(ek_, "", node_id_);
  ASSERT_TRUE(trust.ok()) << trust.status();
  EXPECT_EQ(*trust, EkTrust::kTrustOnFirstUse);
  EXPECT_FALSE(Verifier("", false)->Check(ek_, "", node_id_).ok());
}

INSTANTIATE_TEST_SUITE_P(Eks, EkTrustPathTest, ::testing::Values("rsa", "ecc384"));

TEST(EkVerifierCreateTest, RefusesUnreadableBundle) {
  auto registry = NodeRegistry::Open(":memory:");
  ASSERT_TRUE(registry.ok());
  EXPECT_FALSE(EkVerifier::Create({"/nonexistent/bundle.pem", false}, registry->get()).ok());
}

}  // namespace
}  // namespace vigil::verifier
