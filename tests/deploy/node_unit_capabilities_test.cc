// The real vigil-node run with exactly the capability bounding set of
// deploy/systemd/vigil-node.service (read from the unit file, as systemd gives it to a root
// service), and with each of those capabilities taken away in turn. With the unit's set,
// `vigil-node inspect` of a demo agent sees everything (no gap, the seccomp filter read back)
// and `vigil-node watch` loads and attaches the probes; without any one capability, one of
// the two loses something. Needs root and setpriv(1) (util-linux).
//
// The agent runs from a copy owned by another user with mode 0711, like a workload binary
// whose file the node cannot read without CAP_DAC_READ_SEARCH.

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

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

// The capabilities of the unit's CapabilityBoundingSet= line, lowercase without "cap_", as
// setpriv(1) names them ("sys_admin").
std::vector<std::string> UnitCapabilities() {
  std::istringstream unit(
      ReadWholeFile(vigil::testing::SourceDir() + "/deploy/systemd/vigil-node.service"));
  std::vector<std::string> caps;
  for (std::string line; std::getline(unit, line);) {
    if (!absl::StartsWith(line, "CapabilityBoundingSet=")) continue;
    for (absl::string_view c :
         absl::StrSplit(line.substr(line.find('=') + 1), ' ', absl::SkipEmpty())) {
      std::string name = absl::AsciiStrToLower(c);
      if (absl::StartsWith(name, "cap_")) name = name.substr(4);
      caps.push_back(name);
    }
  }
  return caps;
}

class NodeUnitCapabilitiesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root: BPF, ptrace and procfs of other processes";
    caps_ = UnitCapabilities();
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
    std::string set = "-all";
    for (const std::string& c : caps) absl::StrAppend(&set, ",+", c);
    std::vector<std::string> argv = {"/usr/bin/setpriv", "--bounding-set=" + set, "--no-new-privs",
                                     vigil::testing::BuildDir() + "/node/vigil-node"};
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

TEST_F(NodeUnitCapabilitiesTest, EachCapabilityOfTheUnitIsNeeded) {
  for (const std::string& dropped : caps_) {
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
