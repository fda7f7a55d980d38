// node/agent/state_lock: one holder of a node's state directory at a time, the holder named
// to whoever is refused, and the lock free again once the holder lets go.

#include "node/agent/state_lock.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

TEST(StateDirLockTest, SecondHolderIsRefusedWithTheHoldersPidUntilTheFirstLetsGo) {
  absl::StatusOr<testing::TestTempDir> tmp = testing::TestTempDir::Create("state-lock");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  const std::string dir = tmp->path() + "/state";  // made by the lock

  absl::StatusOr<std::unique_ptr<StateDirLock>> first = StateDirLock::Acquire(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  std::ifstream in(dir + "/vigil-node.lock");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), absl::StrCat(getpid(), "\n"));

  // flock(2) locks belong to the open file: a second open in this process is refused too.
  absl::StatusOr<std::unique_ptr<StateDirLock>> second = StateDirLock::Acquire(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_NE(second.status().message().find(
                absl::StrCat("a vigil-node run holds this node's TPM log: pid ", getpid())),
            std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find(dir), std::string::npos) << second.status();

  first->reset();
  absl::StatusOr<std::unique_ptr<StateDirLock>> third = StateDirLock::Acquire(dir);
  EXPECT_TRUE(third.ok()) << third.status();
}

TEST(StateDirLockTest, UnusableStateDirectoryIsAnErrorNotALock) {
  absl::StatusOr<testing::TestTempDir> tmp = testing::TestTempDir::Create("state-lock");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  const std::string file = tmp->path() + "/not-a-dir";
  std::ofstream(file) << "x";
  absl::StatusOr<std::unique_ptr<StateDirLock>> lock = StateDirLock::Acquire(file);
  EXPECT_FALSE(lock.ok());
}

}  // namespace
}  // namespace vigil::node
