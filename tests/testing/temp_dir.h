#pragma once

// A test's own temporary directory, kept when the test fails.
//
//   ASSERT_OK-style:
//     absl::StatusOr<TestTempDir> dir = TestTempDir::Create("watch");
//     ASSERT_TRUE(dir.ok()) << dir.status();
//     dir_ = *std::move(dir);            // dir_.path() is $TMPDIR/vigil-watch-XXXXXX
//
// The path is printed when the directory is made, so the log of a test that crashes or times
// out names it too. The destructor removes the directory when the running test (or, outside
// a test, the running test suite) has passed, and keeps it and says so when it has failed.

#include <string>

#include "absl/status/statusor.h"

namespace vigil::testing {

class TestTempDir {
 public:
  /// Makes $TMPDIR/vigil-<tag>-XXXXXX ($TMPDIR defaults to /tmp).
  static absl::StatusOr<TestTempDir> Create(const std::string& tag);

  /// Holds no directory.
  TestTempDir() = default;
  TestTempDir(TestTempDir&& other) noexcept;
  TestTempDir& operator=(TestTempDir&& other) noexcept;
  TestTempDir(const TestTempDir&) = delete;
  TestTempDir& operator=(const TestTempDir&) = delete;
  /// Removes the directory unless the test failed (see above).
  ~TestTempDir();

  const std::string& path() const { return path_; }

 private:
  explicit TestTempDir(std::string path) : path_(std::move(path)) {}
  void Release();

  std::string path_;
};

}  // namespace vigil::testing
