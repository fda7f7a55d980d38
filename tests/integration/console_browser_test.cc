// The web console in a real browser: the real vigil-verifier with --console-listen, a real
// node on swtpm reporting a hardened demo agent under the strict policy, and Debian's
// chromium (headless, driven over the DevTools protocol by console_browser.py) signed in
// with a token from `vigilctl console token`. The fleet table must match what the Fleet API
// says; a policy violation (the naive demo agent starting) must turn the node's row
// contraindicated without a reload, naming the same failing rules and controls as a stored
// verdict; the node's timeline must show both statuses; the OSCAL link must download the
// export. Screenshots land in <build>/console-screenshots/.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/demo_agent.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/program_run.h"
#include "tests/testing/temp_dir.h"

namespace vigil {
namespace {

using testing::Fabric;

// Copies a built demo agent into `dir` under its own name (which the strict policy's
// selectors match), so the node here selects only this test's agents.
std::string CopyAgent(const std::string& target, const std::string& dir) {
  const std::string to = dir + "/" + target;
  std::filesystem::copy_file(testing::DemoAgent::BuiltPath(target), to);
  std::filesystem::permissions(to, std::filesystem::perms::owner_all);
  return to;
}

// The failing rule ids of one verdict (the rows' "failing rules" column).
std::set<std::string> FailingRules(const v1::Verdict& verdict) {
  std::set<std::string> out;
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    for (const v1::RuleOutcome& r : w.rules()) {
      if (r.status() == v1::TRUST_WARNING || r.status() == v1::TRUST_CONTRAINDICATED) {
        out.insert(r.rule_id());
      }
    }
  }
  return out;
}

std::set<std::string> Controls(const v1::Verdict& verdict) {
  std::set<std::string> out;
  for (const v1::RuleOutcome& r : verdict.rules()) {
    if (r.status() == v1::TRUST_WARNING || r.status() == v1::TRUST_CONTRAINDICATED) {
      out.insert(r.controls().begin(), r.controls().end());
    }
  }
  return out;
}

std::set<std::string> StringSet(const nlohmann::json& array) {
  std::set<std::string> out;
  for (const nlohmann::json& s : array) out.insert(s.get<std::string>());
  return out;
}

TEST(ConsoleBrowserTest, TheTableShowsTheFleetAndAViolationTurnsTheRowLive) {
  absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("console");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string agents = dir->path() + "/agents";
  std::filesystem::create_directory(agents);
  const std::string hardened_path = CopyAgent("vigil-demo-hardened-agent", agents);
  const std::string naive_path = CopyAgent("vigil-demo-naive-agent", agents);

  // The strict policy, selecting this test's copies of the agents only: its own selectors
  // would also select demo agents that other tests run on this machine.
  std::string policy =
      testing::ReadWholeFile(testing::SourceDir() + "/deploy/policies/strict.yaml");
  const std::string selectors =
      "        - exe=*/vigil-demo-hardened-agent\n"
      "        - exe=*/vigil-demo-naive-agent\n"
      "        - exe=/opt/agents/*\n";
  const size_t at = policy.find(selectors);
  ASSERT_NE(at, std::string::npos) << policy;
  policy.replace(at, selectors.size(), absl::StrCat("        - exe=", agents, "/*\n"));
  const std::string policy_path = dir->path() + "/strict.yaml";
  std::ofstream(policy_path) << policy;

  Fabric::Options options;
  options.verifier_args = {"--policy", policy_path, "--console-listen", "127.0.0.1:0"};
  options.node_args = {"--select", absl::StrCat("exe=", agents, "/*")};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;

  // The console's port, from the verifier's log line "web console on https://127.0.0.1:PORT/"
  // (written right after the gRPC listener the fixture waited for).
  const std::string verifier_log =
      std::filesystem::path(f.db_path()).parent_path().string() + "/verifier.log";
  const std::regex line("web console on https://127\\.0\\.0\\.1:([0-9]+)/");
  std::smatch bound;
  std::string logs = testing::ReadWholeFile(verifier_log);
  for (int i = 0; i < 100 && !std::regex_search(logs, bound, line); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    logs = testing::ReadWholeFile(verifier_log);
  }
  ASSERT_TRUE(std::regex_search(logs, bound, line)) << logs;
  const std::string url = absl::StrCat("https://127.0.0.1:", bound[1].str());

  // The hardened agent only: the node is affirming.
  testing::DemoAgent hardened(hardened_path);
  ASSERT_FALSE(hardened.ReadyLine().empty());
  ASSERT_TRUE(f.StartNode().ok());
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status() << f.Logs();

  // What the page must show, from the Fleet API.
  v1::GetNodeResponse node;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    v1::GetNodeRequest request;
    request.set_node_id(*node_id);
    ASSERT_TRUE(f.fleet().GetNode(&ctx, request, &node).ok());
  }
  v1::ListNodesResponse nodes;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    ASSERT_TRUE(f.fleet().ListNodes(&ctx, v1::ListNodesRequest(), &nodes).ok());
  }
  ASSERT_EQ(node.node().latest_verdict().status(), v1::TRUST_AFFIRMING);
  nlohmann::json workloads = nlohmann::json::array();
  for (const v1::WorkloadVerdict& w : node.node().latest_verdict().workloads()) {
    workloads.push_back(w.identity().name());
  }
  ASSERT_FALSE(workloads.empty());
  const nlohmann::json expect{{"node_id", *node_id},         {"hostname", node.node().hostname()},
                              {"status", "affirming"},       {"workloads", workloads},
                              {"nodes", nodes.nodes_size()}, {"viewer", "auditor-ann"}};
  const std::string expect_path = dir->path() + "/expect.json";
  std::ofstream(expect_path) << expect.dump();

  // An auditor signs in with a token minted offline by vigilctl.
  ASSERT_TRUE(f.pki().IssueClient("auditor-ann", "auditor").ok());
  absl::StatusOr<std::string> link = testing::RunForOutput(
      {testing::BuildDir() + "/cli/vigilctl", "console", "token", "--pki-dir", f.pki().dir(),
       "--client", "auditor-ann", "--lifetime", "5m", "--url", url});
  ASSERT_TRUE(link.ok()) << link.status();
  ASSERT_EQ(link->rfind(url + "/#token=", 0), 0u) << *link;

  const std::string screenshots = testing::BuildDir() + "/console-screenshots";
  std::filesystem::create_directories(screenshots);
  const std::string run_dir = dir->path() + "/browser";
  std::filesystem::create_directory(run_dir);
  const testing::ProgramRun browser = testing::RunProgram(
      {"/usr/bin/python3", testing::SourceDir() + "/tests/integration/console_browser.py", "--url",
       link->substr(0, link->find('\n')), "--server-cert", f.pki().dir() + "/verifier.crt",
       "--expect", expect_path, "--violation", naive_path, "--out", screenshots},
      run_dir);
  ASSERT_EQ(browser.exit_code, 0) << browser.out << browser.err << f.Logs();
  const nlohmann::json shown = nlohmann::json::parse(browser.out, nullptr, false);
  ASSERT_TRUE(shown.is_object()) << browser.out;

  // The row turned contraindicated, naming the failing rules and controls of a stored
  // contraindicated verdict of this node.
  EXPECT_EQ(shown["before"]["status"], "affirming");
  EXPECT_EQ(shown["after"]["status"], "contraindicated");
  const std::set<std::string> rules = StringSet(shown["after"]["rules"]);
  const std::set<std::string> controls = StringSet(shown["after"]["controls"]);
  EXPECT_FALSE(rules.empty());
  v1::ListVerdictsResponse history;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    v1::ListVerdictsRequest request;
    request.set_node_id(*node_id);
    request.add_statuses(v1::TRUST_CONTRAINDICATED);
    request.set_page_size(1000);
    ASSERT_TRUE(f.fleet().ListVerdicts(&ctx, request, &history).ok());
  }
  bool matched = false;
  for (const v1::Verdict& v : history.verdicts()) {
    if (FailingRules(v) == rules && Controls(v) == controls) matched = true;
  }
  EXPECT_TRUE(matched) << "the row showed rules " << shown["after"]["rules"] << " and controls "
                       << shown["after"]["controls"] << "; no stored verdict has exactly these";

  // The timeline shows the change; the OSCAL link downloads the export.
  const std::set<std::string> timeline = StringSet(shown["timeline"]);
  EXPECT_TRUE(timeline.count("affirming") == 1) << shown["timeline"];
  EXPECT_TRUE(timeline.count("contraindicated") == 1) << shown["timeline"];
  EXPECT_EQ(shown["oscal_download"], "oscal");

  for (const char* png : {"console-fleet.png", "console-fleet-violation.png", "console-node.png"}) {
    std::ifstream in(screenshots + "/" + png, std::ios::binary);
    char magic[8] = {};
    in.read(magic, sizeof(magic));
    EXPECT_EQ(std::string(magic, 8), "\x89PNG\r\n\x1a\n") << png;
  }
}

}  // namespace
}  // namespace vigil
