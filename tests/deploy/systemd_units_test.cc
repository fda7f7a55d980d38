// deploy/systemd/*.service checked offline with the real systemd-analyze(1) (PID 1 need not
// be systemd): `verify` accepts each unit with no warning at all (an unknown directive or a
// misspelt value is a warning, not an error, for systemd), and `security --offline=true`
// scores each unit's exposure no higher than docs/deploy.md states. The units run the
// binaries of this build, so verify also checks that ExecStart names an executable.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/str_replace.h"
#include "tests/testing/program_run.h"
#include "tests/testing/temp_dir.h"

namespace vigil::deploy {
namespace {

using ::vigil::testing::ProgramRun;
using ::vigil::testing::ReadWholeFile;
using ::vigil::testing::RunProgram;
using ::vigil::testing::TestTempDir;

// The parameter is the unit's name without ".service"; its binary is build/<component>/<name>.
class SystemdUnitsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<TestTempDir> dir = TestTempDir::Create("systemd-units");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
    const std::string name = GetParam();
    std::string text =
        ReadWholeFile(std::string(VIGIL_SOURCE_DIR) + "/deploy/systemd/" + name + ".service");
    ASSERT_NE(text, "");
    const std::string installed = "/usr/local/bin/" + name;
    ASSERT_NE(text.find("ExecStart=" + installed + " "), std::string::npos);
    text = absl::StrReplaceAll(
        text, {{installed, std::string(VIGIL_BUILD_DIR) + "/" + name.substr(6) + "/" + name}});
    unit_ = dir_.path() + "/" + name + ".service";
    std::ofstream(unit_) << text;
  }

  TestTempDir dir_;
  std::string unit_;
};

TEST_P(SystemdUnitsTest, VerifyFindsNothing) {
  ProgramRun run = RunProgram({"/usr/bin/systemd-analyze", "verify", unit_}, dir_.path());
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.out, "");
}

TEST_P(SystemdUnitsTest, ExposureIsNoHigherThanDocumented) {
  ProgramRun run = RunProgram(
      {"/usr/bin/systemd-analyze", "security", "--offline=true", "--no-pager", unit_}, dir_.path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string name = GetParam() + ".service";
  std::smatch m;
  const std::regex overall("Overall exposure level for " + name + ": ([0-9]+\\.[0-9])");
  ASSERT_TRUE(std::regex_search(run.out, m, overall)) << run.out;
  const double measured = std::stod(m[1]);

  // docs/deploy.md's table row: "| `vigil-node.service` | 5.1 MEDIUM | ..."
  const std::string docs = ReadWholeFile(std::string(VIGIL_SOURCE_DIR) + "/docs/deploy.md");
  std::smatch d;
  const std::regex row("\\| `" + name + "` \\| ([0-9]+\\.[0-9]) ");
  ASSERT_TRUE(std::regex_search(docs, d, row)) << "docs/deploy.md gives no score for " << name;
  EXPECT_LE(measured, std::stod(d[1])) << run.out;
}

INSTANTIATE_TEST_SUITE_P(Units, SystemdUnitsTest, ::testing::Values("vigil-node", "vigil-verifier"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "vigil-node" ? "Node" : "Verifier";
                         });

}  // namespace
}  // namespace vigil::deploy
