#include "cli/nodes_command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"

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
  a->set_last_seen_unix_nano(1'700'000'000'000'000'000);
  v1::NodeSummary* b = nodes.add_nodes();
  b->set_node_id(std::string(64, 'b'));
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
  EXPECT_EQ(parsed[1]["status"], "NONE");  // never reported
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

}  // namespace
}  // namespace vigil::cli
