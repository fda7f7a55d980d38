// The Fleet API over a real mutual-TLS verifier on port 0: a node streams evidence through
// the Attest stream into the results store, and an operator's client certificate reads it
// back; node certificates are refused.

#include "verifier/fleet_service.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "common/tpm/software_ak.h"
#include "nlohmann/json.hpp"
#include "tests/testing/build_paths.h"
#include "tests/testing/pki_fixture.h"
#include "tests/verifier/fleet_test_fixture.h"
#include "verifier/node_registry.h"
#include "vigil/v1/attestation.grpc.pb.h"
#include "vigil/v1/fleet.grpc.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

using testing::TestPki;
using testing::TestVerifier;

class FleetServiceTest : public FleetFixture {
 protected:
  std::unique_ptr<v1::Fleet::Stub> OperatorStub() { return Stub("operator"); }
  std::unique_ptr<v1::Fleet::Stub> NodeStub() { return Stub("node"); }

  // Waits (without a time limit of its own: ctest's timeout bounds it) until the store
  // sees the node's connection state become `connected`.
  void AwaitConnected(const std::string& node_id, bool connected) {
    for (;;) {
      std::optional<NodeResultSummary> s = store_->FindNode(node_id);
      if (s.has_value() && s->connected == connected) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
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

  const std::string vigilctl = vigil::testing::BuildDir() + "/cli/vigilctl";
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

// What each role may call (fleet.proto): every request here is one the verifier refuses for
// another reason or that changes nothing, so only the role decides PERMISSION_DENIED.
TEST_F(FleetServiceTest, EachCallRefusesTheRolesItDoesNotName) {
  const std::string unknown = FleetNodeId('9');
  using Call = std::function<grpc::StatusCode(v1::Fleet::Stub*)>;
  struct Case {
    std::string rpc;
    std::set<std::string> allowed;
    Call call;
  };
  v1::GetNodeRequest get_node;
  get_node.set_node_id(unknown);
  v1::GetLatestEvidenceRequest latest;
  latest.set_node_id(unknown);
  v1::CheckAdmissionRequest admission;
  admission.set_node_id(unknown);
  v1::ExportAssessmentRequest empty_range;  // INVALID_ARGUMENT when allowed
  v1::PutPolicyRequest bad_policy;
  bad_policy.set_yaml("kind: [");
  v1::ApproveNodeRequest approve;
  approve.set_node_id("not-a-node");
  v1::RevokeNodeRequest revoke;
  revoke.set_node_id("not-a-node");
  const std::set<std::string> all = {"operator", "auditor", "orchestrator"};
  const std::vector<Case> cases = {
      {"ListNodes", all,
       [](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::ListNodesResponse r;
         return s->ListNodes(&c, {}, &r).error_code();
       }},
      {"GetNode", all,
       [&](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::GetNodeResponse r;
         return s->GetNode(&c, get_node, &r).error_code();
       }},
      {"GetLatestEvidence",
       {"operator", "auditor"},
       [&](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::GetLatestEvidenceResponse r;
         return s->GetLatestEvidence(&c, latest, &r).error_code();
       }},
      {"ListVerdicts", all,
       [](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::ListVerdictsResponse r;
         return s->ListVerdicts(&c, {}, &r).error_code();
       }},
      {"WatchVerdicts", all,
       [](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::WatchVerdictsRequest req;
         req.set_cursor("not-a-cursor");  // INVALID_ARGUMENT when allowed
         auto reader = s->WatchVerdicts(&c, req);
         v1::VerdictChange change;
         while (reader->Read(&change)) {
         }
         return reader->Finish().error_code();
       }},
      {"CheckAdmission",
       {"operator", "orchestrator"},
       [&](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::CheckAdmissionResponse r;
         return s->CheckAdmission(&c, admission, &r).error_code();
       }},
      {"ExportAssessment",
       {"operator", "auditor"},
       [&](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::ExportAssessmentResponse r;
         return s->ExportAssessment(&c, empty_range, &r).error_code();
       }},
      {"GetJwks", all,
       [](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::GetJwksResponse r;
         return s->GetJwks(&c, {}, &r).error_code();
       }},
      {"PutPolicy",
       {"operator"},
       [&](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::PutPolicyResponse r;
         return s->PutPolicy(&c, bad_policy, &r).error_code();
       }},
      {"ListPolicies",
       {"operator", "auditor"},
       [](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::ListPoliciesResponse r;
         return s->ListPolicies(&c, {}, &r).error_code();
       }},
      {"ApproveNode",
       {"operator"},
       [&](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::ApproveNodeResponse r;
         return s->ApproveNode(&c, approve, &r).error_code();
       }},
      {"RevokeNode",
       {"operator"},
       [&](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::RevokeNodeResponse r;
         return s->RevokeNode(&c, revoke, &r).error_code();
       }},
      {"ListAudit",
       {"operator", "auditor"},
       [](v1::Fleet::Stub* s) {
         grpc::ClientContext c;
         v1::ListAuditResponse r;
         return s->ListAudit(&c, {}, &r).error_code();
       }},
  };
  for (const std::string role : {"operator", "auditor", "orchestrator", "node"}) {
    auto stub = Stub(role);
    for (const Case& c : cases) {
      const grpc::StatusCode code = c.call(stub.get());
      if (c.allowed.count(role) != 0) {
        EXPECT_NE(code, grpc::StatusCode::PERMISSION_DENIED) << c.rpc << " as " << role;
      } else {
        EXPECT_EQ(code, grpc::StatusCode::PERMISSION_DENIED) << c.rpc << " as " << role;
      }
    }
  }
  // Nothing the refused calls asked for happened.
  EXPECT_TRUE(RevokedCalls().empty());
  auto audit = store_->ListAudit(0, "");
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->records.empty());
}

// ListNodes pages in node_id order: page_size nodes at most, never passing the byte budget
// (but never an empty page while nodes remain), each node once, enrolled-only nodes included.
TEST_F(FleetServiceTest, ListNodesPagesInNodeIdOrderWithinItsByteBudget) {
  std::vector<std::string> reported;
  for (char c : std::string("edcba")) {
    reported.push_back(FleetNodeId(c));
    ASSERT_NO_FATAL_FAILURE(Record(reported.back(),
                                   FleetVerdict(reported.back(), v1::TRUST_AFFIRMING, absl::Now()),
                                   std::string("host-") + c));
  }
  auto ak = tpm::SoftwareAk::Create();
  ASSERT_TRUE(ak.ok()) << ak.status();
  const std::string enrolled_only = FleetNodeId('f');
  ASSERT_TRUE(registry_->Bind({enrolled_only, "ek", ak->tpm2b_public, ak->name, absl::Now()}).ok());
  std::vector<std::string> all = reported;
  all.push_back(enrolled_only);
  std::sort(all.begin(), all.end());

  // Every page of a listing with `page_size`: the node ids of each.
  auto pages = [this, &enrolled_only](uint32_t page_size) {
    std::vector<std::vector<std::string>> out;
    v1::ListNodesRequest request;
    request.set_page_size(page_size);
    do {
      grpc::ClientContext ctx;
      v1::ListNodesResponse response;
      grpc::Status st = Stub("auditor")->ListNodes(&ctx, request, &response);
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (!st.ok() || out.size() > 10) break;
      std::vector<std::string>& page = out.emplace_back();
      for (const v1::NodeSummary& n : response.nodes()) {
        page.push_back(n.node_id());
        EXPECT_EQ(n.enrolled(), n.node_id() == enrolled_only);
        if (n.node_id() == enrolled_only) {
          EXPECT_EQ(n.latest_verdict().status(), v1::TRUST_STATUS_UNSPECIFIED);
        } else {
          EXPECT_EQ(n.latest_verdict().status(), v1::TRUST_AFFIRMING);
          EXPECT_EQ(n.hostname(), "host-" + std::string(1, n.node_id()[0]));
        }
      }
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    return out;
  };
  EXPECT_EQ(pages(0), (std::vector<std::vector<std::string>>{all}));
  EXPECT_EQ(pages(2), (std::vector<std::vector<std::string>>{
                          {all[0], all[1]}, {all[2], all[3]}, {all[4], all[5]}}));

  // A budget smaller than one node: one node per page.
  ASSERT_NO_FATAL_FAILURE(Start({}, [](FleetServiceOptions& o) { o.max_page_bytes = 1; }));
  for (const std::string& id : reported) {
    ASSERT_NO_FATAL_FAILURE(
        Record(id, FleetVerdict(id, v1::TRUST_AFFIRMING, absl::Now()), "host-" + id.substr(0, 1)));
  }
  std::vector<std::string> sorted = reported;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<std::string>> single;
  for (const std::string& id : sorted) single.push_back({id});
  EXPECT_EQ(pages(1000), single);
  // vigilctl collects every page.
  const std::string out = dir_ + "/pages.txt";
  for (const std::string command : {"nodes list --json", "status"}) {
    const std::string line = vigil::testing::BuildDir() + "/cli/vigilctl " + command +
                             " --verifier " + verifier_->address() + " --pki-dir " + pki_->dir() +
                             " --client " + TestPki::kClientName + " >" + out + " 2>&1";
    const int status = std::system(line.c_str());
    std::ifstream in(out);
    const std::string printed(std::istreambuf_iterator<char>(in), {});
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << ": " << printed;
    for (const std::string& id : reported) {
      // `status` prints short ids.
      EXPECT_NE(printed.find(id.substr(0, 12)), std::string::npos) << command << ": " << printed;
    }
  }

  grpc::ClientContext bad_ctx;
  v1::ListNodesRequest bad;
  bad.set_page_token(std::string(2000, 'x'));
  v1::ListNodesResponse response;
  EXPECT_EQ(Stub("auditor")->ListNodes(&bad_ctx, bad, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(FleetServiceTest, GetNodeAnswersFromTheLatestVerdict) {
  const std::string node = FleetNodeId('a');
  ASSERT_NO_FATAL_FAILURE(
      Record(node, FleetVerdict(node, v1::TRUST_AFFIRMING, absl::Now()), "node-a-host"));
  grpc::ClientContext ctx;
  v1::GetNodeRequest request;
  request.set_node_id(node);
  v1::GetNodeResponse response;
  grpc::Status st = Stub("orchestrator")->GetNode(&ctx, request, &response);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(response.node().node_id(), node);
  EXPECT_EQ(response.node().hostname(), "node-a-host");
  EXPECT_EQ(response.node().latest_verdict().status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(response.policy_digest(), std::string(64, '6'));
  ASSERT_EQ(response.policy_ids_size(), 1);
  EXPECT_EQ(response.policy_ids(0), "agents@3");
  EXPECT_FALSE(response.node().enrolled());
  EXPECT_EQ(response.enrolled_unix_nano(), 0);
  EXPECT_EQ(response.ek_trust(), "");

  grpc::ClientContext unknown_ctx;
  request.set_node_id(FleetNodeId('b'));
  EXPECT_EQ(Stub("auditor")->GetNode(&unknown_ctx, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext bad_ctx;
  request.set_node_id("A1B2");
  EXPECT_EQ(Stub("auditor")->GetNode(&bad_ctx, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(FleetServiceTest, ListVerdictsFiltersAndPagesWithoutRepeats) {
  const std::string a = FleetNodeId('a');
  const std::string b = FleetNodeId('b');
  const absl::Time t0 = absl::Now() - absl::Minutes(10);
  // a: 4 verdicts (2 affirming, 1 warning, 1 rejected), b: 1 with a contraindicated agent.
  const v1::TrustStatus a_statuses[] = {v1::TRUST_AFFIRMING, v1::TRUST_WARNING, v1::TRUST_AFFIRMING,
                                        v1::TRUST_REJECTED};
  for (int i = 0; i < 4; ++i) {
    ASSERT_NO_FATAL_FAILURE(Record(
        a, FleetVerdict(a, a_statuses[i], t0 + absl::Seconds(i), {{"runner", a_statuses[i]}})));
  }
  ASSERT_NO_FATAL_FAILURE(
      Record(b, FleetVerdict(b, v1::TRUST_CONTRAINDICATED, t0 + absl::Seconds(10),
                             {{"agent", v1::TRUST_CONTRAINDICATED}})));
  auto stub = Stub("orchestrator");
  auto list = [&](v1::ListVerdictsRequest request) {
    std::vector<v1::Verdict> all;
    int pages = 0;
    do {
      grpc::ClientContext ctx;
      v1::ListVerdictsResponse page;
      grpc::Status st = stub->ListVerdicts(&ctx, request, &page);
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (!st.ok()) break;
      for (const v1::Verdict& v : page.verdicts()) all.push_back(v);
      request.set_page_token(page.next_page_token());
      ++pages;
    } while (!request.page_token().empty());
    return std::make_pair(all, pages);
  };

  v1::ListVerdictsRequest by_node;
  by_node.set_node_id(a);
  by_node.set_page_size(3);
  auto [a_verdicts, a_pages] = list(by_node);
  ASSERT_EQ(a_verdicts.size(), 4u);
  EXPECT_EQ(a_pages, 2);
  // Newest first, each once.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(a_verdicts[i].appraised_unix_nano(), absl::ToUnixNanos(t0 + absl::Seconds(3 - i)));
  }

  v1::ListVerdictsRequest affirming;
  affirming.set_node_id(a);
  affirming.add_statuses(v1::TRUST_AFFIRMING);
  affirming.set_page_size(1);
  auto [affirmed, affirmed_pages] = list(affirming);
  ASSERT_EQ(affirmed.size(), 2u);
  EXPECT_GE(affirmed_pages, 2);
  for (const v1::Verdict& v : affirmed) EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING);

  v1::ListVerdictsRequest agent;
  agent.set_workload("agent");
  agent.add_statuses(v1::TRUST_CONTRAINDICATED);
  auto [agents, agent_pages] = list(agent);
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].node_id(), b);

  v1::ListVerdictsRequest window;
  window.set_since_unix_nano(absl::ToUnixNanos(t0 + absl::Seconds(1)));
  window.set_until_unix_nano(absl::ToUnixNanos(t0 + absl::Seconds(3)));
  auto [windowed, windowed_pages] = list(window);
  ASSERT_EQ(windowed.size(), 2u);

  // A page also ends at the service's byte budget: below one verdict, one per page.
  ASSERT_NO_FATAL_FAILURE(Start({}, [](FleetServiceOptions& o) { o.max_page_bytes = 1; }));
  for (int i = 0; i < 4; ++i) {
    ASSERT_NO_FATAL_FAILURE(Record(
        a, FleetVerdict(a, a_statuses[i], t0 + absl::Seconds(i), {{"runner", a_statuses[i]}})));
  }
  stub = Stub("orchestrator");
  auto [budgeted, budgeted_pages] = list(by_node);
  EXPECT_EQ(budgeted.size(), 4u);
  EXPECT_EQ(budgeted_pages, 4);

  grpc::ClientContext bad_ctx;
  v1::ListVerdictsRequest bad;
  bad.set_page_token("forged");
  v1::ListVerdictsResponse response;
  EXPECT_EQ(stub->ListVerdicts(&bad_ctx, bad, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

class FleetAdmissionTest : public FleetServiceTest {
 protected:
  v1::CheckAdmissionResponse Check(const std::string& node, const std::string& workload = "",
                                   int64_t max_age_ms = 0) {
    grpc::ClientContext ctx;
    v1::CheckAdmissionRequest request;
    request.set_node_id(node);
    request.set_workload(workload);
    request.set_max_age_ms(max_age_ms);
    v1::CheckAdmissionResponse response;
    grpc::Status st = Stub("orchestrator")->CheckAdmission(&ctx, request, &response);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return response;
  }

  static std::string Reasons(const v1::CheckAdmissionResponse& r) {
    std::string out;
    for (const std::string& line : r.reasons()) out += line + "\n";
    return out;
  }
};

TEST_F(FleetAdmissionTest, AllowsAFreshAffirmingNodeWithItsToken) {
  const std::string node = FleetNodeId('a');
  const absl::Time appraised = absl::Now() - absl::Seconds(5);
  ASSERT_NO_FATAL_FAILURE(Record(
      node, FleetVerdict(node, v1::TRUST_AFFIRMING, appraised, {{"agent", v1::TRUST_AFFIRMING}})));
  v1::CheckAdmissionResponse r = Check(node);
  EXPECT_TRUE(r.allowed()) << Reasons(r);
  EXPECT_TRUE(r.reasons().empty());
  EXPECT_EQ(r.status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(r.ear_token(), "token-for-aaaa");
  EXPECT_EQ(r.appraised_unix_nano(), absl::ToUnixNanos(appraised));
  // By workload name and by workload_id.
  EXPECT_TRUE(Check(node, "agent").allowed());
  EXPECT_TRUE(Check(node, std::string(63, '0') + "a").allowed());
}

TEST_F(FleetAdmissionTest, DeniesUnknownNodeWithAReason) {
  v1::CheckAdmissionResponse r = Check(FleetNodeId('b'));
  EXPECT_FALSE(r.allowed());
  EXPECT_NE(Reasons(r).find("unknown"), std::string::npos) << Reasons(r);
  EXPECT_EQ(r.ear_token(), "");
  EXPECT_EQ(r.appraised_unix_nano(), 0);

  grpc::ClientContext ctx;
  v1::CheckAdmissionRequest malformed;
  malformed.set_node_id("node-1");
  v1::CheckAdmissionResponse response;
  EXPECT_EQ(Stub("orchestrator")->CheckAdmission(&ctx, malformed, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(FleetAdmissionTest, DeniesRevokedNode) {
  const std::string node = FleetNodeId('a');
  ASSERT_NO_FATAL_FAILURE(Record(node, FleetVerdict(node, v1::TRUST_AFFIRMING, absl::Now())));
  ASSERT_TRUE(fleet_->RevokeNode(node, "disk stolen", "operator/alice").ok());
  v1::CheckAdmissionResponse r = Check(node);
  EXPECT_FALSE(r.allowed());
  EXPECT_NE(Reasons(r).find("revoked"), std::string::npos) << Reasons(r);
  EXPECT_NE(Reasons(r).find("disk stolen"), std::string::npos) << Reasons(r);
  // The token and time are still given.
  EXPECT_EQ(r.ear_token(), "token-for-aaaa");
}

TEST_F(FleetAdmissionTest, DeniesStaleResultsSayingByHowMuch) {
  const std::string node = FleetNodeId('a');
  ASSERT_NO_FATAL_FAILURE(
      Record(node, FleetVerdict(node, v1::TRUST_AFFIRMING, absl::Now() - absl::Minutes(10))));
  // The default max age is 60 s.
  v1::CheckAdmissionResponse r = Check(node);
  EXPECT_FALSE(r.allowed());
  EXPECT_EQ(r.status(), v1::TRUST_AFFIRMING);
  EXPECT_NE(Reasons(r).find("stale by 5"), std::string::npos) << Reasons(r);
  // A larger max age admits it.
  EXPECT_TRUE(Check(node, "", absl::ToInt64Milliseconds(absl::Minutes(15))).allowed());
  EXPECT_FALSE(Check(node, "", 1000).allowed());
}

TEST_F(FleetAdmissionTest, DeniesContraindicatedWorkloadNamingRulesAndControls) {
  const std::string node = FleetNodeId('a');
  ASSERT_NO_FATAL_FAILURE(Record(
      node, FleetVerdict(node, v1::TRUST_CONTRAINDICATED, absl::Now(),
                         {{"agent", v1::TRUST_CONTRAINDICATED}, {"runner", v1::TRUST_AFFIRMING}})));
  v1::CheckAdmissionResponse r = Check(node, "agent");
  EXPECT_FALSE(r.allowed());
  EXPECT_EQ(r.status(), v1::TRUST_CONTRAINDICATED);
  const std::string reasons = Reasons(r);
  EXPECT_NE(reasons.find("workload agent"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("seccomp-denies-ptrace"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("NIST-800-53r5:AC-6(10)"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("SOC2:CC6.1"), std::string::npos) << reasons;
  // The node as a whole is denied too; its affirming workload is allowed.
  EXPECT_FALSE(Check(node).allowed());
  v1::CheckAdmissionResponse runner = Check(node, "runner");
  EXPECT_TRUE(runner.allowed()) << Reasons(runner);
  EXPECT_EQ(runner.status(), v1::TRUST_AFFIRMING);
}

TEST_F(FleetAdmissionTest, ARuleBrokenAlikeByTwoProcessesIsOneReason) {
  const std::string node = FleetNodeId('a');
  v1::Verdict v = FleetVerdict(node, v1::TRUST_CONTRAINDICATED, absl::Now(),
                               {{"agent", v1::TRUST_CONTRAINDICATED}});
  // The workload's second process breaks the same rule the same way.
  v1::WorkloadVerdict* w = v.mutable_workloads(0);
  ASSERT_GT(w->rules_size(), 0);
  *w->add_rules() = w->rules(0);
  *v.add_rules() = w->rules(0);
  ASSERT_NO_FATAL_FAILURE(Record(node, v));
  for (const std::string& workload : {std::string(), std::string("agent")}) {
    v1::CheckAdmissionResponse r = Check(node, workload);
    EXPECT_FALSE(r.allowed());
    std::set<std::string> distinct(r.reasons().begin(), r.reasons().end());
    EXPECT_EQ(distinct.size(), static_cast<size_t>(r.reasons_size())) << Reasons(r);
  }
}

TEST_F(FleetAdmissionTest, DeniesUnknownWorkloadAndUnverifiedEvidence) {
  const std::string node = FleetNodeId('a');
  ASSERT_NO_FATAL_FAILURE(Record(node, FleetVerdict(node, v1::TRUST_AFFIRMING, absl::Now(),
                                                    {{"agent", v1::TRUST_AFFIRMING}})));
  v1::CheckAdmissionResponse r = Check(node, "nosuch");
  EXPECT_FALSE(r.allowed());
  EXPECT_NE(Reasons(r).find("workload nosuch is not in"), std::string::npos) << Reasons(r);

  // Rejected evidence denies even a workload it lists as affirming.
  ASSERT_NO_FATAL_FAILURE(Record(
      node, FleetVerdict(node, v1::TRUST_REJECTED, absl::Now(), {{"agent", v1::TRUST_AFFIRMING}})));
  v1::CheckAdmissionResponse rejected = Check(node, "agent");
  EXPECT_FALSE(rejected.allowed());
  EXPECT_EQ(rejected.status(), v1::TRUST_REJECTED);
  EXPECT_NE(Reasons(rejected).find("evidence is REJECTED (NONCE_EXPIRED)"), std::string::npos)
      << Reasons(rejected);
}

TEST_F(FleetServiceTest, ExportsOscalForARangeWithRfc4122Uuids) {
  const std::string node = FleetNodeId('a');
  const absl::Time t0 = absl::Now() - absl::Hours(1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(
        Record(node,
               FleetVerdict(node, v1::TRUST_CONTRAINDICATED, t0 + absl::Minutes(i),
                            {{"agent", v1::TRUST_CONTRAINDICATED}}),
               "export-host"));
  }
  grpc::ClientContext ctx;
  v1::ExportAssessmentRequest request;
  request.set_since_unix_nano(absl::ToUnixNanos(t0));
  request.set_until_unix_nano(absl::ToUnixNanos(t0 + absl::Minutes(2)));
  v1::ExportAssessmentResponse response;
  grpc::Status st = Stub("auditor")->ExportAssessment(&ctx, request, &response);
  ASSERT_TRUE(st.ok()) << st.error_message();
  nlohmann::json doc = nlohmann::json::parse(response.oscal_json(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << response.oscal_json();
  const nlohmann::json& ar = doc["assessment-results"];
  for (const char* key : {"uuid", "metadata", "import-ap", "results"}) {
    EXPECT_TRUE(ar.contains(key)) << key;
  }
  ASSERT_EQ(ar["results"].size(), 1u);
  const nlohmann::json& result = ar["results"][0];
  for (const char* key : {"uuid", "title", "description", "start", "end", "observations",
                          "findings", "reviewed-controls"}) {
    EXPECT_TRUE(result.contains(key)) << key;
  }
  EXPECT_NE(response.oscal_json().find("export-host"), std::string::npos);
  EXPECT_NE(response.oscal_json().find("ac-6.10"), std::string::npos);
  // Every uuid in the document is RFC 4122 (version 5 here, variant 10xx).
  const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  size_t uuids = 0;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& j) {
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "uuid") {
          ++uuids;
          EXPECT_TRUE(std::regex_match(it.value().get<std::string>(), uuid)) << it.value();
        }
        walk(it.value());
      }
    } else if (j.is_array()) {
      for (const auto& e : j) walk(e);
    }
  };
  walk(doc);
  EXPECT_GE(uuids, 4u);

  grpc::ClientContext reversed_ctx;
  const int64_t since = request.since_unix_nano();
  request.set_since_unix_nano(request.until_unix_nano());
  request.set_until_unix_nano(since);
  EXPECT_EQ(Stub("operator")->ExportAssessment(&reversed_ctx, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext empty_ctx;
  request.set_until_unix_nano(request.since_unix_nano());
  EXPECT_EQ(Stub("operator")->ExportAssessment(&empty_ctx, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(FleetServiceTest, ExportPastTheLimitIsResourceExhausted) {
  ASSERT_NO_FATAL_FAILURE(Start({}, [](FleetServiceOptions& o) { o.max_export_verdicts = 2; }));
  const std::string node = FleetNodeId('a');
  const absl::Time t0 = absl::Now() - absl::Hours(1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(
        Record(node, FleetVerdict(node, v1::TRUST_AFFIRMING, t0 + absl::Minutes(i))));
  }
  grpc::ClientContext ctx;
  v1::ExportAssessmentRequest request;
  request.set_since_unix_nano(absl::ToUnixNanos(t0));
  request.set_until_unix_nano(absl::ToUnixNanos(t0 + absl::Hours(1)));
  v1::ExportAssessmentResponse response;
  EXPECT_EQ(Stub("operator")->ExportAssessment(&ctx, request, &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::ClientContext narrow_ctx;
  request.set_until_unix_nano(absl::ToUnixNanos(t0 + absl::Seconds(90)));
  EXPECT_TRUE(Stub("operator")->ExportAssessment(&narrow_ctx, request, &response).ok());
}

TEST_F(FleetServiceTest, AnExportLargerThanOneMessageIsResourceExhaustedWithItsSize) {
  ASSERT_NO_FATAL_FAILURE(Start({}, [](FleetServiceOptions& o) { o.max_page_bytes = 65536; }));
  const std::string node = FleetNodeId('a');
  const absl::Time t0 = absl::Now() - absl::Hours(1);
  v1::ExportAssessmentRequest request;
  request.set_since_unix_nano(absl::ToUnixNanos(t0));
  request.set_until_unix_nano(absl::ToUnixNanos(t0 + absl::Minutes(1)));
  // One more verdict in the range each time: every export that is served fits the budget,
  // and the first that would not is refused with its size.
  grpc::Status st;
  int verdicts = 0;
  for (; verdicts < 100; ++verdicts) {
    ASSERT_NO_FATAL_FAILURE(
        Record(node, FleetVerdict(node, v1::TRUST_AFFIRMING, t0 + absl::Seconds(verdicts),
                                  {{"agent", v1::TRUST_AFFIRMING}})));
    grpc::ClientContext ctx;
    v1::ExportAssessmentResponse response;
    st = Stub("auditor")->ExportAssessment(&ctx, request, &response);
    if (!st.ok()) break;
    EXPECT_LE(response.oscal_json().size(), 65536u);
  }
  EXPECT_GT(verdicts, 0) << "one verdict's export does not fit 64 KiB";
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_NE(st.error_message().find("more than this verifier sends in one message (65536 bytes"),
            std::string::npos)
      << st.error_message();
  EXPECT_NE(st.error_message().find("narrow the range"), std::string::npos) << st.error_message();
}

TEST_F(FleetServiceTest, GetJwksServesTheSignersKeys) {
  grpc::ClientContext ctx;
  v1::GetJwksResponse response;
  grpc::Status st = Stub("orchestrator")->GetJwks(&ctx, {}, &response);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(response.jwks_json(), signer_->Jwks().value());
  EXPECT_NE(response.jwks_json().find(signer_->current_kid()), std::string::npos);

  ASSERT_NO_FATAL_FAILURE(Start({}, [](FleetServiceOptions& o) { o.signer = nullptr; }));
  grpc::ClientContext unsigned_ctx;
  st = Stub("operator")->GetJwks(&unsigned_ctx, {}, &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(), "this verifier signs no results");
}

constexpr char kPolicyYaml[] = R"(apiVersion: vigil.dev/v1
kind: RuntimePolicy
metadata:
  name: agents
  revision: REV
spec:
  workloads:
    - name: agent
      selectors: [SELECTOR]
  rules:
    - id: no-new-privs
      kind: no_new_privs
      controls:
        nist_800_53: [AC-6]
)";

std::string PolicyYaml(int revision, const std::string& selector = "exe=/opt/agents/*") {
  std::string yaml = kPolicyYaml;
  yaml.replace(yaml.find("REV"), 3, std::to_string(revision));
  yaml.replace(yaml.find("SELECTOR"), 8, selector);
  return yaml;
}

TEST_F(FleetServiceTest, PutPolicyStoresInstallsAndAudits) {
  grpc::ClientContext ctx;
  v1::PutPolicyRequest request;
  request.set_yaml(PolicyYaml(1, "comm=agent"));
  v1::PutPolicyResponse response;
  grpc::Status st = Stub("operator")->PutPolicy(&ctx, request, &response);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(response.policy().name(), "agents");
  EXPECT_EQ(response.policy().revision(), 1u);
  EXPECT_EQ(response.policy().updated_by(), "operator/operator");
  EXPECT_EQ(response.policy().yaml(), request.yaml());
  EXPECT_EQ(response.policy().sha256().size(), 64u);
  // A selector that rests only on comm is stored, with a warning.
  ASSERT_GE(response.warnings_size(), 1);
  EXPECT_NE(response.warnings(0).find("comm"), std::string::npos) << response.warnings(0);

  // Installed: the nodes' bundle now holds it.
  auto current = policies_->Current();
  ASSERT_EQ(current->policies.size(), 1u);
  EXPECT_EQ(current->policies[0].Id(), "agents@1");
  EXPECT_FALSE(current->bundle.sha256().empty());

  grpc::ClientContext list_ctx;
  v1::ListPoliciesResponse listed;
  st = Stub("auditor")->ListPolicies(&list_ctx, {}, &listed);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(listed.policies_size(), 1);
  EXPECT_EQ(listed.policies(0).sha256(), response.policy().sha256());

  auto audit = store_->ListAudit(0, "");
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->records.size(), 1u);
  EXPECT_EQ(audit->records[0].action(), "policy.put");
  EXPECT_EQ(audit->records[0].target(), "agents@1");
  EXPECT_EQ(audit->records[0].actor(), "operator/operator");
}

TEST_F(FleetServiceTest, PutPolicyRefusesMalformedPolicyWholeWithLineAndColumn) {
  grpc::ClientContext ctx;
  v1::PutPolicyRequest request;
  std::string yaml = PolicyYaml(1);
  yaml.replace(yaml.find("kind: no_new_privs"), 18, "kind: no_such_kind");
  request.set_yaml(yaml);
  v1::PutPolicyResponse response;
  grpc::Status st = Stub("operator")->PutPolicy(&ctx, request, &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // kind is on line 12, its value at column 13.
  EXPECT_NE(st.error_message().find("line 12, column 13: "), std::string::npos)
      << st.error_message();
  // Nothing changed.
  auto stored = store_->ListPolicies();
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->empty());
  EXPECT_TRUE(policies_->Current()->policies.empty());
  EXPECT_TRUE(store_->ListAudit(0, "")->records.empty());

  grpc::ClientContext yaml_ctx;
  request.set_yaml("apiVersion: [unclosed\n");
  st = Stub("operator")->PutPolicy(&yaml_ctx, request, &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // The flow sequence is still open where the input ends.
  EXPECT_NE(st.error_message().find("line 2, column 1: "), std::string::npos) << st.error_message();

  // Two documents are not one policy.
  grpc::ClientContext two_ctx;
  request.set_yaml(PolicyYaml(1) + "---\n" + PolicyYaml(2));
  st = Stub("operator")->PutPolicy(&two_ctx, request, &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("exactly one"), std::string::npos) << st.error_message();
  EXPECT_TRUE(store_->ListPolicies()->empty());
}

TEST_F(FleetServiceTest, PutPolicyRevisionMustIncrease) {
  auto put = [&](int revision) {
    grpc::ClientContext ctx;
    v1::PutPolicyRequest request;
    request.set_yaml(PolicyYaml(revision));
    v1::PutPolicyResponse response;
    return Stub("operator")->PutPolicy(&ctx, request, &response).error_code();
  };
  ASSERT_EQ(put(2), grpc::StatusCode::OK);
  EXPECT_EQ(put(2), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(put(1), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(policies_->Current()->policies[0].Id(), "agents@2");
  ASSERT_EQ(put(3), grpc::StatusCode::OK);
  EXPECT_EQ(policies_->Current()->policies[0].Id(), "agents@3");
  auto revisions = store_->PolicyRevisions("agents");
  ASSERT_TRUE(revisions.ok());
  EXPECT_EQ(revisions->size(), 2u);
  EXPECT_EQ(store_->ListAudit(0, "")->records.size(), 2u);
}

TEST_F(FleetServiceTest, OperatorActionsAreAuditedNewestFirst) {
  const std::string node = FleetNodeId('c');
  ASSERT_NO_FATAL_FAILURE(Record(node, FleetVerdict(node, v1::TRUST_AFFIRMING, absl::Now())));
  auto op = Stub("operator");
  {
    // A node the verifier never heard of cannot be revoked.
    grpc::ClientContext ctx;
    v1::RevokeNodeRequest request;
    request.set_node_id(FleetNodeId('d'));
    v1::RevokeNodeResponse response;
    EXPECT_EQ(op->RevokeNode(&ctx, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_TRUE(RevokedCalls().empty());
  }
  {
    grpc::ClientContext ctx;
    v1::RevokeNodeRequest request;
    request.set_node_id(node);
    request.set_reason("decommissioned");
    v1::RevokeNodeResponse response;
    grpc::Status st = op->RevokeNode(&ctx, request, &response);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_EQ(RevokedCalls(), std::vector<std::string>{node});
  EXPECT_TRUE(store_->FindNode(node)->revoked);
  {
    grpc::ClientContext ctx;
    v1::ApproveNodeRequest request;
    request.set_node_id(node);
    v1::ApproveNodeResponse response;
    ASSERT_TRUE(op->ApproveNode(&ctx, request, &response).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::PutPolicyRequest request;
    request.set_yaml(PolicyYaml(1));
    v1::PutPolicyResponse response;
    ASSERT_TRUE(op->PutPolicy(&ctx, request, &response).ok());
  }
  grpc::ClientContext ctx;
  v1::ListAuditRequest request;
  request.set_page_size(2);
  v1::ListAuditResponse page;
  grpc::Status st = Stub("auditor")->ListAudit(&ctx, request, &page);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(page.records_size(), 2);
  EXPECT_EQ(page.records(0).action(), "policy.put");
  EXPECT_EQ(page.records(1).action(), "node.approve");
  EXPECT_EQ(page.records(1).target(), node);
  ASSERT_FALSE(page.next_page_token().empty());
  grpc::ClientContext next_ctx;
  request.set_page_token(page.next_page_token());
  st = Stub("auditor")->ListAudit(&next_ctx, request, &page);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(page.records_size(), 1);
  EXPECT_EQ(page.records(0).action(), "node.revoke");
  EXPECT_EQ(page.records(0).target(), node);
  EXPECT_EQ(page.records(0).detail(), "decommissioned");
  EXPECT_EQ(page.records(0).actor(), "operator/operator");
  EXPECT_GT(page.records(0).time_unix_nano(), 0);
  EXPECT_TRUE(page.next_page_token().empty());

  // A malformed id is refused and neither revoked nor audited.
  grpc::ClientContext bad_ctx;
  v1::RevokeNodeRequest bad;
  bad.set_node_id("XYZ");
  v1::RevokeNodeResponse response;
  EXPECT_EQ(op->RevokeNode(&bad_ctx, bad, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(RevokedCalls().size(), 1u);
  EXPECT_EQ(store_->ListAudit(0, "")->records.size(), 3u);
}

// vigilctl and the served calls agree: admission exit codes (0 allow, 1 deny), the EAR
// token checked with the verifier's own JWKS, and a refused policy naming line and column.
TEST_F(FleetServiceTest, VigilctlAgreesWithTheServedCalls) {
  const std::string node = FleetNodeId('a');
  v1::Verdict verdict =
      FleetVerdict(node, v1::TRUST_AFFIRMING, absl::Now(), {{"agent", v1::TRUST_AFFIRMING}});
  absl::StatusOr<std::string> token = signer_->SignVerdict(verdict);
  ASSERT_TRUE(token.ok()) << token.status();
  verdict.set_ear_token(*token);
  ASSERT_NO_FATAL_FAILURE(Record(node, verdict));
  Stub("orchestrator");  // issues client-fleet-orchestrator.crt/.key into the PKI directory

  const std::string vigilctl = vigil::testing::BuildDir() + "/cli/vigilctl";
  const std::string out = dir_ + "/vigilctl.out";
  auto run = [&](const std::string& args, const std::string& client) {
    const std::string connect =
        " --verifier " + verifier_->address() + " --pki-dir " + pki_->dir() + " --client " + client;
    const int status =
        std::system((vigilctl + " " + args + connect + " >" + out + " 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  auto output = [&] {
    std::ifstream in(out);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };

  ASSERT_EQ(
      run("admission check --json --node " + node + " --workload agent", "fleet-orchestrator"), 0)
      << output();
  nlohmann::json decision = nlohmann::json::parse(output(), nullptr, false);
  ASSERT_FALSE(decision.is_discarded()) << output();
  EXPECT_EQ(decision["decision"], "allow");
  EXPECT_EQ(decision["ear_token"], *token);
  EXPECT_EQ(run("admission check --node " + node + " --workload nosuch", "fleet-orchestrator"), 1)
      << output();
  EXPECT_NE(output().find("workload nosuch is not in"), std::string::npos) << output();
  EXPECT_EQ(run("admission check --node " + FleetNodeId('b'), "fleet-orchestrator"), 1);

  EXPECT_EQ(run("ear verify " + *token, "fleet-orchestrator"), 0) << output();
  EXPECT_NE(output().find(node), std::string::npos) << output();

  const std::string bad = dir_ + "/bad.yaml";
  std::string yaml = PolicyYaml(1);
  yaml.replace(yaml.find("kind: no_new_privs"), 18, "kind: no_such_kind");
  std::ofstream(bad) << yaml;
  EXPECT_EQ(run("policy apply " + bad, TestPki::kClientName), 1);
  EXPECT_NE(output().find("line 12, column 13"), std::string::npos) << output();
}

}  // namespace
}  // namespace vigil::verifier
