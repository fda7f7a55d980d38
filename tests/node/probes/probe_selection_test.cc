// Real BPF: processes matched by selectors in the kernel at exec are monitored before the
// new image runs, their children are followed, and unmatched processes produce nothing.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>

#include "absl/strings/str_cat.h"
#include "node/probes/selector_maps.h"
#include "tests/node/probes/probe_test_util.h"
#include "tests/testing/temp_dir.h"

// When this test binary is exec'd with VIGIL_PROBE_TARGET set, it acts as the selected
// workload: its first action after the dynamic loader is a prctl the probes report, then
// (mode "fork") it forks a child that makes a prctl of its own. It never reaches main().
__attribute__((constructor)) static void RunAsProbeTarget() {
  const char* mode = std::getenv("VIGIL_PROBE_TARGET");
  if (mode == nullptr) return;
  prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  if (std::strcmp(mode, "fork") == 0) {
    pid_t child = fork();
    if (child == 0) {
      prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0);
      _exit(0);
    }
    waitpid(child, nullptr, 0);
  }
  _exit(0);
}

namespace vigil::node {
namespace {

using testing::EventLog;
using testing::RunChild;

class ProbeSelectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ::vigil::testing::TestTempDir::Create("sel");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    dir_ = tmp_.path();
    std::string self = std::filesystem::read_symlink("/proc/self/exe");
    // Real files (exe globs match the resolved path), plus names that only link to them.
    for (const char* name : {"selected-target", "other-target"}) {
      std::filesystem::copy_file(self, dir_ + "/" + name);
      ASSERT_EQ(chmod((dir_ + "/" + name).c_str(), 0755), 0);
    }
    ASSERT_EQ(symlink(self.c_str(), (dir_ + "/vigilcommtarget").c_str()), 0);
    ASSERT_EQ(symlink("selected-target", (dir_ + "/alias").c_str()), 0);
    ASSERT_EQ(symlink("other-target", (dir_ + "/selx-target").c_str()), 0);
  }

  void StartProbes(std::vector<Selector> selectors) {
    ProbeOptions options;
    options.selectors = std::move(selectors);
    auto s = BpfEventSource::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    source_ = *std::move(s);
  }

  // Forks an unmonitored child that execs `program` as a probe target in `mode`;
  // `before_exec` runs in the child first. Returns the child's pid once it has exited.
  int ExecTarget(
      const std::string& program, const char* mode,
      const std::function<void()>& before_exec = [] {}) {
    auto run = RunChild(
        [&](testing::SharedValues*) {
          before_exec();
          setenv("VIGIL_PROBE_TARGET", mode, 1);
          char* argv[] = {const_cast<char*>(program.c_str()), nullptr};
          execv(program.c_str(), argv);
          _exit(127);
        },
        [](int) {});
    EXPECT_TRUE(WIFEXITED(run.wait_status) && WEXITSTATUS(run.wait_status) == 0) << run.wait_status;
    return run.pid;
  }

  ::vigil::testing::TestTempDir tmp_;
  std::string dir_;
  std::unique_ptr<BpfEventSource> source_;
};

// The events of a process selected at exec: the exec itself first (nothing before it), the
// exec's own return, then the image's first reported syscall, and its exit.
void ExpectMonitoredFromExec(const std::vector<v1::RuntimeEvent>& events,
                             const std::string& exec_name) {
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events[0].kind(), v1::EVENT_KIND_PROCESS_EXEC) << "nothing before the exec";
  EXPECT_EQ(events[0].path(), exec_name);
  EXPECT_EQ(events[1].kind(), v1::EVENT_KIND_EXECVE) << "the exec's own return";
  EXPECT_EQ(events[1].return_value(), 0);
  EXPECT_EQ(events[1].path(), exec_name);
  EXPECT_EQ(events[2].kind(), v1::EVENT_KIND_PRCTL) << "the image's first reported syscall";
  EXPECT_EQ(events[2].args(0), static_cast<uint64_t>(PR_GET_DUMPABLE));
  EXPECT_EQ(events.back().kind(), v1::EVENT_KIND_PROCESS_EXIT);
}

TEST_F(ProbeSelectionTest, ExeGlobSelectedProcessIsMonitoredFromItsFirstSyscall) {
  Selector sel;
  sel.name = "exe";
  sel.exe_glob = dir_ + "/sel*-targe?";
  StartProbes({sel});
  EventLog log(source_.get());

  int other = ExecTarget(dir_ + "/other-target", "plain");
  int pid = ExecTarget(dir_ + "/selected-target", "plain");
  ASSERT_TRUE(log.WaitForExit(pid));
  ExpectMonitoredFromExec(log.Of(pid), dir_ + "/selected-target");
  // Events of one ring buffer arrive in order: the unmatched process ran first and left
  // nothing.
  EXPECT_TRUE(log.Of(other).empty());
  EXPECT_THAT(source_->MonitoredPids(), ::testing::Not(::testing::Contains(pid)))
      << "an exited process stops being monitored";
}

// The glob matches the executable's real path, as /proc/PID/exe shows it (and as the
// node's procfs matcher sees already running processes), whatever name it was exec'd by: a
// symlink or a relative path to the selected file is selected at exec; a symlink whose own
// name matches but whose target does not is not.
TEST_F(ProbeSelectionTest, ExeGlobMatchesTheResolvedPathNotTheNameExecdBy) {
  Selector sel;
  sel.name = "exe";
  sel.exe_glob = dir_ + "/sel*-targe?";
  StartProbes({sel});
  EventLog log(source_.get());

  int decoy = ExecTarget(dir_ + "/selx-target", "plain");
  int via_link = ExecTarget(dir_ + "/alias", "plain");
  int relative = ExecTarget("./selected-target", "plain", [&] {
    if (chdir(dir_.c_str()) != 0) _exit(126);
  });
  ASSERT_TRUE(log.WaitForExit(via_link));
  ASSERT_TRUE(log.WaitForExit(relative));
  ExpectMonitoredFromExec(log.Of(via_link), dir_ + "/alias");
  ExpectMonitoredFromExec(log.Of(relative), "./selected-target");
  EXPECT_TRUE(log.Of(decoy).empty()) << "selx-target links to other-target";
}

TEST_F(ProbeSelectionTest, ChildrenOfASelectedProcessAreFollowed) {
  Selector sel;
  sel.name = "comm";
  sel.comm = "vigilcommtarget";
  StartProbes({sel});
  EventLog log(source_.get());

  int pid = ExecTarget(dir_ + "/vigilcommtarget", "fork");
  ASSERT_TRUE(log.WaitForExit(pid));
  auto forks = log.Of(pid, v1::EVENT_KIND_PROCESS_FORK);
  ASSERT_EQ(forks.size(), 1u);
  int child = forks[0].target_pid();
  ASSERT_GT(child, 0);
  ASSERT_TRUE(log.WaitForExit(child));
  auto child_prctl = log.Of(child, v1::EVENT_KIND_PRCTL);
  ASSERT_EQ(child_prctl.size(), 1u);
  EXPECT_EQ(child_prctl[0].args(0), static_cast<uint64_t>(PR_GET_KEEPCAPS));
  EXPECT_EQ(child_prctl[0].ppid(), pid);
}

// A selector with a pid only ever matches that process (seeded by user space); the kernel
// cannot check a pid at exec, so it must not select other processes by the selector's other
// keys.
TEST_F(ProbeSelectionTest, SelectorWithAPidIsNotMatchedAtExec) {
  Selector sel;
  sel.name = "pid-and-comm";
  sel.pid = getpid();
  sel.comm = "vigilcommtarget";
  auto kernel = ToKernelSelector(sel);
  ASSERT_TRUE(kernel.ok());
  EXPECT_FALSE(kernel->active);
  StartProbes({sel});
  EventLog log(source_.get());

  int pid = ExecTarget(dir_ + "/vigilcommtarget", "plain");
  // A process that is monitored afterwards proves the ring buffer is flowing; the exec'd
  // target, which ran and exited before it, left nothing.
  auto marker = RunChild([](testing::SharedValues*) { prctl(PR_GET_DUMPABLE, 0, 0, 0, 0); },
                         [&](int child) { ASSERT_TRUE(source_->Monitor(child).ok()); });
  ASSERT_TRUE(log.WaitForExit(marker.pid));
  EXPECT_TRUE(log.Of(pid).empty());
}

TEST_F(ProbeSelectionTest, CgroupSelectedProcessIsMonitoredAtExec) {
  std::string root = "/sys/fs/cgroup";
  if (std::filesystem::exists("/sys/fs/cgroup/unified/cgroup.procs")) root += "/unified";
  std::string name = absl::StrCat("vigil-probe-test-", getpid());
  std::string cg = root + "/" + name;
  ASSERT_EQ(mkdir(cg.c_str(), 0755), 0) << cg << ": " << std::strerror(errno);
  Selector sel;
  sel.name = "cgroup";
  sel.cgroup_glob = "/vigil-probe-test-*";
  StartProbes({sel});
  EventLog log(source_.get());

  int pid = ExecTarget(dir_ + "/other-target", "plain",
                       [&] { std::ofstream(cg + "/cgroup.procs") << getpid() << "\n"; });
  ASSERT_TRUE(log.WaitForExit(pid));
  auto events = log.Of(pid);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].kind(), v1::EVENT_KIND_PROCESS_EXEC);
  EXPECT_EQ(log.Of(pid, v1::EVENT_KIND_PRCTL).size(), 1u);
  source_.reset();
  rmdir(cg.c_str());
}

}  // namespace
}  // namespace vigil::node
