#include "node/procfs/process_matcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
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

  // Returns once both processes exist with their final comm: the grandchild tells the child
  // it is ready, and only then does the child report the grandchild's pid, so the report is
  // one pid-sized message whatever the scheduling order.
  void StartFamily() {
    comm_ = absl::StrCat("vgm", getpid() % 100000000);
    int hold[2], report[2], ready[2];
    ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      close(hold[1]);
      close(report[0]);
      prctl(PR_SET_NAME, comm_.c_str(), 0, 0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      pid_t gc = fork();
      if (gc < 0) _exit(1);
      if (gc == 0) {
        close(ready[0]);
        prctl(PR_SET_NAME, "vgm-grandchild", 0, 0, 0);
        if (write(ready[1], "x", 1) != 1) _exit(1);
        close(ready[1]);
        char c;
        while (read(hold[0], &c, 1) > 0) {
        }
        _exit(0);
      }
      close(ready[1]);
      char c;
      if (read(ready[0], &c, 1) != 1) _exit(1);
      if (write(report[1], &gc, sizeof(gc)) != sizeof(gc)) _exit(1);
      close(report[1]);
      while (read(hold[0], &c, 1) > 0) {
      }
      waitpid(gc, nullptr, 0);
      _exit(0);
    }
    close(hold[0]);
    close(report[1]);
    close(ready[0]);
    close(ready[1]);
    hold_ = hold[1];
    pid_t gc = -1;
    ssize_t n = read(report[0], &gc, sizeof(gc));
    close(report[0]);
    ASSERT_EQ(n, static_cast<ssize_t>(sizeof(gc))) << "the child died before reporting";
    ASSERT_GT(gc, 0);
    grandchild_ = gc;
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
  // The build directory taken literally, wherever it is (a checkout path may hold '[').
  std::string dir;
  for (char c : std::string(exe, strrchr(exe, '/'))) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') dir += '\\';
    dir += c;
  }
  // The forked child runs the test binary, so exe matches; pid narrows it to that child.
  std::string sel = absl::StrCat("exe=", dir, "/*_test,pid=", child_);
  ProcessMatcher matcher({Parse(sel), Parse(absl::StrCat("exe=/nonexistent/*,pid=", getpid()))});
  auto procs = matcher.Scan();
  ASSERT_NE(Find(procs, child_), nullptr);
  EXPECT_EQ(Find(procs, child_)->matched_by, (std::vector<std::string>{sel}));
  EXPECT_NE(Find(procs, grandchild_), nullptr);
  EXPECT_EQ(Find(procs, getpid()), nullptr);
}

TEST_F(ProcessMatcherTest, NeverReturnsAnExcludedProcessHoweverItWouldMatch) {
  ASSERT_NO_FATAL_FAILURE(StartFamily());
  ProcessMatcher matcher({Parse("comm=" + comm_)});
  matcher.set_excluded_pids({grandchild_});
  auto procs = matcher.Scan({grandchild_});
  EXPECT_NE(Find(procs, child_), nullptr);
  EXPECT_EQ(Find(procs, grandchild_), nullptr);  // neither inherited nor from the probes
}

TEST_F(ProcessMatcherTest, IncludesPidsTheProbesReportedOnlyWhileTheyExist) {
  ASSERT_NO_FATAL_FAILURE(StartFamily());
  // A pid no process can have: the kernel allocates pids below pid_max. (A pid that exited
  // a moment ago could already belong to another process on a busy machine.)
  std::ifstream pid_max_file("/proc/sys/kernel/pid_max");
  int gone = 0;
  ASSERT_TRUE(pid_max_file >> gone);
  ProcessMatcher matcher({Parse("pid=" + std::to_string(grandchild_))});
  auto procs = matcher.Scan({child_, gone, grandchild_});
  ASSERT_NE(Find(procs, child_), nullptr);
  EXPECT_EQ(Find(procs, child_)->matched_by, (std::vector<std::string>{"probe"}));
  ASSERT_NE(Find(procs, grandchild_), nullptr);
  EXPECT_EQ(Find(procs, grandchild_)->matched_by,
            (std::vector<std::string>{"pid=" + std::to_string(grandchild_)}));
  EXPECT_EQ(Find(procs, gone), nullptr);
}

// Puts `pid` at the root of the cgroup v2 hierarchy and in a new cgroup `name` of the cgroup v1
// name=systemd hierarchy, from a child in a private mount namespace, so nothing is mounted
// on the host. The name=systemd hierarchy is the host's when it has one, else it is created
// (and goes away with the namespace once `name` is removed). Runs `scan` while `pid` is
// there, then moves `pid` back to the v1 root, removes `name` and checks that the child
// succeeded.
class CgroupV1Placement {
 public:
  // Child exit codes, for the failure message.
  static std::string Step(int code) {
    static const char* const kSteps[] = {"ok",
                                         "unshare(CLONE_NEWNS)",
                                         "make / private",
                                         "mount cgroup2",
                                         "move to the v2 root",
                                         "mount cgroup -o none,name=systemd",
                                         "mkdir the v1 cgroup",
                                         "move into the v1 cgroup",
                                         "report ready",
                                         "wait for the scan",
                                         "move back to the v1 root",
                                         "rmdir the v1 cgroup"};
    return code >= 0 && code < static_cast<int>(std::size(kSteps)) ? kSteps[code]
                                                                   : absl::StrCat(code);
  }

  static void Run(pid_t pid, const std::string& name, const std::function<void()>& scan) {
    char tmpl[] = "/tmp/vigil-cgroup-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
    const std::string dir = tmpl;
    const std::string v2 = dir + "/v2", v1 = dir + "/v1";
    ASSERT_EQ(mkdir(v2.c_str(), 0700), 0);
    ASSERT_EQ(mkdir(v1.c_str(), 0700), 0);
    // Everything the child needs is computed here: it must not allocate after fork.
    const Paths paths{absl::StrCat(pid, "\n"), v2, v1, v1 + "/" + name};
    int ready[2], done[2];
    ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(done, O_CLOEXEC), 0);
    pid_t helper = fork();
    ASSERT_GE(helper, 0);
    if (helper == 0) {
      close(ready[0]);
      close(done[1]);
      _exit(Place(paths, ready[1], done[0]));
    }
    close(ready[1]);
    close(done[0]);
    char c = 0;
    bool placed = read(ready[0], &c, 1) == 1;
    close(ready[0]);
    if (placed) scan();
    close(done[1]);
    int status = 0;
    ASSERT_EQ(waitpid(helper, &status, 0), helper);
    rmdir(v2.c_str());
    rmdir(v1.c_str());
    rmdir(dir.c_str());
    ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "failed step: " << Step(WEXITSTATUS(status));
    EXPECT_TRUE(placed);
  }

 private:
  struct Paths {
    std::string procs_line;  // "<pid>\n"
    std::string v2;          // mount point of the cgroup v2 hierarchy
    std::string v1;          // mount point of the name=systemd hierarchy
    std::string group;       // the new cgroup under v1
  };

  static bool WriteLine(const std::string& dir, const std::string& line) {
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir.c_str()) >=
        static_cast<int>(sizeof(path)))
      return false;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    close(fd);
    return ok;
  }

  // Runs in the forked child; returns its exit code (an index into Step()).
  static int Place(const Paths& p, int ready_fd, int done_fd) {
    if (unshare(CLONE_NEWNS) != 0) return 1;
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 2;
    if (mount("cgroup2", p.v2.c_str(), "cgroup2", 0, nullptr) != 0) return 3;
    if (!WriteLine(p.v2, p.procs_line)) return 4;
    if (mount("cgroup", p.v1.c_str(), "cgroup", 0, "none,name=systemd") != 0) return 5;
    if (mkdir(p.group.c_str(), 0755) != 0) return 6;
    if (!WriteLine(p.group, p.procs_line)) return 7;
    if (write(ready_fd, "r", 1) != 1) return 8;
    char c;
    if (read(done_fd, &c, 1) != 0) return 9;
    if (!WriteLine(p.v1, p.procs_line)) return 10;
    if (rmdir(p.group.c_str()) != 0) return 11;
    return 0;
  }
};

// On a host that still mounts cgroup v1 hierarchies with v2 unused (the process at "0::/"),
// cgroup selectors match the path of the name=systemd hierarchy, as the snapshot reports it.
// The test makes that situation for one child on any host.
TEST_F(ProcessMatcherTest, CgroupSelectorMatchesTheV1PathWhereV2IsUnused) {
  ASSERT_NO_FATAL_FAILURE(StartFamily());
  const std::string name = absl::StrCat("vigil-matcher-", getpid(), "-", child_);
  const std::string sel = absl::StrCat("cgroup=/", name);
  std::vector<MatchedProcess> procs;
  ASSERT_NO_FATAL_FAILURE(CgroupV1Placement::Run(child_, name, [&] {
    procs = ProcessMatcher({Parse(sel), Parse("cgroup=/vigil-absent-*")}).Scan();
  }));
  const MatchedProcess* child = Find(procs, child_);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->matched_by, (std::vector<std::string>{sel}));
  // The grandchild stayed where it was, so it is monitored only as the child's descendant.
  const MatchedProcess* gc = Find(procs, grandchild_);
  ASSERT_NE(gc, nullptr);
  EXPECT_EQ(gc->matched_by, (std::vector<std::string>{absl::StrCat("inherited:", child_)}));
  EXPECT_EQ(Find(procs, getpid()), nullptr);
}

TEST(ProcessMatcherEmptyTest, NoSelectorsMonitorNothing) {
  ProcessMatcher matcher({});
  EXPECT_TRUE(matcher.Scan().empty());
}

}  // namespace
}  // namespace vigil::node
