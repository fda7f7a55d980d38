#include "verifier/certificate_renewer.h"

#include <grpcpp/grpcpp.h>
#include <openssl/x509.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "common/pki.h"
#include "common/spiffe.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/registry_with_node.h"
#include "tests/testing/verifier_fixture.h"
#include "vigil/v1/attestation.grpc.pb.h"

namespace vigil::verifier {
namespace {

using testing::TestPki;

constexpr absl::Duration kLifetime = absl::Hours(2);

class CertificateRenewerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::move(*pki);
    auto registry = testing::RegistryWithNode(TestPki::kNodeId);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = std::move(*registry);
    renewer_ = std::make_unique<CertificateRenewerImpl>(&pki_->ca(), registry_.get(),
                                                        CertificateRenewerImpl::Options{kLifetime});
    node_.role = SpiffeRole::kNode;
    node_.name = TestPki::kNodeId;
    node_.spiffe_id = TestPki::NodeUri(TestPki::kNodeId);
  }

  // A CSR signed by the test node's own key, asking for subject CN `cn`.
  v1::CertificateRenewalRequest SameKeyRequest(const std::string& cn) {
    auto key = PrivateKeyFromPem(pki_->node().key_pem);
    EXPECT_TRUE(key.ok()) << key.status();
    auto csr = MakeCsrForKey(key->get(), cn);
    EXPECT_TRUE(csr.ok()) << csr.status();
    v1::CertificateRenewalRequest request;
    request.set_csr_pem(*csr);
    return request;
  }

  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<NodeRegistry> registry_;
  std::unique_ptr<CertificateRenewerImpl> renewer_;
  PeerIdentity node_;
};

TEST_F(CertificateRenewerTest, SignsTheSameKeyForThePeerIdentityOnly) {
  // The CSR asks for another node's name: the certificate must name the connected peer.
  const std::string other = std::string(64, 'f');
  absl::Time before = absl::Now();
  auto renewal = renewer_->Renew(node_, pki_->node().cert_pem, SameKeyRequest(other));
  ASSERT_TRUE(renewal.ok()) << renewal.status();

  auto leaf = CertificateFromPem(renewal->certificate_chain_pem());
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  auto leaf_pem = CertificateToPem(leaf->get());
  ASSERT_TRUE(leaf_pem.ok());
  EXPECT_TRUE(VerifyCertificate(*leaf_pem, pki_->ca_cert_pem()).ok());
  auto uris = UriSans(leaf->get());
  ASSERT_TRUE(uris.ok());
  EXPECT_EQ(*uris, std::vector<std::string>{TestPki::NodeUri(TestPki::kNodeId)});
  // Same key as the current certificate.
  auto key = PrivateKeyFromPem(pki_->node().key_pem);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(X509_check_private_key(leaf->get(), key->get()), 1);
  // The CA follows the leaf, and not_after is the certificate's, `kLifetime` from issuance.
  EXPECT_NE(renewal->certificate_chain_pem().find(pki_->ca_cert_pem()), std::string::npos);
  auto validity = CertificateValidity(leaf->get());
  ASSERT_TRUE(validity.ok());
  EXPECT_EQ(renewal->not_after_unix_nano(), absl::ToUnixNanos(validity->not_after));
  EXPECT_GE(validity->not_after, before + kLifetime - absl::Seconds(1));
  EXPECT_LE(validity->not_after, absl::Now() + kLifetime);
}

TEST_F(CertificateRenewerTest, RefusesACsrForAnotherKey) {
  auto fresh = MakeKeyAndCsr(TestPki::kNodeId);
  ASSERT_TRUE(fresh.ok());
  v1::CertificateRenewalRequest request;
  request.set_csr_pem(fresh->csr_pem);
  auto renewal = renewer_->Renew(node_, pki_->node().cert_pem, request);
  EXPECT_EQ(renewal.status().code(), absl::StatusCode::kInvalidArgument) << renewal.status();
}

TEST_F(CertificateRenewerTest, RefusesGarbageAndTamperedCsrs) {
  v1::CertificateRenewalRequest garbage;
  garbage.set_csr_pem(
      "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
  EXPECT_EQ(renewer_->Renew(node_, pki_->node().cert_pem, garbage).status().code(),
            absl::StatusCode::kInvalidArgument);
  garbage.set_csr_pem("");
  EXPECT_EQ(renewer_->Renew(node_, pki_->node().cert_pem, garbage).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A CSR whose signature no longer matches its content.
  v1::CertificateRenewalRequest tampered = SameKeyRequest(TestPki::kNodeId);
  std::string pem = tampered.csr_pem();
  size_t body = pem.find('\n') + 40;
  pem[body] = pem[body] == 'A' ? 'B' : 'A';
  tampered.set_csr_pem(pem);
  EXPECT_FALSE(renewer_->Renew(node_, pki_->node().cert_pem, tampered).ok());
}

TEST_F(CertificateRenewerTest, RefusesANodeTheRegistryDoesNotKnow) {
  auto empty = NodeRegistry::Open(":memory:");
  ASSERT_TRUE(empty.ok()) << empty.status();
  CertificateRenewerImpl renewer(&pki_->ca(), empty->get(),
                                 CertificateRenewerImpl::Options{kLifetime});
  // The certificate is valid and the CSR is for its key: only the registry says no.
  auto renewal = renewer.Renew(node_, pki_->node().cert_pem, SameKeyRequest(TestPki::kNodeId));
  EXPECT_EQ(renewal.status().code(), absl::StatusCode::kPermissionDenied) << renewal.status();
}

TEST_F(CertificateRenewerTest, RefusesANodeWhoseApprovalWasWithdrawn) {
  CertificateRenewerImpl renewer(&pki_->ca(), registry_.get(),
                                 CertificateRenewerImpl::Options{kLifetime, true});
  ASSERT_TRUE(registry_->Approve(TestPki::kNodeId).ok());
  EXPECT_TRUE(renewer.Renew(node_, pki_->node().cert_pem, SameKeyRequest(TestPki::kNodeId)).ok());
  ASSERT_TRUE(registry_->Revoke(TestPki::kNodeId).ok());
  auto renewal = renewer.Renew(node_, pki_->node().cert_pem, SameKeyRequest(TestPki::kNodeId));
  EXPECT_EQ(renewal.status().code(), absl::StatusCode::kPermissionDenied) << renewal.status();
}

TEST_F(CertificateRenewerTest, RefusesAClientIdentity) {
  PeerIdentity client;
  client.role = SpiffeRole::kClient;
  client.name = TestPki::kClientName;
  client.spiffe_id = TestPki::ClientUri(TestPki::kClientName);
  auto renewal =
      renewer_->Renew(client, pki_->client().cert_pem, SameKeyRequest(TestPki::kClientName));
  EXPECT_EQ(renewal.status().code(), absl::StatusCode::kPermissionDenied);
}

// Over a real mutual-TLS Attest stream: the service hands the renewer the certificate the
// node connected with; a refused request ends only that stream.
TEST_F(CertificateRenewerTest, RenewsOnTheAttestStreamAndARefusalEndsOnlyThatStream) {
  testing::TestVerifierOptions options;
  options.attestation.renewer = renewer_->AsHook();
  auto verifier = testing::TestVerifier::Start(*pki_, options);
  ASSERT_TRUE(verifier.ok()) << verifier.status();

  auto good_channel = (*verifier)->Channel(pki_->node());
  auto good_stub = v1::Attestation::NewStub(good_channel);
  grpc::ClientContext good_ctx;
  auto good = good_stub->Attest(&good_ctx);
  v1::VerifierMessage m;
  ASSERT_TRUE(good->Read(&m));
  ASSERT_TRUE(m.has_challenge());

  // A second node stream asks for a certificate for a key it does not hold.
  auto other_channel = (*verifier)->Channel(pki_->node());
  auto other_stub = v1::Attestation::NewStub(other_channel);
  grpc::ClientContext other_ctx;
  auto other = other_stub->Attest(&other_ctx);
  ASSERT_TRUE(other->Read(&m));
  auto fresh = MakeKeyAndCsr(TestPki::kNodeId);
  ASSERT_TRUE(fresh.ok());
  v1::NodeMessage bad;
  bad.mutable_renewal()->set_csr_pem(fresh->csr_pem);
  ASSERT_TRUE(other->Write(bad));
  while (other->Read(&m)) {
    EXPECT_FALSE(m.has_renewal());
  }
  EXPECT_EQ(other->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // The first stream still renews.
  v1::NodeMessage request;
  *request.mutable_renewal() = SameKeyRequest(TestPki::kNodeId);
  ASSERT_TRUE(good->Write(request));
  ASSERT_TRUE(good->Read(&m));
  ASSERT_TRUE(m.has_renewal()) << m.DebugString();
  auto leaf = CertificateFromPem(m.renewal().certificate_chain_pem());
  ASSERT_TRUE(leaf.ok());
  auto uris = UriSans(leaf->get());
  ASSERT_TRUE(uris.ok());
  EXPECT_EQ(*uris, std::vector<std::string>{TestPki::NodeUri(TestPki::kNodeId)});
  good->WritesDone();
  while (good->Read(&m)) {
  }
  EXPECT_TRUE(good->Finish().ok());
}

TEST_F(CertificateRenewerTest, WithoutARenewerTheStreamEndsUnimplemented) {
  auto verifier = testing::TestVerifier::Start(*pki_);
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  auto stub = v1::Attestation::NewStub((*verifier)->Channel(pki_->node()));
  grpc::ClientContext ctx;
  auto stream = stub->Attest(&ctx);
  v1::VerifierMessage m;
  ASSERT_TRUE(stream->Read(&m));
  v1::NodeMessage request;
  *request.mutable_renewal() = SameKeyRequest(TestPki::kNodeId);
  ASSERT_TRUE(stream->Write(request));
  while (stream->Read(&m)) {
    EXPECT_FALSE(m.has_renewal());
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace vigil::verifier
