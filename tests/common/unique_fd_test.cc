#include "common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "gtest/gtest.h"

namespace vigil {
namespace {

// Whether `fd` is an open descriptor of this process.
bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

int OpenDevNull() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

TEST(UniqueFdTest, ClosesWhenDestroyed) {
  int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  {
    UniqueFd fd(raw);
    EXPECT_TRUE(fd.Valid());
    EXPECT_EQ(fd.Get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFdTest, HoldsNothingByDefaultOrAfterAFailedOpen) {
  UniqueFd none;
  EXPECT_FALSE(none.Valid());
  EXPECT_EQ(none.Get(), -1);
  UniqueFd failed(open("/nonexistent/vigil", O_RDONLY));
  EXPECT_FALSE(failed.Valid());
  EXPECT_EQ(failed.Close(), 0);
}

TEST(UniqueFdTest, MoveTransfersOwnership) {
  int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  UniqueFd a(raw);
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.Valid());
  EXPECT_EQ(b.Get(), raw);
  UniqueFd c;
  c = std::move(b);
  EXPECT_EQ(c.Get(), raw);
  EXPECT_TRUE(IsOpen(raw));
  c = UniqueFd();
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFdTest, MoveAssignmentClosesTheDescriptorItReplaces) {
  int first = OpenDevNull();
  int second = OpenDevNull();
  ASSERT_GE(first, 0);
  ASSERT_GE(second, 0);
  UniqueFd a(first);
  a = UniqueFd(second);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_TRUE(IsOpen(second));
}

TEST(UniqueFdTest, ReleaseGivesUpOwnershipWithoutClosing) {
  int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  {
    UniqueFd fd(raw);
    EXPECT_EQ(fd.Release(), raw);
    EXPECT_FALSE(fd.Valid());
  }
  EXPECT_TRUE(IsOpen(raw));
  close(raw);
}

TEST(UniqueFdTest, CloseClosesNowAndReportsTheResult) {
  int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  UniqueFd fd(raw);
  EXPECT_EQ(fd.Close(), 0);
  EXPECT_FALSE(fd.Valid());
  EXPECT_FALSE(IsOpen(raw));
}

TEST(DirPtrTest, ClosesTheDirectoryStream) {
  int raw = -1;
  {
    DirPtr dir(opendir("/"));
    ASSERT_NE(dir, nullptr);
    raw = dirfd(dir.get());
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

}  // namespace
}  // namespace vigil
