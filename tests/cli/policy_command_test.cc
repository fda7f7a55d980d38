// `vigilctl policy lint`: the output format and exit status operators and CI rely on.

#include "cli/policy_command.h"
#include "tests/testing/build_paths.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace vigil::cli {
namespace {

class PolicyLintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/vigil-policy-lint-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
};

constexpr char kPolicy[] =
    "apiVersion: vigil.dev/v1\n"
    "kind: RuntimePolicy\n"
    "metadata: {name: p, revision: 1}\n"
    "spec:\n"
    "  workloads: [{name: w, selectors: [\"comm=agent\"]}]\n"
    "  rules: [{id: r, kind: no_new_privs, controls: {soc2: [CC6.1]}}]\n";

TEST_F(PolicyLintTest, ShippedPoliciesAreClean) {
  std::ostringstream out;
  const std::string root = vigil::testing::SourceDir();
  EXPECT_EQ(
      LintPolicies({root + "/deploy/policies/strict.yaml", root + "/deploy/policies/baseline.yaml"},
                   out),
      0);
  EXPECT_EQ(out.str(), "");
}

TEST_F(PolicyLintTest, WarningsAloneExitZero) {
  const std::string file = Write("warn.yaml", kPolicy);
  std::ostringstream out;
  EXPECT_EQ(LintPolicies({file}, out), 0);
  EXPECT_EQ(out.str(), file +
                           ":5:37: warning: selector 'comm=agent' rests only on comm or pid, "
                           "which a process can change or reuse; add exe=, cgroup= or "
                           "container=\n");
}

TEST_F(PolicyLintTest, ErrorsExitOneAndNameFileLineColumn) {
  std::string bad = kPolicy;
  bad.replace(bad.find("revision: 1"), 11, "revision: -1");
  const std::string file = Write("bad.yaml", bad);
  const std::string good = Write("good.yaml", kPolicy);
  std::ostringstream out;
  EXPECT_EQ(LintPolicies({good, file}, out), 1);
  EXPECT_NE(out.str().find(file + ":3:31: error: metadata.revision must be a positive integer\n"),
            std::string::npos)
      << out.str();
}

TEST_F(PolicyLintTest, SamePolicyInTwoFilesIsAnError) {
  const std::string a = Write("a.yaml", kPolicy);
  const std::string b = Write("b.yaml", kPolicy);
  std::ostringstream out;
  EXPECT_EQ(LintPolicies({a, b}, out), 1);
  EXPECT_NE(out.str().find(b + ":1:1: error: policy 'p' is also defined in " + a),
            std::string::npos)
      << out.str();
}

}  // namespace
}  // namespace vigil::cli
