// TestTempDir keeps a failed test's directory and names it, and removes a passed test's.
// The test binary runs itself with VIGIL_TEMP_DIR_PROBE set: that registers two probe tests
// (one passes, one fails) that each make a directory and write a file into it.
#include "tests/testing/temp_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vigil::testing {
namespace {

constexpr char kProbeEnv[] = "VIGIL_TEMP_DIR_PROBE";

class ProbeTest : public ::testing::Test {
 public:
  explicit ProbeTest(bool fail) : fail_(fail) {}
  void TestBody() override {
    auto dir = TestTempDir::Create("probe");
    ASSERT_TRUE(dir.ok()) << dir.status();
    std::ofstream(dir->path() + "/evidence.log") << "what the failure left behind\n";
    if (fail_) ADD_FAILURE() << "failing on purpose";
  }

 private:
  bool fail_;
};

// Registered only in the probe run, so the real suite never lists them.
[[maybe_unused]] const bool kProbesRegistered = [] {
  if (getenv(kProbeEnv) == nullptr) return false;
  for (bool fail : {false, true}) {
    ::testing::RegisterTest("TempDirProbe", fail ? "Fails" : "Passes", nullptr, nullptr, __FILE__,
                            __LINE__, [fail]() -> ::testing::Test* { return new ProbeTest(fail); });
  }
  return true;
}();

// The path printed after `marker` on a "[ temp dir ]" line of `output`.
std::string PathAfter(const std::string& output, const std::string& marker) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (!absl::StartsWith(line, "[ temp dir ]")) continue;
    size_t at = line.find(marker);
    if (at != absl::string_view::npos) return std::string(line.substr(at + marker.size()));
  }
  return "";
}

TEST(TestTempDirTest, KeepsAndNamesTheDirectoryOfAFailedTestOnly) {
  auto scratch = TestTempDir::Create("temp-dir-test");
  ASSERT_TRUE(scratch.ok()) << scratch.status();
  const std::string tmp = scratch->path();
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  const std::string cmd = absl::StrCat(kProbeEnv, "=1 TMPDIR=", tmp, " '", self,
                                       "' --gtest_filter='TempDirProbe.*' 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) output.append(buf, n);
  const int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_NE(WEXITSTATUS(status), 0) << output;

  const std::string passed = PathAfter(output, "TempDirProbe.Passes: ");
  const std::string failed = PathAfter(output, "TempDirProbe.Fails: ");
  const std::string kept = PathAfter(output, "kept for the failure of TempDirProbe.Fails: ");
  ASSERT_TRUE(absl::StartsWith(passed, tmp + "/vigil-probe-")) << output;
  ASSERT_TRUE(absl::StartsWith(failed, tmp + "/vigil-probe-")) << output;
  EXPECT_EQ(kept, failed) << output;
  EXPECT_EQ(PathAfter(output, "kept for the failure of TempDirProbe.Passes: "), "") << output;
  EXPECT_FALSE(std::filesystem::exists(passed));
  EXPECT_TRUE(std::filesystem::exists(failed + "/evidence.log"));
}

TEST(TestTempDirTest, MovedFromHoldsNothingAndEmptyRemovesNothing) {
  std::string path;
  {
    auto made = TestTempDir::Create("moved");
    ASSERT_TRUE(made.ok()) << made.status();
    TestTempDir a = *std::move(made);
    path = a.path();
    TestTempDir b = std::move(a);
    EXPECT_EQ(a.path(), "");
    EXPECT_EQ(b.path(), path);
    EXPECT_TRUE(std::filesystem::is_directory(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace vigil::testing
