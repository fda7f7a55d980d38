// deploy/systemd/*.service checked offline with the real systemd-analyze(1) (PID 1 need not
// be systemd): `verify` accepts each unit with no warning at all (an unknown directive or a
// misspelt value is a warning, not an error, for systemd), and `security --offline=true`
// scores each unit's exposure no higher than docs/deploy.md states. The units run the
// binaries of this build, so verify also checks that ExecStart names an executable.
//
// The verifier unit's SystemCallFilter= is checked against the real verifier: it runs under
// strace(1) as an unprivileged user with no capabilities (as DynamicUser= runs it), starts
// both listeners on port 0 with a PKI, a policy directory and a store, and stops on SIGTERM;
// every system call it made must pass the unit's filter (tests/deploy/syscalls_outside_filter.py).
// Start, idle and shutdown only: enrollment and Attest streams are not driven here.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "tests/testing/build_paths.h"
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
        ReadWholeFile(vigil::testing::SourceDir() + "/deploy/systemd/" + name + ".service");
    ASSERT_NE(text, "");
    const std::string installed = "/usr/local/bin/" + name;
    ASSERT_NE(text.find("ExecStart=" + installed + " "), std::string::npos);
    text = absl::StrReplaceAll(
        text, {{installed, vigil::testing::BuildDir() + "/" + name.substr(6) + "/" + name}});
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
  const std::string docs = ReadWholeFile(vigil::testing::SourceDir() + "/docs/deploy.md");
  std::smatch d;
  const std::regex row("\\| `" + name + "` \\| ([0-9]+\\.[0-9]) ");
  ASSERT_TRUE(std::regex_search(docs, d, row)) << "docs/deploy.md gives no score for " << name;
  EXPECT_LE(measured, std::stod(d[1])) << run.out;
}

INSTANTIATE_TEST_SUITE_P(Units, SystemdUnitsTest, ::testing::Values("vigil-node", "vigil-verifier"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "vigil-node" ? "Node" : "Verifier";
                         });

constexpr uid_t kServiceUser = 65534;

TEST(VerifierUnitTest, VerifierStaysInsideTheSystemCallFilter) {
  ASSERT_EQ(geteuid(), 0u) << "needs root to run the verifier as another user";
  absl::StatusOr<TestTempDir> made = TestTempDir::Create("verifier-syscalls");
  ASSERT_TRUE(made.ok()) << made.status();
  TestTempDir dir = *std::move(made);
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  const std::string build = vigil::testing::BuildDir();
  const std::string pki = dir.path() + "/pki";
  const std::string state = dir.path() + "/state";
  const std::string policies = dir.path() + "/policies";
  ProgramRun init = RunProgram({build + "/cli/vigilctl", "pki", "init", "--dir", pki}, dir.path());
  ASSERT_EQ(init.exit_code, 0) << init.err;
  std::filesystem::create_directories(state);
  std::filesystem::create_directories(policies);
  std::filesystem::copy_file(vigil::testing::SourceDir() + "/deploy/policies/strict.yaml",
                             policies + "/strict.yaml");
  // The service owns its credentials copies and its state directory.
  for (const std::string& p : {pki, state}) {
    ASSERT_EQ(chown(p.c_str(), kServiceUser, kServiceUser), 0);
    for (const auto& e : std::filesystem::directory_iterator(p)) {
      ASSERT_EQ(chown(e.path().c_str(), kServiceUser, kServiceUser), 0);
    }
  }
  const std::string trace = dir.path() + "/trace";
  const std::string uid = std::to_string(kServiceUser);
  ProgramRun run = RunProgram({"/usr/bin/strace",
                               "-f",
                               "-qq",
                               "-o",
                               trace,
                               "/usr/bin/setpriv",
                               "--reuid=" + uid,
                               "--regid=" + uid,
                               "--clear-groups",
                               "--no-new-privs",
                               "--bounding-set=-all",
                               "/usr/bin/timeout",
                               "--foreground",
                               "--signal=TERM",
                               "8",
                               build + "/verifier/vigil-verifier",
                               "--listen",
                               "127.0.0.1:0",
                               "--enroll-listen",
                               "127.0.0.1:0",
                               "--pki-dir",
                               pki,
                               "--db",
                               state + "/vigil.db",
                               "--policy",
                               policies},
                              dir.path());
  // timeout(1) exits 124 when it had to send the signal (--foreground: to the verifier only,
  // once, as systemd stops it); the verifier itself stopped cleanly.
  EXPECT_EQ(run.exit_code, 124) << run.err;
  ASSERT_TRUE(absl::StrContains(run.err, "enrollment listener on")) << run.err;
  ASSERT_TRUE(absl::StrContains(run.err, "vigil-verifier stopped")) << run.err;

  ProgramRun check = RunProgram(
      {"/usr/bin/python3", vigil::testing::SourceDir() + "/tests/deploy/syscalls_outside_filter.py",
       vigil::testing::SourceDir() + "/deploy/systemd/vigil-verifier.service", trace,
       "vigil-verifier"},
      dir.path() + "/pki");
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_EQ(check.out, "") << "system calls the unit's SystemCallFilter= refuses";
}

}  // namespace
}  // namespace vigil::deploy
