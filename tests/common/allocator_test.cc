// The malloc the build chose (VIGIL_ALLOCATOR) serves what is linked like vigil-verifier:
// this test program and the vigil-verifier binary itself.
#include "common/allocator/allocator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/testing/build_paths.h"
#include "tests/testing/program_run.h"
#include "tests/testing/temp_dir.h"

namespace vigil {
namespace {

// VIGIL_EXPECTED_ALLOCATOR is the build's VIGIL_ALLOCATOR (tests/CMakeLists.txt).
std::string ExpectedPrefix() {
  return std::string(VIGIL_EXPECTED_ALLOCATOR) == "mimalloc" ? "mimalloc 2." : kSystemMalloc;
}

TEST(MemoryAllocatorTest, ServesMallocAndNewInALinkedProcess) {
  EXPECT_EQ(MemoryAllocator().rfind(ExpectedPrefix(), 0), 0u) << MemoryAllocator();
}

TEST(MemoryAllocatorTest, TheVerifierBinarySaysWhichServesIt) {
  auto tmp = testing::TestTempDir::Create("allocator");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  // An empty PKI directory: the verifier logs its allocator, then stops at the missing files.
  const std::string pki = tmp->path() + "/pki";
  std::filesystem::create_directory(pki);
  testing::ProgramRun run = testing::RunProgram(
      {testing::BuildDir() + "/verifier/vigil-verifier", "--log-level", "info", "--pki-dir", pki},
      tmp->path());
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("memory allocator: " + ExpectedPrefix()), std::string::npos) << run.err;
}

}  // namespace
}  // namespace vigil
