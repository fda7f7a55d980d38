#include "cli/nodes_command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/cli/fake_fleet.h"

namespace vigil::cli {
namespace {

v1::ListNodesResponse TwoNodes() {
  v1::ListNodesResponse nodes;
  v1::NodeSummary* a = nodes.add_nodes();
  a->set_node_id(std::string(64, 'a'));
  a->set_hostname("worker-1");
  a->set_enrolled(true);
  a->set_connected(true);
  a->mutable_latest_verdict()->set_status(v1::TRUST_CONTRAINDICATED);
  a->mutable_latest_verdict()->add_reasons(v1::POLICY_VIOLATION);
  a->mutable_latest_verdict()->set_tpm_simulated(true);
  a->set_last_seen_unix_nano(1'700'000'000'000'000'000);
  v1::NodeSummary* b = nodes.add_nodes();
  b->set_node_id(std::string(64, 'b'));
  b->set_revoked(true);
  return nodes;
}

TEST(NodesCommandTest, JsonListsEveryFieldOperatorsFilterOn) {
  std::ostringstream out;
  PrintNodes(TwoNodes(), /*json=*/true, out);
  const nlohmann::json parsed = nlohmann::json::parse(out.str());
  ASSERT_TRUE(parsed.is_array());
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0]["node_id"], std::string(64, 'a'));
  EXPECT_EQ(parsed[0]["hostname"], "worker-1");
  EXPECT_EQ(parsed[0]["enrolled"], true);
  EXPECT_EQ(parsed[0]["connected"], true);
  EXPECT_EQ(parsed[0]["status"], "CONTRAINDICATED");
  EXPECT_EQ(parsed[0]["reasons"], nlohmann::json::array({"POLICY_VIOLATION"}));
  EXPECT_EQ(parsed[0]["last_seen"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(parsed[0]["revoked"], false);
  EXPECT_EQ(parsed[1]["revoked"], true);
  EXPECT_EQ(parsed[0]["tpm_simulated"], true);
  EXPECT_EQ(parsed[1]["tpm_simulated"], false);
  EXPECT_EQ(parsed[1]["status"], "UNAPPRAISED");  // never reported
  EXPECT_EQ(parsed[1]["last_seen"], "never");
  EXPECT_EQ(parsed[1]["connected"], false);
}

TEST(NodesCommandTest, TableHasOneRowPerNode) {
  std::ostringstream out;
  PrintNodes(TwoNodes(), /*json=*/false, out);
  const std::string table = out.str();
  EXPECT_EQ(table.rfind("NODE_ID", 0), 0u);
  EXPECT_NE(table.find(std::string(64, 'a') + "  worker-1"), std::string::npos) << table;
  EXPECT_NE(table.find("CONTRAINDICATED"), std::string::npos);
  EXPECT_NE(table.find(std::string(64, 'b') + "  -"), std::string::npos) << table;
  EXPECT_NE(table.find("REVOKED"), std::string::npos) << table;
  EXPECT_NE(table.find("SIMULATED"), std::string::npos) << table;
  EXPECT_NE(table.find("worker-1  yes       yes        no       yes        CONTRAINDICATED"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("-         no        no         yes      -          UNAPPRAISED      never"),
            std::string::npos)
      << table;
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 3);
}

TEST(NodesCommandTest, ConnectionNeedsCompleteCredentials) {
  FleetConnectionOptions options;
  EXPECT_EQ(ConnectFleet(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.client = "alice";
  EXPECT_EQ(ConnectFleet(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.client.clear();
  options.pki_dir = "/nonexistent";
  EXPECT_EQ(ConnectFleet(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.client = "alice";
  // The files do not exist: the error names the path.
  absl::Status st = ConnectFleet(options).status();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent/ca.crt"), absl::string_view::npos) << st;
}

class NodesCommandFleetTest : public testing::FakeFleetTest {};

constexpr int64_t kAppraised = 1'780'000'000'000'000'000;

TEST_F(NodesCommandFleetTest, ShowPrintsTrustVectorWorkloadsAndEveryRuleOutcome) {
  v1::GetNodeResponse node;
  node.mutable_node()->set_node_id(testing::NodeId('a'));
  node.mutable_node()->set_hostname("worker-1");
  node.mutable_node()->set_enrolled(true);
  *node.mutable_node()->mutable_latest_verdict() =
      testing::CannedVerdict(testing::NodeId('a'), kAppraised);
  node.set_ek_trust("approved");
  node.set_enrolled_unix_nano(kAppraised - 3'600'000'000'000);
  fleet_.node_details[testing::NodeId('a')] = node;

  std::ostringstream out, err;
  ASSERT_EQ(RunNodesShow(Connection(), testing::NodeId('a'), /*json=*/false, out, err), 0)
      << err.str();
  const std::string text = out.str();
  EXPECT_NE(text.find("EK trusted by approved"), std::string::npos) << text;
  EXPECT_NE(text.find("configuration      96     contraindicated"), std::string::npos) << text;
  EXPECT_NE(text.find("sourced_data       32     warning"), std::string::npos) << text;
  EXPECT_NE(text.find("workload agent  CONTRAINDICATED"), std::string::npos) << text;
  // Every outcome, each process's own line, with observed, expected and every control.
  EXPECT_NE(text.find("  seccomp-denies-ptrace  100  CONTRAINDICATED  ptrace allowed  ptrace "
                      "denied  NIST-800-53r5:AC-6(10), ISO27001:2022:A.8.2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  seccomp-denies-ptrace  101  CONTRAINDICATED"), std::string::npos);
  EXPECT_NE(text.find("  no-new-privs           -    AFFIRMING        set"), std::string::npos)
      << text;
  EXPECT_NE(text.find("workload runner  AFFIRMING"), std::string::npos) << text;
  ASSERT_EQ(fleet_.Requests<v1::GetNodeRequest>("GetNode").size(), 1u);
  EXPECT_EQ(fleet_.Requests<v1::GetNodeRequest>("GetNode")[0].node_id(), testing::NodeId('a'));

  std::ostringstream json_out;
  ASSERT_EQ(RunNodesShow(Connection(), testing::NodeId('a'), /*json=*/true, json_out, err), 0);
  const nlohmann::json json = nlohmann::json::parse(json_out.str());
  EXPECT_EQ(json["ek_trust"], "approved");
  EXPECT_EQ(json["node"]["latest_verdict"]["trust_vector"]["configuration"], 96);
  EXPECT_EQ(json["node"]["latest_verdict"]["workloads"][0]["rules"][0]["expected"],
            "ptrace denied");
}

TEST_F(NodesCommandFleetTest, UnknownNodeIsAClearNotFound) {
  std::string out, err;
  EXPECT_EQ(RunVigilctl("nodes show " + testing::NodeId('d') + ConnectionFlags(), &out, &err), 1);
  EXPECT_EQ(err, "vigilctl: GetNode: NOT_FOUND: the verifier knows no node " +
                     testing::NodeId('d') + " (verifier: unknown node " + testing::NodeId('d') +
                     ")\n");
  EXPECT_EQ(out, "");
}

TEST_F(NodesCommandFleetTest, RevokeSendsTheReason) {
  fleet_.node_details[testing::NodeId('a')] = v1::GetNodeResponse();
  std::string out, err;
  ASSERT_EQ(RunVigilctl("nodes revoke " + testing::NodeId('a') + " --reason 'disk image tampered'" +
                            ConnectionFlags(),
                        &out, &err),
            0)
      << err;
  EXPECT_EQ(out, "revoked node " + testing::NodeId('a') + "\n");
  const auto requests = fleet_.Requests<v1::RevokeNodeRequest>("RevokeNode");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].node_id(), testing::NodeId('a'));
  EXPECT_EQ(requests[0].reason(), "disk image tampered");

  EXPECT_EQ(RunVigilctl("nodes revoke " + testing::NodeId('e') + ConnectionFlags(), &out, &err), 1);
  EXPECT_NE(err.find("NOT_FOUND: the verifier knows no node " + testing::NodeId('e')),
            std::string::npos)
      << err;
  EXPECT_EQ(RunVigilctl("nodes revoke not-a-node" + ConnectionFlags(), &out, &err), 2);
  EXPECT_EQ(fleet_.CallCount("RevokeNode"), 2);
}

TEST_F(NodesCommandFleetTest, RoleRefusalNamesTheCertificatesRoleAndTheNeededOnes) {
  ASSERT_TRUE(pki_->IssueClient("grc", "auditor").ok());
  fleet_.errors["RevokeNode"] =
      grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "role not allowed");
  FleetConnectionOptions connection = Connection();
  connection.client = "grc";
  std::ostringstream out, err;
  EXPECT_EQ(RunNodesRevoke(connection, testing::NodeId('a'), "", out, err), 1);
  EXPECT_EQ(err.str(), "vigilctl: RevokeNode: PERMISSION_DENIED: the client certificate " +
                           pki_->dir() +
                           "/client-grc.crt has role auditor; RevokeNode needs operator "
                           "(verifier: role not allowed)\n");
  EXPECT_EQ(out.str(), "");
}

TEST_F(NodesCommandFleetTest, UnreachableVerifierIsNamed) {
  FleetConnectionOptions connection = Connection();
  const std::string address = verifier_->address();
  verifier_->Stop();
  std::ostringstream out, err;
  EXPECT_EQ(RunNodesList(connection, /*json=*/false, out, err), 1);
  EXPECT_EQ(
      err.str().rfind("vigilctl: cannot reach the verifier at " + address + " (ListNodes: ", 0), 0u)
      << err.str();
}

}  // namespace
}  // namespace vigil::cli
