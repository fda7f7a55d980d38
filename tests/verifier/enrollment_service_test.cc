#include "verifier/enrollment_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/digest.h"
#include "common/pki.h"
#include "common/tpm/tpm_public.h"
#include "tests/testing/tpm2_tools_node.h"

namespace vigil::verifier {
namespace {

using ::vigil::testing::ToolsNode;

constexpr char kTrustDomain[] = "vigil.test";

// The node side is tpm2-tools on a swtpm (an independent peer); the verifier side is the
// real Enroller with a real CA and the swtpm local CA as the EK CA bundle.
class EnrollmentTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto node = ToolsNode::Create(GetParam());
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto ca = CreateCa(kTrustDomain, absl::Hours(1));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::move(*ca);
    auto registry = NodeRegistry::Open(":memory:");
    ASSERT_TRUE(registry.ok());
    registry_ = std::move(*registry);
    MakeEnroller(node_->tpm().ek_ca_path(), false);
    auto csr = MakeKeyAndCsr("node");
    ASSERT_TRUE(csr.ok()) << csr.status();
    csr_ = *csr;
  }

  void MakeEnroller(const std::string& bundle, bool tofu, size_t max_pending = 4,
                    size_t max_pending_per_ek = 4) {
    auto ek = EkVerifier::Create({bundle, tofu}, registry_.get());
    ASSERT_TRUE(ek.ok()) << ek.status();
    ek_verifier_ = std::move(*ek);
    Enroller::Options options;
    options.node_cert_lifetime = absl::Hours(2);
    options.max_pending = max_pending;
    options.max_pending_per_ek = max_pending_per_ek;
    enroller_ = std::make_unique<Enroller>(&ca_, registry_.get(), ek_verifier_.get(), options);
  }

  v1::BeginEnrollmentRequest Request(bool with_cert = true) const {
    return RequestFor(*node_, with_cert);
  }

  v1::BeginEnrollmentRequest RequestFor(const ToolsNode& node, bool with_cert = true) const {
    return node.BeginRequest(csr_.csr_pem, with_cert);
  }

  absl::Status CompleteWithActivation(const v1::BeginEnrollmentResponse& begin) {
    auto complete = node_->Answer(begin);
    if (!complete.ok()) return complete.status();
    return enroller_->Complete(*complete).status();
  }

  std::string ExpectedNodeId() const { return HexEncode(Sha256(node_->ek_public().substr(2))); }

  std::unique_ptr<ToolsNode> node_;
  CaMaterial ca_;
  std::unique_ptr<NodeRegistry> registry_;
  std::unique_ptr<EkVerifier> ek_verifier_;
  std::unique_ptr<Enroller> enroller_;
  KeyAndCsr csr_;
};

TEST_P(EnrollmentTest, EnrollsNodeThatActivatesCredential) {
  auto begin = enroller_->Begin(Request());
  ASSERT_TRUE(begin.ok()) << begin.status();
  EXPECT_EQ(begin->node_id(), ExpectedNodeId());
  auto secret = node_->Activate(begin->credential_blob(), begin->encrypted_secret());
  ASSERT_TRUE(secret.ok()) << secret.status();

  v1::CompleteEnrollmentRequest complete;
  complete.set_enrollment_id(begin->enrollment_id());
  complete.set_activated_secret(*secret);
  auto done = enroller_->Complete(complete);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->node_id(), ExpectedNodeId());
  EXPECT_EQ(done->ca_certificate_pem(), ca_.cert_pem);
  ASSERT_TRUE(VerifyCertificate(done->certificate_chain_pem(), ca_.cert_pem).ok());
  auto cert = CertificateFromPem(done->certificate_chain_pem());
  ASSERT_TRUE(cert.ok());
  auto sans = UriSans(cert->get());
  ASSERT_TRUE(sans.ok());
  EXPECT_EQ(*sans, std::vector<std::string>{
                       absl::StrCat("spiffe://", kTrustDomain, "/vigil/node/", ExpectedNodeId())});
  EXPECT_LE(done->not_after_unix_nano(), absl::ToUnixNanos(absl::Now() + absl::Hours(2)));

  auto bound = registry_->Find(ExpectedNodeId());
  ASSERT_NE(bound, nullptr);
  EXPECT_EQ(bound->node().ak_public, node_->ak_public());
  EXPECT_EQ(bound->node().ek_public, node_->ek_public());
  // Without srk_public (a node from before it was sent) no qualified name is computed: the
  // first accepted quote's is pinned instead.
  EXPECT_TRUE(bound->node().srk_public.empty());
  EXPECT_TRUE(bound->node().ak_qualified_name.empty());
  EXPECT_EQ(enroller_->pending(), 0u);
}

// With srk_public the binding holds the SRK and the AK's qualified name computed from it:
// QN(AK) = H(QN(SRK) || Name(AK)), QN(SRK) = H(owner handle || Name(SRK)).
TEST_P(EnrollmentTest, StoresTheAkQualifiedNameComputedFromTheSrk) {
  auto made = node_->Run(absl::StrCat(
      "tpm2_createprimary -C o -G ecc -c ", node_->dir(), "/srk.ctx && tpm2_readpublic -c ",
      node_->dir(), "/srk.ctx -o ", node_->dir(), "/srk.pub && tpm2_flushcontext -t"));
  ASSERT_TRUE(made.ok()) << made.status();
  const std::string srk_public = testing::ReadBytes(node_->dir() + "/srk.pub");
  v1::BeginEnrollmentRequest r = Request();
  r.set_srk_public(srk_public);
  auto begin = enroller_->Begin(r);
  ASSERT_TRUE(begin.ok()) << begin.status();
  ASSERT_TRUE(CompleteWithActivation(*begin).ok());
  auto bound = registry_->Find(ExpectedNodeId());
  ASSERT_NE(bound, nullptr);
  EXPECT_EQ(bound->node().srk_public, srk_public);
  auto srk = tpm::ParseTpm2bPublic(srk_public);
  ASSERT_TRUE(srk.ok());
  auto ak = tpm::ParseTpm2bPublic(node_->ak_public());
  ASSERT_TRUE(ak.ok());
  auto srk_qualified_name = tpm::PrimaryQualifiedName(TPM2_RH_OWNER, *srk);
  ASSERT_TRUE(srk_qualified_name.ok());
  auto expected = tpm::ChildQualifiedName(*srk_qualified_name, *ak);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(bound->node().ak_qualified_name, *expected);
  absl::MutexLock lock(&bound->mu);
  EXPECT_EQ(bound->qualified_signer, *expected);
}

// An SRK that is not a storage key (here the AK itself: a signing key), or not a public area
// at all, is refused before anything is pending.
TEST_P(EnrollmentTest, RefusesSrkThatIsNotAStorageKey) {
  for (const std::string& srk : {node_->ak_public(), std::string("not a TPM2B_PUBLIC")}) {
    v1::BeginEnrollmentRequest r = Request();
    r.set_srk_public(srk);
    auto begin = enroller_->Begin(r);
    EXPECT_EQ(begin.status().code(), absl::StatusCode::kInvalidArgument) << begin.status();
    EXPECT_NE(begin.status().message().find("srk_public"), std::string::npos) << begin.status();
  }
  EXPECT_EQ(enroller_->pending(), 0u);
}

TEST_P(EnrollmentTest, RefusesWrongActivationAnswerAndVoidsEnrollment) {
  auto begin = enroller_->Begin(Request());
  ASSERT_TRUE(begin.ok()) << begin.status();
  auto secret = node_->Activate(begin->credential_blob(), begin->encrypted_secret());
  ASSERT_TRUE(secret.ok()) << secret.status();
  v1::CompleteEnrollmentRequest wrong;
  wrong.set_enrollment_id(begin->enrollment_id());
  std::string guess = *secret;
  guess[0] ^= 0x01;
  wrong.set_activated_secret(guess);
  EXPECT_EQ(enroller_->Complete(wrong).status().code(), absl::StatusCode::kPermissionDenied);
  // One attempt only: the right answer now finds nothing.
  v1::CompleteEnrollmentRequest right = wrong;
  right.set_activated_secret(*secret);
  EXPECT_EQ(enroller_->Complete(right).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry_->Find(ExpectedNodeId()), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Eks, EnrollmentTest, ::testing::Values("rsa", "ecc384"));

class EnrollmentRulesTest : public EnrollmentTest {};

TEST_P(EnrollmentRulesTest, RefusesUnknownEkUnlessApprovedOrTofu) {
  EXPECT_EQ(enroller_->Begin(Request(false)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(registry_->Approve(ExpectedNodeId()).ok());
  EXPECT_TRUE(enroller_->Begin(Request(false)).ok());
  ASSERT_TRUE(registry_->Revoke(ExpectedNodeId()).ok());
  EXPECT_FALSE(enroller_->Begin(Request(false)).ok());
  MakeEnroller("", true);
  EXPECT_TRUE(enroller_->Begin(Request(false)).ok());
}

TEST_P(EnrollmentRulesTest, RefusesEkAsAttestationKey) {
  v1::BeginEnrollmentRequest r = Request();
  r.set_ak_public(node_->ek_public());
  EXPECT_EQ(enroller_->Begin(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(EnrollmentRulesTest, RefusesAkWeakerThanRsa2048) {
  // A well-formed restricted signing key on the same TPM, with its real name: only its size
  // is wrong.
  const std::string d = node_->dir();
  auto out = node_->Run(
      absl::StrCat("tpm2_create -C ", d, "/srk.ctx -G rsa1024:rsassa-sha256:null -g sha256 -a ",
                   "'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' -u ", d,
                   "/ak1024.pub -r ", d, "/ak1024.priv && tpm2_flushcontext -t && tpm2_load -C ", d,
                   "/srk.ctx -u ", d, "/ak1024.pub -r ", d, "/ak1024.priv -c ", d,
                   "/ak1024.ctx -n ", d, "/ak1024.name && tpm2_flushcontext -t"));
  ASSERT_TRUE(out.ok()) << out.status();
  v1::BeginEnrollmentRequest r = Request();
  r.set_ak_public(testing::ReadBytes(d + "/ak1024.pub"));
  const std::string name = testing::ReadBytes(d + "/ak1024.name");
  r.set_ak_name(
      std::string{static_cast<char>(name.size() >> 8), static_cast<char>(name.size() & 0xff)} +
      name);
  auto begun = enroller_->Begin(r);
  EXPECT_EQ(begun.status().code(), absl::StatusCode::kInvalidArgument) << begun.status();
  EXPECT_NE(std::string(begun.status().message()).find("RSA-1024"), std::string::npos)
      << begun.status();
}

TEST_P(EnrollmentRulesTest, RefusesAkNameThatIsNotTheAks) {
  v1::BeginEnrollmentRequest r = Request();
  std::string name = r.ak_name();
  name.back() ^= 0x01;
  r.set_ak_name(name);
  EXPECT_EQ(enroller_->Begin(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(EnrollmentRulesTest, RefusesCsrWithBadSignature) {
  v1::BeginEnrollmentRequest r = Request();
  // Keep the CSR body but change a byte near the end: its signature.
  std::string pem = r.csr_pem();
  size_t end = pem.find("-----END");
  ASSERT_NE(end, std::string::npos);
  pem[end - 10] = pem[end - 10] == 'A' ? 'B' : 'A';
  r.set_csr_pem(pem);
  EXPECT_EQ(enroller_->Begin(r).status().code(), absl::StatusCode::kInvalidArgument);
  r.set_csr_pem("not a csr");
  EXPECT_EQ(enroller_->Begin(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(EnrollmentRulesTest, ABeginBeyondTheBoundPerEkEvictsThatEksOldest) {
  MakeEnroller(node_->tpm().ek_ca_path(), false, /*max_pending=*/8, /*max_pending_per_ek=*/2);
  std::vector<v1::BeginEnrollmentResponse> begun;
  for (int i = 0; i < 3; ++i) {
    auto begin = enroller_->Begin(Request());
    ASSERT_TRUE(begin.ok()) << begin.status();
    begun.push_back(*begin);
  }
  EXPECT_EQ(enroller_->pending(), 2u);
  EXPECT_EQ(enroller_->evicted_per_ek(), 1u);
  EXPECT_EQ(CompleteWithActivation(begun[0]).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(CompleteWithActivation(begun[2]).ok());
}

// An EK certificate is public data: whoever holds a copy of one can call Begin with it as often
// as they like. That fills at most that EK's share, never the table other EKs need.
TEST_P(EnrollmentRulesTest, OneEkBeginningOverAndOverLeavesRoomForOthers) {
  auto other = ToolsNode::Create("ecc384");  // the same TPM's other EK: another node id
  ASSERT_TRUE(other.ok()) << other.status();
  MakeEnroller(node_->tpm().ek_ca_path(), false, /*max_pending=*/3, /*max_pending_per_ek=*/2);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(enroller_->Begin(Request()).ok()) << i;
  EXPECT_EQ(enroller_->pending(), 2u);
  EXPECT_EQ(enroller_->evicted_per_ek(), 48u);
  auto theirs = enroller_->Begin(RequestFor(**other));
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  // The table is full now: the other EK's second Begin is refused, the flooding EK's next one
  // still only replaces its own oldest.
  EXPECT_EQ(enroller_->Begin(RequestFor(**other)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(enroller_->refused_full(), 1u);
  EXPECT_TRUE(enroller_->Begin(Request()).ok());
  EXPECT_EQ(enroller_->pending(), 3u);
}

TEST_P(EnrollmentRulesTest, BoundsPendingEnrollmentsInTotal) {
  auto other = ToolsNode::Create("ecc384");  // the same TPM's other EK: another node id
  ASSERT_TRUE(other.ok()) << other.status();
  MakeEnroller(node_->tpm().ek_ca_path(), false, /*max_pending=*/2, /*max_pending_per_ek=*/4);
  ASSERT_TRUE(enroller_->Begin(Request()).ok());
  ASSERT_TRUE(enroller_->Begin(Request()).ok());
  EXPECT_EQ(enroller_->Begin(RequestFor(**other)).status().code(),
            absl::StatusCode::kResourceExhausted);
}

// A full table refuses a Begin before its EK certificate chain is verified or a credential is
// made: a request whose certificate would fail the chain check gets RESOURCE_EXHAUSTED, not
// the chain error, and so does one with a CSR that does not verify.
TEST_P(EnrollmentRulesTest, AFullTableRefusesBeforeTheCostlyChecks) {
  auto other = ToolsNode::Create("ecc384");
  ASSERT_TRUE(other.ok()) << other.status();
  MakeEnroller(node_->tpm().ek_ca_path(), false, /*max_pending=*/1, /*max_pending_per_ek=*/4);
  ASSERT_TRUE(enroller_->Begin(Request()).ok());
  v1::BeginEnrollmentRequest theirs = RequestFor(**other);
  theirs.set_ek_certificate("not a certificate");
  theirs.set_csr_pem("not a csr");
  EXPECT_EQ(enroller_->Begin(theirs).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(enroller_->refused_full(), 1u);
  // With room, the same request meets the checks it skipped. (The pending table is the
  // registry's, so the first Begin is still in it.)
  MakeEnroller(node_->tpm().ek_ca_path(), false, /*max_pending=*/2, /*max_pending_per_ek=*/4);
  EXPECT_EQ(enroller_->Begin(theirs).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(EnrollmentRulesTest, ServesBeginAndCompleteOverGrpc) {
  EnrollmentService service(enroller_.get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = v1::Enrollment::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext c1;
  v1::BeginEnrollmentResponse begin;
  ASSERT_TRUE(stub->BeginEnrollment(&c1, Request(), &begin).ok());
  auto secret = node_->Activate(begin.credential_blob(), begin.encrypted_secret());
  ASSERT_TRUE(secret.ok()) << secret.status();
  grpc::ClientContext c2;
  v1::CompleteEnrollmentRequest complete;
  complete.set_enrollment_id(begin.enrollment_id());
  complete.set_activated_secret(*secret);
  v1::CompleteEnrollmentResponse done;
  grpc::Status st = stub->CompleteEnrollment(&c2, complete, &done);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(done.node_id(), ExpectedNodeId());
  grpc::ClientContext c3;
  v1::BeginEnrollmentRequest bad = Request();
  bad.set_ek_public("junk");
  EXPECT_EQ(stub->BeginEnrollment(&c3, bad, &begin).error_code(), grpc::INVALID_ARGUMENT);
  server->Shutdown();
}

INSTANTIATE_TEST_SUITE_P(Rsa, EnrollmentRulesTest, ::testing::Values("rsa"));

}  // namespace
}  // namespace vigil::verifier
