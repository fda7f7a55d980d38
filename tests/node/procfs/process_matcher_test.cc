#include "node/procfs/process_matcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace vigil::node {
namespace {

Selector Parse(const std::string& text) {
  auto s = ParseSelector(text);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

const MatchedProcess* Find(const std::vector<MatchedProcess>& v, int pid) {
  for (const auto& m : v) {
    if (m.pid == pid) return &m;
  }
  return nullptr;
}

TEST(SelectorMatchesTest, EveryFieldASelectorSetsMustMatch) {
  ProcessFacts p{
      .pid = 42,
      .ppid = 1,
      .comm = "agent",
      .exe = "/opt/agent/bin/agent",
      .cgroup =
          "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef"
          "0123456789abcdef.scope",
      .container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
  EXPECT_TRUE(SelectorMatches(Parse("pid=42"), p));
  EXPECT_FALSE(SelectorMatches(Parse("pid=43"), p));
  EXPECT_TRUE(SelectorMatches(Parse("exe=/opt/agent/*"), p));
  EXPECT_FALSE(SelectorMatches(Parse("exe=/usr/*"), p));
  EXPECT_TRUE(SelectorMatches(Parse("comm=agent"), p));
  EXPECT_FALSE(SelectorMatches(Parse("comm=agen"), p));
  EXPECT_TRUE(SelectorMatches(Parse("cgroup=/system.slice/docker-*"), p));
  EXPECT_FALSE(SelectorMatches(Parse("cgroup=/user.slice/*"), p));
  EXPECT_TRUE(SelectorMatches(Parse("container=0123456789ab"), p));
  EXPECT_FALSE(SelectorMatches(Parse("container=123456789abc"), p));
  EXPECT_TRUE(SelectorMatches(Parse("exe=/opt/agent/*,comm=agent,pid=42"), p));
  EXPECT_FALSE(SelectorMatches(Parse("exe=/opt/agent/*,comm=other"), p));
  ProcessFacts kernel_thread;
  kernel_thread.pid = 2;
  kernel_thread.comm = "kthreadd";
  EXPECT_FALSE(SelectorMatches(Parse("exe=*"), kernel_thread));
  EXPECT_FALSE(SelectorMatches(Parse("container=0123456789ab"), kernel_thread));
}

// A child with a unique comm that forks a grandchild (with another comm), both waiting
// until the test closes the hold pipe.
class ProcessMatcherTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (hold_ >= 0) close(hold_);
    for (pid_t p : {grandchild_, child_}) {
      if (p > 0) kill(p, SIGKILL);
    }
    if (child_ > 0) waitpid(child_, nullptr, 0);
  }

  void StartFamily() {
    comm_ = absl::StrCat("vgm", getpid() % 100000000);
    int hold[2], report[2];
    ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      close(hold[1]);
      prctl(PR_SET_NAME, comm_.c_str(), 0, 0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      pid_t gc = fork();
      if (gc == 0) {
        prctl(PR_SET_NAME, "vgm-grandchild", 0, 0, 0);
        if (write(report[1], "x", 1) != 1) _exit(1);
        char c;
        while (read(hold[0], &c, 1) > 0) {
        }
        _exit(0);
      }
      if (write(report[1], &gc, sizeof(gc)) != sizeof(gc)) _exit(1);
      char c;
      while (read(hold[0], &c, 1) > 0) {
      }
      waitpid(gc, nullptr, 0);
      _exit(0);
    }
    close(hold[0]);
    close(report[1]);
    hold_ = hold[1];
    // The grandchild's "x" and the child's pid arrive in either order; wait for both.
    char buf[1 + sizeof(pid_t)];
    size_t got = 0;
    while (got < sizeof(buf)) {
      ssize_t n = read(report[0], buf + got, sizeof(buf) - got);
      ASSERT_GT(n, 0);
      got += static_cast<size_t>(n);
    }
    close(report[0]);
    std::string s(buf, sizeof(buf));
    size_t x = s.find('x');
    ASSERT_NE(x, std::string::npos);
    s.erase(x, 1);
    memcpy(&grandchild_, s.data(), sizeof(pid_t));
  }

  std::string comm_;
  pid_t child_ = -1, grandchild_ = -1;
  int hold_ = -1;
};

TEST_F(ProcessMatcherTest, FollowsTheChildrenOfAMatchedProcess) {
  ASSERT_NO_FATAL_FAILURE(StartFamily());
  ProcessMatcher matcher({Parse("comm=" + comm_)});
  auto procs = matcher.Scan();
  const MatchedProcess* child = Find(procs, child_);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->matched_by, (std::vector<std::string>{"comm=" + comm_}));
  const MatchedProcess* gc = Find(procs, grandchild_);
  ASSERT_NE(gc, nullptr);
  EXPECT_EQ(gc->matched_by, (std::vector<std::string>{absl::StrCat("inherited:", child_)}));
  EXPECT_EQ(Find(procs, getpid()), nullptr);  // the parent is not monitored
  for (size_t i = 1; i < procs.size(); ++i) EXPECT_LT(procs[i - 1].pid, procs[i].pid);
}

TEST_F(ProcessMatcherTest, MatchesByPidAndExeGlobTogether) {
  ASSERT_NO_FATAL_FAILURE(StartFamily());
  char exe[4096] = {};
  ASSERT_GT(readlink("/proc/self/exe", exe, sizeof(exe) - 1), 0);
  std::string dir(exe);
  dir = dir.substr(0, dir.rfind('/'));
  // The forked child runs the test binary, so exe matches; pid narrows it to that child.
  std::string sel = absl::StrCat("exe=", dir, "/*_test,pid=", child_);
  ProcessMatcher matcher({Parse(sel), Parse(absl::StrCat("exe=/nonexistent/*,pid=", getpid()))});
  auto procs = matcher.Scan();
  ASSERT_NE(Find(procs, child_), nullptr);
  EXPECT_EQ(Find(procs, child_)->matched_by, (std::vector<std::string>{sel}));
  EXPECT_NE(Find(procs, grandchild_), nullptr);
  EXPECT_EQ(Find(procs, getpid()), nullptr);
}

TEST_F(ProcessMatcherTest, IncludesPidsTheProbesReportedOnlyWhileTheyExist) {
  ASSERT_NO_FATAL_FAILURE(StartFamily());
  pid_t gone = fork();
  ASSERT_GE(gone, 0);
  if (gone == 0) _exit(0);
  ASSERT_EQ(waitpid(gone, nullptr, 0), gone);
  ProcessMatcher matcher({Parse("pid=" + std::to_string(grandchild_))});
  auto procs = matcher.Scan({child_, gone, grandchild_});
  ASSERT_NE(Find(procs, child_), nullptr);
  EXPECT_EQ(Find(procs, child_)->matched_by, (std::vector<std::string>{"probe"}));
  ASSERT_NE(Find(procs, grandchild_), nullptr);
  EXPECT_EQ(Find(procs, grandchild_)->matched_by,
            (std::vector<std::string>{"pid=" + std::to_string(grandchild_)}));
  EXPECT_EQ(Find(procs, gone), nullptr);
}

// On a host that still mounts cgroup v1 hierarchies with v2 unused (every process at "0::/"),
// cgroup selectors match the path of the name=systemd hierarchy, as the snapshot reports it.
TEST_F(ProcessMatcherTest, CgroupSelectorMatchesTheV1PathWhereV2IsUnused) {
  const std::string hierarchy = "/sys/fs/cgroup/systemd";
  struct statfs fs {};
  if (statfs(hierarchy.c_str(), &fs) != 0 || fs.f_type != CGROUP_SUPER_MAGIC) {
    // A cgroup v2 host: the v2 path is matched, as the other tests show.
    GTEST_SKIP() << hierarchy << " is not a cgroup v1 hierarchy on this host";
  }
  ASSERT_NO_FATAL_FAILURE(StartFamily());
  const std::string name = absl::StrCat("vigil-matcher-", getpid());
  const std::string dir = hierarchy + "/" + name;
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << std::strerror(errno);
  auto move = [](const std::string& cgroup, pid_t pid) {
    std::ofstream procs(cgroup + "/cgroup.procs");
    procs << pid << "\n";
    procs.flush();
    return static_cast<bool>(procs);
  };
  ASSERT_TRUE(move(dir, child_));
  ProcessMatcher matcher({Parse("cgroup=/vigil-matcher-*")});
  auto procs = matcher.Scan();
  EXPECT_TRUE(move(hierarchy, child_));
  EXPECT_EQ(rmdir(dir.c_str()), 0) << std::strerror(errno);
  const MatchedProcess* child = Find(procs, child_);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->matched_by, (std::vector<std::string>{"cgroup=/vigil-matcher-*"}));
  EXPECT_EQ(Find(procs, getpid()), nullptr);
}

TEST(ProcessMatcherEmptyTest, NoSelectorsMonitorNothing) {
  ProcessMatcher matcher({});
  EXPECT_TRUE(matcher.Scan().empty());
}

}  // namespace
}  // namespace vigil::node
