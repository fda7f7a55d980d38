#include "cli/status_command.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tests/cli/fake_fleet.h"

namespace vigil::cli {
namespace {

using testing::CannedVerdict;
using testing::NodeId;

constexpr int64_t kNow = 1'780'000'000'000'000'000;

v1::ListNodesResponse Fleet() {
  v1::ListNodesResponse nodes;
  v1::NodeSummary* a = nodes.add_nodes();
  a->set_node_id(NodeId('a'));
  a->set_hostname("worker-1");
  a->set_connected(true);
  a->set_enrolled(true);
  a->set_last_seen_unix_nano(kNow - 4'000'000'000);
  *a->mutable_latest_verdict() = CannedVerdict(NodeId('a'), kNow - 4'000'000'000);
  v1::NodeSummary* b = nodes.add_nodes();
  b->set_node_id(NodeId('b'));
  b->set_hostname("worker-2");
  b->set_last_seen_unix_nano(kNow - 180'000'000'000);
  b->mutable_latest_verdict()->set_status(v1::TRUST_WARNING);
  v1::NodeSummary* c = nodes.add_nodes();
  c->set_node_id(NodeId('c'));
  c->set_revoked(true);
  return nodes;
}

TEST(StatusCommandTest, TableShowsNodesWorkloadsAndFailingRulesAligned) {
  std::ostringstream out;
  PrintStatus(Fleet(), absl::FromUnixNanos(kNow), /*color=*/false, out);
  EXPECT_EQ(out.str(),
            "NODE          HOSTNAME  CONNECTED  STATUS           AGE    WORKLOAD  "
            "WORKLOAD_STATUS  FAILING_RULES\n"
            "aaaaaaaaaaaa  worker-1  yes        CONTRAINDICATED  4s     agent     "
            "CONTRAINDICATED  seccomp-denies-ptrace [NIST-800-53r5:AC-6(10)]\n"
            "                                                           runner    "
            "AFFIRMING        -\n"
            "bbbbbbbbbbbb  worker-2  no         WARNING          3m     -         "
            "-                -\n"
            "cccccccccccc  -         revoked    UNAPPRAISED      never  -         "
            "-                -\n");
}

TEST(StatusCommandTest, ColoursStatusesOnlyWhenAsked) {
  std::ostringstream plain, coloured;
  PrintStatus(Fleet(), absl::FromUnixNanos(kNow), /*color=*/false, plain);
  PrintStatus(Fleet(), absl::FromUnixNanos(kNow), /*color=*/true, coloured);
  EXPECT_EQ(plain.str().find('\033'), std::string::npos);
  EXPECT_NE(coloured.str().find("\033[31mCONTRAINDICATED\033[0m"), std::string::npos);
  EXPECT_NE(coloured.str().find("\033[32mAFFIRMING\033[0m"), std::string::npos);
  EXPECT_NE(coloured.str().find("\033[33mWARNING\033[0m"), std::string::npos);
  // Colour codes take no column: removing them gives the plain table back.
  std::string stripped = coloured.str();
  for (const char* code : {"\033[31m", "\033[32m", "\033[33m", "\033[0m"}) {
    for (size_t p; (p = stripped.find(code)) != std::string::npos;) {
      stripped.erase(p, std::string(code).size());
    }
  }
  EXPECT_EQ(stripped, plain.str());
}

TEST(StatusCommandTest, RulesListEveryFailingRuleWithObservedExpectedAndControls) {
  std::ostringstream out;
  PrintFailingRules(Fleet(), out);
  const std::string text = out.str();
  EXPECT_EQ(text.rfind("aaaaaaaaaaaa agent: seccomp-denies-ptrace (CONTRAINDICATED)\n", 0), 0u)
      << text;
  EXPECT_NE(text.find("    observed: ptrace allowed\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    controls: NIST-800-53r5:AC-6(10)"), std::string::npos) << text;
  // Passing workloads and nodes without workloads list nothing.
  EXPECT_EQ(text.find("runner"), std::string::npos) << text;
}

TEST(StatusCommandTest, WorkloadsSharingANameAreToldApartByExecutable) {
  v1::ListNodesResponse nodes = Fleet();
  v1::Verdict* v = nodes.mutable_nodes(0)->mutable_latest_verdict();
  v->mutable_workloads(0)->mutable_identity()->set_exe_path("/opt/bin/naive-agent");
  v->mutable_workloads(1)->mutable_identity()->set_name("agent");
  v->mutable_workloads(1)->mutable_identity()->set_exe_path("/opt/bin/hardened-agent");
  std::ostringstream out;
  PrintStatus(nodes, absl::FromUnixNanos(kNow), /*color=*/false, out);
  EXPECT_NE(out.str().find("agent (naive-agent)"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("agent (hardened-agent)"), std::string::npos) << out.str();
}

class StatusCommandFleetTest : public testing::FakeFleetTest {};

TEST_F(StatusCommandFleetTest, JsonIsTheListNodesResponse) {
  fleet_.nodes = Fleet();
  std::ostringstream out, err;
  ASSERT_EQ(RunStatus(Connection(), /*json=*/true, /*rules=*/false, out, err), 0) << err.str();
  const nlohmann::json json = nlohmann::json::parse(out.str());
  ASSERT_EQ(json["nodes"].size(), 3u);
  EXPECT_EQ(json["nodes"][0]["node_id"], NodeId('a'));
  EXPECT_EQ(json["nodes"][0]["latest_verdict"]["status"], "TRUST_CONTRAINDICATED");
  const nlohmann::json& rule = json["nodes"][0]["latest_verdict"]["workloads"][0]["rules"][0];
  EXPECT_EQ(rule["rule_id"], "seccomp-denies-ptrace");
  EXPECT_EQ(rule["controls"][0], "NIST-800-53r5:AC-6(10)");
  EXPECT_EQ(rule["observed"], "ptrace allowed");
  EXPECT_EQ(json["nodes"][2]["revoked"], true);
  // Zero values are printed too, so consumers need no defaults.
  EXPECT_EQ(json["nodes"][1]["connected"], false);
  EXPECT_EQ(fleet_.CallCount("ListNodes"), 1);
}

TEST_F(StatusCommandFleetTest, BinaryPrintsTheTableWithoutColourToAPipe) {
  fleet_.nodes = Fleet();
  std::string out, err;
  ASSERT_EQ(RunVigilctl("status" + ConnectionFlags(), &out, &err), 0) << err;
  EXPECT_EQ(out.rfind("NODE ", 0), 0u) << out;
  EXPECT_NE(out.find("seccomp-denies-ptrace [NIST-800-53r5:AC-6(10)]"), std::string::npos) << out;
  EXPECT_EQ(out.find('\033'), std::string::npos);
}

}  // namespace
}  // namespace vigil::cli
