#include "tests/testing/temp_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"

namespace vigil::testing {
namespace {

// Whether what is running now has failed: the current test, else the current test suite
// (fixtures shared by a suite are destroyed after its last test), else the whole program.
bool RunningTestFailed() {
  const ::testing::UnitTest* unit = ::testing::UnitTest::GetInstance();
  if (unit->current_test_info() != nullptr) return ::testing::Test::HasFailure();
  if (const ::testing::TestSuite* suite = unit->current_test_suite(); suite != nullptr) {
    return suite->Failed();
  }
  return unit->Failed();
}

std::string RunningTestName() {
  const ::testing::UnitTest* unit = ::testing::UnitTest::GetInstance();
  if (const ::testing::TestInfo* info = unit->current_test_info(); info != nullptr) {
    return absl::StrCat(info->test_suite_name(), ".", info->name());
  }
  if (const ::testing::TestSuite* suite = unit->current_test_suite(); suite != nullptr) {
    return suite->name();
  }
  return "the test program";
}

}  // namespace

absl::StatusOr<TestTempDir> TestTempDir::Create(const std::string& tag) {
  const char* tmp = getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/vigil-", tag, "-XXXXXX");
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
  }
  TestTempDir dir{std::string(buf.data())};
  std::cerr << "[ temp dir ] " << RunningTestName() << ": " << dir.path_ << std::endl;
  return dir;
}

TestTempDir::TestTempDir(TestTempDir&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

TestTempDir& TestTempDir::operator=(TestTempDir&& other) noexcept {
  if (this != &other) {
    Release();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TestTempDir::~TestTempDir() { Release(); }

void TestTempDir::Release() {
  if (path_.empty()) return;
  if (RunningTestFailed()) {
    std::cerr << "[ temp dir ] kept for the failure of " << RunningTestName() << ": " << path_
              << std::endl;
  } else {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  path_.clear();
}

}  // namespace vigil::testing
