// The workload scope end to end: the real `vigil-node run` on swtpm with BPF probes, split by
// privilege under the systemd unit's capability set and as one process (--single-process),
// with the demo agents. The latest verified report carries each agent's scope: the naive
// agent's shell-out (dash, curl, with their Debian packages), its SQLite WAL database and its
// 0600 secrets file; the hardened agent's own binary and its heartbeat file, and nothing run
// besides it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/node_unit.h"
#include "tests/testing/scope_items.h"

namespace vigil {
namespace {

using ::testing::Contains;
using testing::ExecutableAt;
using testing::Fabric;
using testing::FileReadEndingWith;
using ::testing::IsSupersetOf;
using testing::ScopeOf;
using testing::StorageEndingWith;

// Whether the naive agent's scope shows its shell-out, database and secret (the agent repeats
// them every three seconds, so a node started after it sees them).
bool NaiveComplete(const v1::WorkloadScope* s) {
  if (s == nullptr) return false;
  const v1::ScopeStorage* state = StorageEndingWith(*s, "/naive-agent");
  return ExecutableAt(*s, "/usr/bin/dash") != nullptr && state != nullptr &&
         state->sqlite_databases_size() > 0 && state->sqlite_databases(0).companions_size() >= 2 &&
         FileReadEndingWith(*s, "/naive-agent/api-token") != nullptr;
}

class NodeScopeTest : public ::testing::TestWithParam<bool> {};

TEST_P(NodeScopeTest, ReportsCarryTheDemoAgentsScopes) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: BPF, ptrace, swtpm";
  const bool split = GetParam();
  Fabric::Options options;
  options.demo_agents = true;
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  if (split) {
    ASSERT_TRUE(f.StartNodeUnder(vigil::testing::SetprivWithCapabilities(
                                     vigil::testing::NodeUnitCapabilities()))
                    .ok());
  } else {
    ASSERT_TRUE(f.StartNode({"--single-process"}).ok());
  }
  // One process: the node's self-protection rule is not met, a warning.
  absl::StatusOr<std::string> node_id =
      f.AwaitVerdict(split ? v1::TRUST_AFFIRMING : v1::TRUST_WARNING);
  ASSERT_TRUE(node_id.ok()) << node_id.status() << f.Logs();

  // The latest verified report, once the naive agent's cycle is in it (a generous safety
  // limit; the assertions below say what was missing).
  v1::RuntimeReport report;
  for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(500))) {
    absl::StatusOr<v1::GetLatestEvidenceResponse> latest = f.LatestEvidence(*node_id);
    ASSERT_TRUE(latest.ok()) << latest.status();
    ASSERT_TRUE(report.ParseFromString(latest->evidence().payload()));
    if (NaiveComplete(ScopeOf(report, f.naive_agent_pid()))) break;
  }
  EXPECT_EQ(report.node_self().privilege_separated(), split);

  const v1::WorkloadScope* naive = ScopeOf(report, f.naive_agent_pid());
  ASSERT_NE(naive, nullptr) << report.DebugString();
  EXPECT_THAT(naive->gaps(), ::testing::IsEmpty());
  EXPECT_TRUE(absl::EndsWith(naive->root_exe_path(), "vigil-demo-naive-agent"));
  const v1::ScopeExecutable* dash = ExecutableAt(*naive, "/usr/bin/dash");
  ASSERT_NE(dash, nullptr) << naive->DebugString();
  EXPECT_EQ(dash->package().name(), "dash");
  EXPECT_EQ(dash->sha256().size(), 64u);
  if (access("/usr/bin/curl", X_OK) == 0) {
    const v1::ScopeExecutable* curl = ExecutableAt(*naive, "/usr/bin/curl");
    ASSERT_NE(curl, nullptr) << naive->DebugString();
    EXPECT_EQ(curl->package().name(), "curl");
  }
  bool sh = false;
  for (const v1::ScopeInterpreter& i : naive->interpreters()) sh |= i.kind() == "sh";
  EXPECT_TRUE(sh) << naive->DebugString();
  const v1::ScopeStorage* state = StorageEndingWith(*naive, "/naive-agent");
  ASSERT_NE(state, nullptr) << naive->DebugString();
  ASSERT_EQ(state->sqlite_databases_size(), 1);
  EXPECT_EQ(state->sqlite_databases(0).name(), "agent.db");
  EXPECT_THAT(state->sqlite_databases(0).companions(), IsSupersetOf({"-wal", "-shm"}));
  const v1::ScopeFileRead* secret = FileReadEndingWith(*naive, "/naive-agent/api-token");
  ASSERT_NE(secret, nullptr) << naive->DebugString();
  EXPECT_EQ(secret->classification(), "secret");
  EXPECT_EQ(secret->mode(), 0600u);

  const v1::WorkloadScope* hardened = ScopeOf(report, f.hardened_agent_pid());
  ASSERT_NE(hardened, nullptr) << report.DebugString();
  ASSERT_EQ(hardened->executables_size(), 1) << hardened->DebugString();
  EXPECT_EQ(hardened->executables(0).path(), hardened->root_exe_path());
  EXPECT_TRUE(hardened->interpreters().empty()) << hardened->DebugString();
  EXPECT_TRUE(hardened->files_read().empty()) << hardened->DebugString();
  EXPECT_TRUE(hardened->endpoints().empty()) << hardened->DebugString();
  const v1::ScopeStorage* heartbeat = StorageEndingWith(*hardened, "/hardened-agent");
  ASSERT_NE(heartbeat, nullptr) << hardened->DebugString();
  EXPECT_THAT(heartbeat->files(), Contains("heartbeat"));
  bool libc = false;
  for (const v1::ScopeLibrary& l : hardened->libraries()) {
    libc |= absl::EndsWith(l.path(), "/libc.so.6") && l.package().name() == "libc6";
  }
  EXPECT_TRUE(libc) << hardened->DebugString();
  for (const v1::RuntimeEvent& e : report.events()) {
    EXPECT_FALSE(e.kind() >= v1::EVENT_KIND_OPEN && e.kind() <= v1::EVENT_KIND_MKDIRAT)
        << "file events are in the scope, not in the events: " << e.DebugString();
  }
  EXPECT_TRUE(f.StopNode().ok()) << f.Logs();
}

INSTANTIATE_TEST_SUITE_P(Modes, NodeScopeTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "PrivilegeSeparated" : "SingleProcess";
                         });

}  // namespace
}  // namespace vigil
