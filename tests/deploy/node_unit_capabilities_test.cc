// The real vigil-node with exactly the capability bounding set of
// deploy/systemd/vigil-node.service (read from the unit file, as systemd gives it to a root
// service), and with each of those capabilities taken away in turn. With the unit's set,
// `vigil-node inspect` of a demo agent sees everything (no gap, the seccomp filter read back)
// and `vigil-node watch` loads and attaches the probes; without any one of the capabilities
// these single-process commands use, one of the two loses something (the ones only `run`
// needs when it splits by privilege are tests/integration/node_privsep_test.cc's). Needs root
// and setpriv(1) (util-linux).
//
// The agent runs from a copy owned by another user with mode 0711, like a workload binary
// whose file the node cannot read without CAP_DAC_READ_SEARCH.

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/demo_agent.h"
#include "tests/testing/node_unit.h"
#include "tests/testing/program_run.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

using ::vigil::testing::DemoAgent;
using ::vigil::testing::ProgramRun;
using ::vigil::testing::ReadWholeFile;
using ::vigil::testing::RunProgram;
using ::vigil::testing::TestTempDir;

constexpr uid_t kOtherUser = 65534;

class NodeUnitCapabilitiesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root: BPF, ptrace and procfs of other processes";
    caps_ = vigil::testing::NodeUnitCapabilities();
    ASSERT_FALSE(caps_.empty()) << "vigil-node.service has no CapabilityBoundingSet=";
    absl::StatusOr<TestTempDir> dir = TestTempDir::Create("node-unit-caps");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
    agent_path_ = dir_.path() + "/vigil-unit-caps-agent";
    std::filesystem::copy_file(DemoAgent::BuiltPath("vigil-demo-hardened-agent"), agent_path_);
    ASSERT_EQ(chown(agent_path_.c_str(), kOtherUser, kOtherUser), 0);
    ASSERT_EQ(chmod(agent_path_.c_str(), 0711), 0);
    agent_ = std::make_unique<DemoAgent>(agent_path_);
    ASSERT_GT(agent_->pid(), 0);
    ASSERT_NE(agent_->ReadyLine(), "") << "the demo agent died during its setup";
  }

  // vigil-node `args` with the bounding set `caps` and no_new_privs, as the unit runs it.
  ProgramRun RunNode(const std::vector<std::string>& caps, std::vector<std::string> args,
                     const std::string& tag) {
    std::vector<std::string> argv = vigil::testing::SetprivWithCapabilities(caps);
    argv.push_back(vigil::testing::BuildDir() + "/node/vigil-node");
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out = dir_.path() + "/" + tag;
    std::filesystem::create_directories(out);
    return RunProgram(argv, out);
  }

  ProgramRun Inspect(const std::vector<std::string>& caps, const std::string& tag) {
    return RunNode(caps, {"inspect", "--pid", std::to_string(agent_->pid())}, "inspect-" + tag);
  }

  ProgramRun Watch(const std::vector<std::string>& caps, const std::string& tag) {
    return RunNode(caps, {"watch", "--select", "exe=" + agent_path_, "--duration", "2"},
                   "watch-" + tag);
  }

  // What inspect could not see: its "gap" lines (on stderr) and filters it could not read.
  static std::vector<std::string> Losses(const ProgramRun& run) {
    std::vector<std::string> lost;
    for (absl::string_view line : absl::StrSplit(run.out + run.err, '\n')) {
      if (absl::StartsWith(line, "gap ") || absl::StrContains(line, "not inspected")) {
        lost.emplace_back(line);
      }
    }
    return lost;
  }

  std::vector<std::string> caps_;
  TestTempDir dir_;
  std::string agent_path_;
  std::unique_ptr<DemoAgent> agent_;
};

TEST_F(NodeUnitCapabilitiesTest, InspectSeesEverythingWithTheUnitsCapabilities) {
  ProgramRun run = Inspect(caps_, "unit");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(Losses(run), std::vector<std::string>{}) << run.out << run.err;
  EXPECT_TRUE(absl::StrContains(run.out, agent_path_ + "  sha256 ")) << run.out;
  EXPECT_FALSE(absl::StrContains(run.out, agent_path_ + "  sha256 \n")) << run.out;
  // The filter itself was read back and evaluated, not only counted.
  EXPECT_TRUE(absl::StrContains(run.out, "x86_64 ERRNO(1)")) << run.out;
}

TEST_F(NodeUnitCapabilitiesTest, WatchLoadsTheProbesWithTheUnitsCapabilities) {
  ProgramRun run = Watch(caps_, "unit");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // The summary goes to stderr: "active hooks (29): tracepoint/syscalls/...".
  EXPECT_TRUE(absl::StrContains(run.err, "active hooks (")) << run.err;
  EXPECT_FALSE(absl::StrContains(run.err, "active hooks (0)")) << run.err;
}

// Each capability the single-process commands need; the ones only `run` split by privilege
// needs are shown needed by tests/integration/node_privsep_test.cc.
TEST_F(NodeUnitCapabilitiesTest, EachCapabilityOfTheUnitIsNeeded) {
  const std::vector<std::string> split_only = vigil::testing::CapabilitiesOnlyTheSplitNeeds();
  for (const std::string& c : split_only) {
    EXPECT_NE(std::find(caps_.begin(), caps_.end(), c), caps_.end())
        << c << " is not in the unit's set";
  }
  for (const std::string& dropped : caps_) {
    if (std::find(split_only.begin(), split_only.end(), dropped) != split_only.end()) continue;
    SCOPED_TRACE("without " + dropped);
    std::vector<std::string> fewer;
    for (const std::string& c : caps_) {
      if (c != dropped) fewer.push_back(c);
    }
    ProgramRun inspect = Inspect(fewer, "no-" + dropped);
    ProgramRun watch = Watch(fewer, "no-" + dropped);
    const bool inspect_lost = inspect.exit_code != 0 || !Losses(inspect).empty();
    EXPECT_TRUE(inspect_lost || watch.exit_code != 0)
        << "inspect and watch lose nothing without " << dropped << ":\n"
        << inspect.out << inspect.err << watch.err;
  }
}

TEST_F(NodeUnitCapabilitiesTest, NoCapabilitiesLoadsNoProbes) {
  ProgramRun run = Watch({}, "none");
  EXPECT_NE(run.exit_code, 0) << run.out;
}

}  // namespace
}  // namespace vigil::node
