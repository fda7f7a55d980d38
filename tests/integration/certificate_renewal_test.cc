// End to end: a node whose certificate has little lifetime left renews it on the Attest
// stream (same key) from a real verifier over mutual TLS, writes it to disk and keeps
// streaming; the node's credentials, made once and watching the files, present the renewed
// certificate on the next connection.

#include <grpcpp/grpcpp.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "common/pki.h"
#include "common/selector.h"
#include "node/agent/attest_client.h"
#include "node/agent/evidence_sealer.h"
#include "node/agent/report_builder.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "tests/testing/peer_certificate_service.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/registry_with_node.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/certificate_renewer.h"
#include "vigil/v1/attestation.grpc.pb.h"

namespace vigil {
namespace {

using testing::TestPki;

// Only keeps a broken node from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kProgressBound = absl::Seconds(30);

class CertificateRenewalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::move(*pki);
    auto tmp = ::vigil::testing::TestTempDir::Create("renewal");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    dir_ = tmp_.path();
    cert_path_ = dir_ + "/node.crt";
    key_path_ = dir_ + "/node.key";
    ca_path_ = dir_ + "/ca.crt";
    // 11 minutes of lifetime, 1 minute left: well under a third, so renewal is due now.
    auto short_lived = pki_->IssueWithValidity(
        TestPki::NodeUri(TestPki::kNodeId),
        Validity{absl::Now() - absl::Minutes(10), absl::Now() + absl::Minutes(1)});
    ASSERT_TRUE(short_lived.ok()) << short_lived.status();
    original_ = *short_lived;
    ASSERT_TRUE(WritePrivateFile(cert_path_, original_.cert_pem, false).ok());
    ASSERT_TRUE(WritePrivateFile(key_path_, original_.key_pem, false).ok());
    ASSERT_TRUE(WritePublicFile(ca_path_, pki_->ca_cert_pem(), false).ok());
  }

  void TearDown() override {
    StopClient();
    verifier_.reset();
  }

  void StartVerifier(bool with_renewer, verifier::CertificateRenewer custom = nullptr) {
    // The renewer renews only enrolled nodes: bind the test node (with a software AK).
    auto registry = testing::RegistryWithNode(TestPki::kNodeId);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = std::move(*registry);
    renewer_ = std::make_unique<verifier::CertificateRenewerImpl>(
        &pki_->ca(), registry_.get(), verifier::CertificateRenewerImpl::Options{absl::Hours(1)});
    testing::TestVerifierOptions options;
    options.attestation.report_interval = absl::Milliseconds(100);
    if (with_renewer) options.attestation.renewer = renewer_->AsHook();
    if (custom) options.attestation.renewer = std::move(custom);
    options.services.push_back(&peer_certificate_);
    auto v = testing::TestVerifier::Start(*pki_, options);
    ASSERT_TRUE(v.ok()) << v.status();
    verifier_ = std::move(*v);
  }

  void StartClient() {
    node::AttestClientOptions o;
    o.address = verifier_->address();
    // One credentials object for the client's whole life, as vigil-node has.
    auto creds =
        node::MakeNodeChannelCredentials(ca_path_, cert_path_, key_path_, absl::Seconds(1));
    ASSERT_TRUE(creds.ok()) << creds.status();
    credentials_ = *creds;
    o.credentials = [this]() -> absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> {
      return credentials_;
    };
    o.initial_backoff = absl::Milliseconds(50);
    o.max_backoff = absl::Milliseconds(200);
    o.renewal.cert_path = cert_path_;
    o.renewal.key_path = key_path_;
    o.renewal.ca_cert_path = ca_path_;
    o.renewal.retry_interval = absl::Hours(1);
    node::NodeInfo info;
    info.node_id = TestPki::kNodeId;
    builder_ = std::make_unique<node::ReportBuilder>(info, &matcher_, &snapshotter_, nullptr);
    client_ = std::make_unique<node::AttestClient>(o, builder_.get(), &sealer_);
    run_ = std::thread([this] { run_status_ = client_->Run(); });
  }

  void StopClient() {
    if (client_ == nullptr) return;
    client_->Shutdown();
    run_.join();
    EXPECT_TRUE(run_status_.ok()) << run_status_;
    client_.reset();
  }

  // Polls the client's stats until `done` holds or the bound passes.
  template <typename Pred>
  node::AttestClient::Stats AwaitStats(Pred done) {
    absl::Time give_up = absl::Now() + kProgressBound;
    node::AttestClient::Stats s = client_->stats();
    while (!done(s) && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(20));
      s = client_->stats();
    }
    return s;
  }

  std::unique_ptr<TestPki> pki_;
  ::vigil::testing::TestTempDir tmp_;
  std::string dir_, cert_path_, key_path_, ca_path_;
  CertAndKey original_;
  std::unique_ptr<verifier::NodeRegistry> registry_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  testing::PeerCertificateService peer_certificate_;
  std::unique_ptr<verifier::CertificateRenewerImpl> renewer_;
  std::unique_ptr<testing::TestVerifier> verifier_;

  node::ProcessMatcher matcher_{{*ParseSelector("pid=" + std::to_string(getpid()))}};
  node::FileHashCache hashes_;
  node::Snapshotter snapshotter_{node::SnapshotOptions{}, &hashes_};
  node::UnquotedSealer sealer_;
  std::unique_ptr<node::ReportBuilder> builder_;
  std::unique_ptr<node::AttestClient> client_;
  std::thread run_;
  absl::Status run_status_;
};

TEST_F(CertificateRenewalTest, NodeRenewsItsShortLivedCertificateAndKeepsStreaming) {
  StartVerifier(/*with_renewer=*/true);
  StartClient();
  auto s = AwaitStats([](const auto& st) { return st.renewals_installed >= 1; });
  ASSERT_EQ(s.renewals_installed, 1u);
  EXPECT_EQ(s.renewals_requested, 1u);
  EXPECT_EQ(s.renewals_failed, 0u);

  // The file on disk: a new certificate from the CA, same SPIFFE ID, same key, later
  // notAfter, still 0600.
  auto renewed_pem = ReadFileToString(cert_path_);
  ASSERT_TRUE(renewed_pem.ok());
  EXPECT_NE(*renewed_pem, original_.cert_pem);
  auto renewed = CertificateFromPem(*renewed_pem);
  auto original = CertificateFromPem(original_.cert_pem);
  ASSERT_TRUE(renewed.ok() && original.ok());
  auto renewed_leaf_pem = CertificateToPem(renewed->get());
  ASSERT_TRUE(renewed_leaf_pem.ok());
  EXPECT_TRUE(VerifyCertificate(*renewed_leaf_pem, pki_->ca_cert_pem()).ok());
  auto uris = UriSans(renewed->get());
  ASSERT_TRUE(uris.ok());
  EXPECT_EQ(*uris, std::vector<std::string>{TestPki::NodeUri(TestPki::kNodeId)});
  auto renewed_validity = CertificateValidity(renewed->get());
  auto original_validity = CertificateValidity(original->get());
  ASSERT_TRUE(renewed_validity.ok() && original_validity.ok());
  EXPECT_GT(renewed_validity->not_after, original_validity->not_after + absl::Minutes(30));
  auto key = PrivateKeyFromPem(original_.key_pem);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(X509_check_private_key(renewed->get(), key->get()), 1);
  struct stat st = {};
  ASSERT_EQ(stat(cert_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // The stream keeps working after the renewal, and the client does not ask again: the
  // renewed certificate has most of its lifetime left.
  uint64_t acks = s.acks_received;
  s = AwaitStats([acks](const auto& st) { return st.acks_received >= acks + 3; });
  EXPECT_GE(s.acks_received, acks + 3);
  EXPECT_EQ(s.renewals_requested, 1u);
  EXPECT_EQ(s.streams_opened, 1u);

  // The client's own credentials, never rebuilt, present the renewed certificate on a new
  // connection once they re-read the file, and the verifier accepts it.
  const absl::Time deadline = absl::Now() + kProgressBound;
  absl::StatusOr<std::string> presented;
  while (absl::Now() < deadline) {
    presented =
        testing::PresentedCertificate(testing::MakeChannel(verifier_->address(), credentials_));
    if (presented.ok() && *presented == *renewed_leaf_pem) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(presented.ok()) << presented.status();
  EXPECT_EQ(*presented, *renewed_leaf_pem);
  auto stub = v1::Attestation::NewStub(testing::MakeChannel(verifier_->address(), credentials_));
  grpc::ClientContext ctx;
  auto stream = stub->Attest(&ctx);
  v1::VerifierMessage m;
  ASSERT_TRUE(stream->Read(&m));
  EXPECT_TRUE(m.has_challenge());
  ctx.TryCancel();
  while (stream->Read(&m)) {
  }
  stream->Finish();
}

TEST_F(CertificateRenewalTest, RefusedRenewalLeavesTheCertificateAndStopsAsking) {
  // This verifier renews nothing: the request ends the stream UNIMPLEMENTED.
  StartVerifier(/*with_renewer=*/false);
  StartClient();
  auto s = AwaitStats([](const auto& st) { return st.renewals_failed >= 1; });
  ASSERT_EQ(s.renewals_failed, 1u);
  // The client reconnects and keeps reporting without asking again.
  s = AwaitStats([](const auto& st) { return st.streams_opened >= 2 && st.acks_received >= 3; });
  EXPECT_GE(s.acks_received, 3u);
  EXPECT_EQ(s.renewals_requested, 1u);
  EXPECT_EQ(s.renewals_installed, 0u);
  auto on_disk = ReadFileToString(cert_path_);
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(*on_disk, original_.cert_pem);
}

TEST_F(CertificateRenewalTest, NodeRefusesARenewedCertificateForAnotherIdentity) {
  // A misbehaving CA side answers with a CA-signed certificate, for the node's own key, that
  // names another node: the node must not install it.
  const std::string other_uri = TestPki::NodeUri(std::string(64, 'e'));
  StartVerifier(
      /*with_renewer=*/false,
      [this, other_uri](
          const verifier::PeerIdentity&, std::string_view,
          const v1::CertificateRenewalRequest& request) -> absl::StatusOr<v1::CertificateRenewal> {
        auto pem = SignCsr(pki_->ca(), request.csr_pem(), other_uri, absl::Hours(1));
        if (!pem.ok()) return pem.status();
        v1::CertificateRenewal renewal;
        renewal.set_certificate_chain_pem(*pem);
        return renewal;
      });
  StartClient();
  auto s = AwaitStats([](const auto& st) { return st.renewals_failed >= 1; });
  ASSERT_EQ(s.renewals_failed, 1u);
  EXPECT_EQ(s.renewals_installed, 0u);
  auto on_disk = ReadFileToString(cert_path_);
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(*on_disk, original_.cert_pem);
  // The stream goes on with the old certificate.
  uint64_t acks = s.acks_received;
  s = AwaitStats([acks](const auto& st) { return st.acks_received >= acks + 2; });
  EXPECT_GE(s.acks_received, acks + 2);
  EXPECT_EQ(s.renewals_requested, 1u);
}

}  // namespace
}  // namespace vigil
