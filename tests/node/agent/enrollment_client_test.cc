// Enrollment end to end: the node's TPM (swtpm) against the verifier's Enrollment service on
// a real gRPC server (port 0, server-authenticated TLS), with the EK certificate checked
// against swtpm's local CA.
#include "node/agent/enrollment_client.h"

#include <sys/stat.h>

#include "common/digest.h"
#include "common/pki.h"
#include "gtest/gtest.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/ek_verifier.h"
#include "verifier/enrollment_service.h"
#include "verifier/node_registry.h"

namespace vigil::node {
namespace {

using testing::SwtpmFixture;
using testing::TestPki;
using testing::TestVerifier;

class EnrollmentClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto swtpm = SwtpmFixture::Start();
    ASSERT_TRUE(swtpm.ok()) << swtpm.status();
    swtpm_ = std::move(*swtpm);
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::move(*pki);
    auto registry = verifier::NodeRegistry::Open(":memory:");
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = std::move(*registry);
    verifier::EkVerifier::Options ek_options;
    ek_options.ca_bundle_path = swtpm_->ek_ca_path();
    auto ek = verifier::EkVerifier::Create(ek_options, registry_.get());
    ASSERT_TRUE(ek.ok()) << ek.status();
    ek_verifier_ = std::move(*ek);
    enroller_ = std::make_unique<verifier::Enroller>(
        &pki_->ca(), registry_.get(), ek_verifier_.get(), verifier::Enroller::Options{});
    service_ = std::make_unique<verifier::EnrollmentService>(enroller_.get());
    testing::TestVerifierOptions options;
    options.enroll_listener = true;
    options.enroll_services = {service_.get()};
    auto v = TestVerifier::Start(*pki_, options);
    ASSERT_TRUE(v.ok()) << v.status();
    verifier_ = std::move(*v);

    config_.enroll_address = verifier_->enroll_address();
    config_.ca_cert_path = swtpm_->scratch_dir() + "/vigil-ca.crt";
    ASSERT_TRUE(WritePublicFile(config_.ca_cert_path, pki_->ca_cert_pem(), true).ok());
    config_.state_dir = swtpm_->scratch_dir() + "/state";
    config_.tcti = swtpm_->tcti();
  }

  std::unique_ptr<tpm::NodeTpm> OpenTpm() {
    tpm::NodeTpm::Options o;
    o.tcti = config_.tcti;
    o.state_dir = config_.state_dir;
    auto node = tpm::NodeTpm::Open(o);
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? std::move(*node) : nullptr;
  }

  std::unique_ptr<SwtpmFixture> swtpm_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<verifier::NodeRegistry> registry_;
  std::unique_ptr<verifier::EkVerifier> ek_verifier_;
  std::unique_ptr<verifier::Enroller> enroller_;
  std::unique_ptr<verifier::EnrollmentService> service_;
  std::unique_ptr<TestVerifier> verifier_;
  NodeConfig config_;
};

TEST_F(EnrollmentClientTest, EnrollsThenRestartDoesNotEnrollAgain) {
  std::string node_id;
  {
    auto tpm = OpenTpm();
    ASSERT_NE(tpm, nullptr);
    node_id = tpm->node_id();
    auto id = EnsureEnrolled(config_, *tpm);
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_TRUE(id->enrolled_now);
    EXPECT_EQ(id->node_id, node_id);
    EXPECT_EQ(id->cert_path, config_.state_dir + "/node.crt");
    struct stat st {};
    ASSERT_EQ(stat(id->key_path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto pem = ReadFileToString(id->cert_path);
    ASSERT_TRUE(pem.ok());
    auto cert = CertificateFromPem(*pem);
    ASSERT_TRUE(cert.ok());
    auto uris = UriSans(cert->get());
    ASSERT_TRUE(uris.ok());
    ASSERT_EQ(uris->size(), 1u);
    EXPECT_EQ((*uris)[0], TestPki::NodeUri(node_id));
    auto bound = registry_->Find(node_id);
    ASSERT_NE(bound, nullptr);
    // The node sent its SRK; the qualified name the verifier computed from it is the one the
    // TPM reports for the AK (and puts in every quote).
    EXPECT_EQ(bound->node().srk_public, tpm->srk_public());
    EXPECT_EQ(HexEncode(bound->node().ak_qualified_name), HexEncode(tpm->ak_qualified_name()));
  }
  // A restarted node with its saved AK and a valid certificate keeps them.
  auto tpm = OpenTpm();
  ASSERT_NE(tpm, nullptr);
  EXPECT_FALSE(tpm->ak_created());
  auto again = EnsureEnrolled(config_, *tpm);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->enrolled_now);
}

TEST_F(EnrollmentClientTest, WrongActivationAnswerGetsNoCertificate) {
  auto tpm = OpenTpm();
  ASSERT_NE(tpm, nullptr);
  auto key = MakeKeyAndCsr(tpm->node_id());
  ASSERT_TRUE(key.ok());
  auto channel = testing::MakeChannel(verifier_->enroll_address(),
                                      testing::ClientCredentials(pki_->ca_cert_pem(), {}));
  auto stub = v1::Enrollment::NewStub(channel);
  v1::BeginEnrollmentRequest begin;
  begin.set_ek_public(tpm->ek_public());
  begin.set_ek_certificate(tpm->ek_certificate_der());
  begin.set_ak_public(tpm->ak_public());
  begin.set_ak_name(tpm->ak_name());
  begin.set_csr_pem(key->csr_pem);
  v1::BeginEnrollmentResponse challenge;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->BeginEnrollment(&ctx, begin, &challenge).ok());
  }
  auto secret = tpm->ActivateCredential(challenge.credential_blob(), challenge.encrypted_secret());
  ASSERT_TRUE(secret.ok()) << secret.status();
  std::string wrong = *secret;
  wrong[0] ^= 1;
  v1::CompleteEnrollmentRequest complete;
  complete.set_enrollment_id(challenge.enrollment_id());
  complete.set_activated_secret(wrong);
  v1::CompleteEnrollmentResponse issued;
  grpc::ClientContext ctx;
  grpc::Status s = stub->CompleteEnrollment(&ctx, complete, &issued);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(issued.certificate_chain_pem().empty());
  EXPECT_EQ(registry_->Find(tpm->node_id()), nullptr);
}

TEST_F(EnrollmentClientTest, AnotherTpmCannotActivateThisNodesCredential) {
  auto tpm = OpenTpm();
  ASSERT_NE(tpm, nullptr);
  auto key = MakeKeyAndCsr(tpm->node_id());
  ASSERT_TRUE(key.ok());
  auto stub = v1::Enrollment::NewStub(testing::MakeChannel(
      verifier_->enroll_address(), testing::ClientCredentials(pki_->ca_cert_pem(), {})));
  v1::BeginEnrollmentRequest begin;
  begin.set_ek_public(tpm->ek_public());
  begin.set_ek_certificate(tpm->ek_certificate_der());
  begin.set_ak_public(tpm->ak_public());
  begin.set_ak_name(tpm->ak_name());
  begin.set_csr_pem(key->csr_pem);
  v1::BeginEnrollmentResponse challenge;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->BeginEnrollment(&ctx, begin, &challenge).ok());

  auto other_swtpm = SwtpmFixture::Start({.fresh_tpm = true});
  ASSERT_TRUE(other_swtpm.ok()) << other_swtpm.status();
  tpm::NodeTpm::Options o;
  o.tcti = (*other_swtpm)->tcti();
  o.state_dir = (*other_swtpm)->scratch_dir() + "/state";
  auto other = tpm::NodeTpm::Open(o);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE((*other)->node_id(), tpm->node_id());
  EXPECT_FALSE(
      (*other)->ActivateCredential(challenge.credential_blob(), challenge.encrypted_secret()).ok());
}

TEST_F(EnrollmentClientTest, UnreachableVerifierIsAnError) {
  auto tpm = OpenTpm();
  ASSERT_NE(tpm, nullptr);
  config_.enroll_address = "127.0.0.1:1";
  auto id = EnsureEnrolled(config_, *tpm, absl::Seconds(5));
  EXPECT_FALSE(id.ok());
}

}  // namespace
}  // namespace vigil::node
