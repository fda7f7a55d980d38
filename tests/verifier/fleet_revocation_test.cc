// Revocation end to end: an operator revokes a node over the Fleet API (mutual TLS), the
// verifier's hook is called, and the node's enrollment (a tpm2-tools node on a swtpm whose
// EK certificate the verifier trusts) is refused until the operator approves it again.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/digest.h"
#include "common/pki.h"
#include "tests/testing/tpm2_tools_node.h"
#include "tests/verifier/fleet_test_fixture.h"
#include "verifier/ek_verifier.h"
#include "verifier/enrollment_service.h"

namespace vigil::verifier {
namespace {

class FleetRevocationTest : public FleetFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(FleetFixture::SetUp());
    auto node = ::vigil::testing::ToolsNode::Create("rsa");
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto ek = EkVerifier::Create({node_->tpm().ek_ca_path(), false}, registry_.get());
    ASSERT_TRUE(ek.ok()) << ek.status();
    ek_verifier_ = std::move(*ek);
    Enroller::Options options;
    // As vigil-verifier wires it: the store says who is revoked.
    options.is_revoked = [this](const std::string& node_id) {
      std::optional<NodeResultSummary> n = store_->FindNode(node_id);
      return n.has_value() && n->revoked;
    };
    enroller_ =
        std::make_unique<Enroller>(&pki_->ca(), registry_.get(), ek_verifier_.get(), options);
    auto csr = MakeKeyAndCsr("node");
    ASSERT_TRUE(csr.ok()) << csr.status();
    csr_ = *csr;
    node_id_ = HexEncode(Sha256(node_->ek_public().substr(2)));
  }

  void TearDown() override {
    enroller_.reset();
    FleetFixture::TearDown();
  }

  absl::StatusOr<v1::BeginEnrollmentResponse> Begin() {
    return enroller_->Begin(node_->BeginRequest(csr_.csr_pem));
  }

  absl::StatusOr<v1::CompleteEnrollmentResponse> Complete(
      const v1::BeginEnrollmentResponse& begun) {
    auto secret = node_->Activate(begun.credential_blob(), begun.encrypted_secret());
    if (!secret.ok()) return secret.status();
    v1::CompleteEnrollmentRequest complete;
    complete.set_enrollment_id(begun.enrollment_id());
    complete.set_activated_secret(*secret);
    return enroller_->Complete(complete);
  }

  grpc::Status Revoke(const std::string& reason) {
    grpc::ClientContext ctx;
    v1::RevokeNodeRequest request;
    request.set_node_id(node_id_);
    request.set_reason(reason);
    v1::RevokeNodeResponse response;
    return Stub("operator")->RevokeNode(&ctx, request, &response);
  }

  grpc::Status Approve() {
    grpc::ClientContext ctx;
    v1::ApproveNodeRequest request;
    request.set_node_id(node_id_);
    v1::ApproveNodeResponse response;
    return Stub("operator")->ApproveNode(&ctx, request, &response);
  }

  std::unique_ptr<::vigil::testing::ToolsNode> node_;
  std::unique_ptr<EkVerifier> ek_verifier_;
  std::unique_ptr<Enroller> enroller_;
  KeyAndCsr csr_;
  std::string node_id_;
};

TEST_F(FleetRevocationTest, RevokedNodeCannotEnrollUntilApprovedAgain) {
  // Enrolled by its EK certificate.
  auto begun = Begin();
  ASSERT_TRUE(begun.ok()) << begun.status();
  ASSERT_TRUE(Complete(*begun).ok());

  grpc::Status st = Revoke("TPM replaced");
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(RevokedCalls(), std::vector<std::string>{node_id_});
  std::optional<NodeResultSummary> summary = store_->FindNode(node_id_);
  ASSERT_TRUE(summary.has_value());
  EXPECT_TRUE(summary->revoked);
  EXPECT_EQ(summary->revoked_reason, "TPM replaced");
  EXPECT_EQ(summary->revoked_by, "operator/operator");

  // A valid EK certificate does not get a revoked node back in.
  auto refused = Begin();
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << refused.status();
  EXPECT_NE(refused.status().message().find("revoked"), std::string::npos);

  st = Approve();
  ASSERT_TRUE(st.ok()) << st.error_message();
  begun = Begin();
  ASSERT_TRUE(begun.ok()) << begun.status();
  auto done = Complete(*begun);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->node_id(), node_id_);

  grpc::ClientContext ctx;
  v1::GetNodeRequest request;
  request.set_node_id(node_id_);
  v1::GetNodeResponse node;
  st = Stub("auditor")->GetNode(&ctx, request, &node);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(node.node().enrolled());
  EXPECT_FALSE(node.node().revoked());
  EXPECT_EQ(node.ek_trust(), "approved");
  EXPECT_GT(node.enrolled_unix_nano(), 0);
}

TEST_F(FleetRevocationTest, RevocationBetweenBeginAndCompleteVoidsTheReenrollment) {
  auto first = Begin();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(Complete(*first).ok());
  const std::string first_enrolled = absl::FormatTime(registry_->Find(node_id_)->node().enrolled);

  auto begun = Begin();
  ASSERT_TRUE(begun.ok()) << begun.status();
  grpc::Status st = Revoke("suspected compromise");
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto done = Complete(*begun);
  EXPECT_EQ(done.status().code(), absl::StatusCode::kPermissionDenied) << done.status();
  // The binding is still the first one: the refused enrollment bound nothing.
  EXPECT_EQ(absl::FormatTime(registry_->Find(node_id_)->node().enrolled), first_enrolled);
}

TEST_F(FleetRevocationTest, UnknownNodeCannotBeRevoked) {
  grpc::Status st = Revoke("never seen");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_TRUE(RevokedCalls().empty());
  EXPECT_TRUE(Begin().ok());
}

}  // namespace
}  // namespace vigil::verifier
