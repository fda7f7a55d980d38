// The Fleet API over a real mutual-TLS verifier on port 0: a node streams evidence through
// the Attest stream into the results store, and an operator's client certificate reads it
// back; node certificates are refused.

#include "verifier/fleet_service.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "tests/testing/pki_fixture.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/node_registry.h"
#include "verifier/results_store.h"
#include "vigil/v1/attestation.grpc.pb.h"
#include "vigil/v1/fleet.grpc.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

using testing::TestPki;
using testing::TestVerifier;

class FleetServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    auto tmp = ::vigil::testing::TestTempDir::Create("fleet");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    dir_ = tmp_.path();
    // The store and the registry share one database file, as in vigil-verifier.
    auto store = ResultsStore::Open(dir_ + "/vigil.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto registry = NodeRegistry::Open(dir_ + "/vigil.db");
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    fleet_ = std::make_unique<FleetService>(TestPki::kTrustDomain, store_.get(), registry_.get());
    testing::TestVerifierOptions options;
    options.sink = store_.get();
    options.services = {fleet_.get()};
    auto verifier = TestVerifier::Start(*pki_, options);
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
  }

  void TearDown() override {
    verifier_.reset();
    fleet_.reset();
    registry_.reset();
    store_.reset();
  }

  std::unique_ptr<v1::Fleet::Stub> OperatorStub() {
    return v1::Fleet::NewStub(verifier_->Channel(pki_->client()));
  }
  std::unique_ptr<v1::Fleet::Stub> NodeStub() {
    return v1::Fleet::NewStub(verifier_->Channel(pki_->node()));
  }

  // Waits (without a time limit of its own: ctest's timeout bounds it) until the store
  // sees the node's connection state become `connected`.
  void AwaitConnected(const std::string& node_id, bool connected) {
    for (;;) {
      std::optional<NodeResultSummary> s = store_->FindNode(node_id);
      if (s.has_value() && s->connected == connected) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::unique_ptr<TestPki> pki_;
  ::vigil::testing::TestTempDir tmp_;
  std::string dir_;
  std::unique_ptr<ResultsStore> store_;
  std::unique_ptr<NodeRegistry> registry_;
  std::unique_ptr<FleetService> fleet_;
  std::unique_ptr<TestVerifier> verifier_;
};

TEST_F(FleetServiceTest, ListsNodeThatStreamedEvidenceAndItsConnection) {
  auto attest = v1::Attestation::NewStub(verifier_->Channel(pki_->node()));
  grpc::ClientContext stream_ctx;
  auto stream = attest->Attest(&stream_ctx);
  v1::VerifierMessage challenge;
  ASSERT_TRUE(stream->Read(&challenge));
  ASSERT_TRUE(challenge.has_challenge());

  v1::RuntimeReport report;
  report.set_node_id(TestPki::kNodeId);
  report.set_hostname("fleet-test-host");
  report.set_sequence(1);
  v1::NodeMessage msg;
  msg.mutable_evidence()->set_nonce(challenge.challenge().nonce());
  msg.mutable_evidence()->set_payload(report.SerializeAsString());
  ASSERT_TRUE(stream->Write(msg));
  v1::VerifierMessage ack;
  ASSERT_TRUE(stream->Read(&ack));
  ASSERT_TRUE(ack.has_acknowledgement());
  AwaitConnected(TestPki::kNodeId, true);
  ASSERT_TRUE(store_->Flush().ok());  // the hostname is taken off the stream's path

  grpc::ClientContext ctx;
  v1::ListNodesResponse nodes;
  grpc::Status st = OperatorStub()->ListNodes(&ctx, v1::ListNodesRequest(), &nodes);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(nodes.nodes_size(), 1);
  const v1::NodeSummary& n = nodes.nodes(0);
  EXPECT_EQ(n.node_id(), TestPki::kNodeId);
  EXPECT_EQ(n.hostname(), "fleet-test-host");
  EXPECT_TRUE(n.connected());
  EXPECT_FALSE(n.enrolled());
  EXPECT_EQ(n.latest_verdict().status(), v1::TRUST_UNVERIFIED);
  EXPECT_GT(n.last_seen_unix_nano(), 0);

  grpc::ClientContext latest_ctx;
  v1::GetLatestEvidenceRequest request;
  request.set_node_id(TestPki::kNodeId);
  v1::GetLatestEvidenceResponse latest;
  st = OperatorStub()->GetLatestEvidence(&latest_ctx, request, &latest);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(latest.evidence().payload(), report.SerializeAsString());
  EXPECT_EQ(latest.evidence().nonce(), challenge.challenge().nonce());
  EXPECT_EQ(latest.verdict().status(), v1::TRUST_UNVERIFIED);
  EXPECT_TRUE(latest.ak_public().empty());  // never enrolled

  stream->WritesDone();
  stream_ctx.TryCancel();
  stream->Finish().IgnoreError();
  AwaitConnected(TestPki::kNodeId, false);
  grpc::ClientContext after_ctx;
  st = OperatorStub()->ListNodes(&after_ctx, v1::ListNodesRequest(), &nodes);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(nodes.nodes_size(), 1);
  EXPECT_FALSE(nodes.nodes(0).connected());
}

TEST_F(FleetServiceTest, NodeCertificateIsRefused) {
  auto stub = NodeStub();
  {
    grpc::ClientContext ctx;
    v1::ListNodesResponse response;
    EXPECT_EQ(stub->ListNodes(&ctx, v1::ListNodesRequest(), &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    v1::GetLatestEvidenceRequest request;
    request.set_node_id(TestPki::kNodeId);
    v1::GetLatestEvidenceResponse response;
    EXPECT_EQ(stub->GetLatestEvidence(&ctx, request, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    v1::ApproveNodeRequest request;
    request.set_node_id(std::string(64, 'a'));
    v1::ApproveNodeResponse response;
    EXPECT_EQ(stub->ApproveNode(&ctx, request, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_FALSE(registry_->IsApproved(std::string(64, 'a')));
}

// Each call names the client roles that may make it: auditors and orchestrators read,
// only operators write; orchestrators do not read evidence.
TEST_F(FleetServiceTest, ClientRolesLimitWhatEachCallerMayDo) {
  absl::StatusOr<CertAndKey> auditor = pki_->IssueClient("grc", "auditor");
  ASSERT_TRUE(auditor.ok()) << auditor.status();
  absl::StatusOr<CertAndKey> orchestrator = pki_->IssueClient("k8s", "orchestrator");
  ASSERT_TRUE(orchestrator.ok()) << orchestrator.status();
  auto auditor_stub = v1::Fleet::NewStub(verifier_->Channel(*auditor));
  auto orchestrator_stub = v1::Fleet::NewStub(verifier_->Channel(*orchestrator));

  for (auto* stub : {auditor_stub.get(), orchestrator_stub.get()}) {
    grpc::ClientContext list_ctx;
    v1::ListNodesResponse nodes;
    EXPECT_TRUE(stub->ListNodes(&list_ctx, v1::ListNodesRequest(), &nodes).ok());

    grpc::ClientContext approve_ctx;
    v1::ApproveNodeRequest approve;
    approve.set_node_id(std::string(64, 'e'));
    v1::ApproveNodeResponse approved;
    EXPECT_EQ(stub->ApproveNode(&approve_ctx, approve, &approved).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_FALSE(registry_->IsApproved(std::string(64, 'e')));

  v1::GetLatestEvidenceRequest request;
  request.set_node_id(std::string(64, 'd'));
  v1::GetLatestEvidenceResponse response;
  grpc::ClientContext auditor_ctx;
  // Allowed to ask; the node is unknown.
  EXPECT_EQ(auditor_stub->GetLatestEvidence(&auditor_ctx, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext orchestrator_ctx;
  EXPECT_EQ(
      orchestrator_stub->GetLatestEvidence(&orchestrator_ctx, request, &response).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(FleetServiceTest, ApproveNodeRecordsApprovalInRegistry) {
  const std::string node_id(64, 'c');
  ASSERT_TRUE(store_->RevokeNode(node_id, "client/operator", "lost").ok());
  grpc::ClientContext ctx;
  v1::ApproveNodeRequest request;
  request.set_node_id(node_id);
  v1::ApproveNodeResponse response;
  grpc::Status st = OperatorStub()->ApproveNode(&ctx, request, &response);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(registry_->IsApproved(node_id));
  // The approval re-admits the revoked node.
  EXPECT_FALSE(store_->FindNode(node_id)->revoked);

  grpc::ClientContext bad_ctx;
  request.set_node_id("C0FFEE");
  EXPECT_EQ(OperatorStub()->ApproveNode(&bad_ctx, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(registry_->IsApproved("C0FFEE"));
}

TEST_F(FleetServiceTest, LatestEvidenceOfUnknownNodeIsNotFound) {
  grpc::ClientContext ctx;
  v1::GetLatestEvidenceRequest request;
  request.set_node_id(std::string(64, 'd'));
  v1::GetLatestEvidenceResponse response;
  EXPECT_EQ(OperatorStub()->GetLatestEvidence(&ctx, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(FleetServiceTest, VigilctlListsAndApprovesNodes) {
  v1::Evidence evidence;
  v1::RuntimeReport report;
  report.set_hostname("cli-host");
  evidence.set_payload(report.SerializeAsString());
  v1::Verdict verdict;
  verdict.set_status(v1::TRUST_REJECTED);
  verdict.add_reasons(v1::NONCE_EXPIRED);
  const std::string node_id(64, 'e');
  store_->Record(node_id, evidence, verdict);
  ASSERT_TRUE(store_->Flush().ok());

  const std::string vigilctl = std::string(VIGIL_BUILD_DIR) + "/cli/vigilctl";
  const std::string connect = " --verifier " + verifier_->address() + " --pki-dir " + pki_->dir() +
                              " --client " + TestPki::kClientName;
  const std::string out = dir_ + "/out.txt";
  auto run = [&](const std::string& args) {
    const int status = std::system((vigilctl + " " + args + " >" + out + " 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  auto output = [&] {
    std::ifstream in(out);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };

  ASSERT_EQ(run("nodes list --json" + connect), 0) << output();
  const std::string json = output();
  EXPECT_NE(json.find("\"node_id\": \"" + node_id + "\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"hostname\": \"cli-host\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"status\": \"REJECTED\""), std::string::npos) << json;
  EXPECT_NE(json.find("NONCE_EXPIRED"), std::string::npos) << json;

  ASSERT_EQ(run("nodes list" + connect), 0) << output();
  EXPECT_NE(output().find(node_id), std::string::npos);

  const std::string approve_id(64, 'f');
  ASSERT_EQ(run("nodes approve " + approve_id + connect), 0) << output();
  EXPECT_TRUE(registry_->IsApproved(approve_id));

  // Bad input: one line, exit 2. A node certificate: refused by the verifier, exit 1.
  EXPECT_EQ(run("nodes approve not-a-node-id" + connect), 2);
  EXPECT_EQ(run("nodes list --bogus-flag" + connect), 2);
  EXPECT_EQ(
      run("nodes list --verifier " + verifier_->address() + " --client " + TestPki::kClientName),
      2);
  const std::string as_node = " --verifier " + verifier_->address() + " --ca " + pki_->dir() +
                              "/ca.crt --cert " + pki_->dir() + "/node-" + TestPki::kNodeId +
                              ".crt --key " + pki_->dir() + "/node-" + TestPki::kNodeId + ".key";
  EXPECT_EQ(run("nodes list" + as_node), 1);
  EXPECT_NE(output().find("ListNodes"), std::string::npos) << output();
}

}  // namespace
}  // namespace vigil::verifier
