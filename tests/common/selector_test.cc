#include "common/selector.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(SelectorTest, ParsesEveryKey) {
  auto s = ParseSelector("pid=42,exe=/opt/agent/*,comm=agent,cgroup=/sys*,container=0123456789ab");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->pid, 42);
  EXPECT_EQ(s->exe_glob, "/opt/agent/*");
  EXPECT_EQ(s->comm, "agent");
  EXPECT_EQ(s->cgroup_glob, "/sys*");
  EXPECT_EQ(s->container_id, "0123456789ab");
}

TEST(SelectorTest, RejectsBadInputWithReason) {
  for (const char* bad : {"", "pid=0", "pid=x", "nope=1", "exe", "comm=abcdefghijklmnopq",
                          "container=XYZ", "container=0123"}) {
    auto s = ParseSelector(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace vigil
