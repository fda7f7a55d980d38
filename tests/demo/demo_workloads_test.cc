// The demo workloads really are what they claim: the hardened agent's controls and the naive
// agent's lack of them are read from /proc directly and through the seccomp inspector.

#include <errno.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "node/seccomp/seccomp_inspector.h"
#include "tests/testing/build_paths.h"

namespace vigil::node {
namespace {

constexpr int kCapDacReadSearch = 2;
constexpr int kCapIpcLock = 14;
constexpr int kCapSysPtrace = 19;
constexpr int kCapSysAdmin = 21;

// A demo program started with its stdout on a pipe; SIGKILLed and reaped if still running
// when it goes out of scope.
class Workload {
 public:
  explicit Workload(const std::string& program) {
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      const std::string path = vigil::testing::BuildDir() + "/deploy/demo/" + program;
      execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    stdout_ = out[0];
  }
  ~Workload() {
    close(stdout_);
    if (!reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }

  // The line the program prints once its setup is done ("" if it exited first).
  std::string FirstLine() {
    std::string line;
    char c;
    while (read(stdout_, &c, 1) == 1 && c != '\n') line += c;
    return line;
  }

  // Sends SIGTERM and returns the exit status.
  int Terminate() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int stdout_ = -1;
  bool reaped_ = false;
};

std::map<std::string, std::string> ProcStatus(pid_t pid) {
  std::map<std::string, std::string> fields;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t v = line.find_first_not_of(" \t", colon + 1);
    fields[line.substr(0, colon)] = v == std::string::npos ? "" : line.substr(v);
  }
  return fields;
}

uint64_t Hex(const std::string& s) { return std::stoull(s, nullptr, 16); }

bool HasCap(uint64_t mask, int cap) { return (mask >> cap) & 1; }

std::string Comm(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

// The value after "key=" in the program's line, up to the next space or '+'.
std::string Token(const std::string& line, const std::string& key) {
  size_t at = line.find(" " + key + "=");
  if (at == std::string::npos) return "";
  at += key.size() + 2;
  return line.substr(at, line.find_first_of(" +:", at) - at);
}

// One mapping from /proc/<pid>/smaps.
struct Region {
  uint64_t start = 0;
  uint64_t end = 0;
  std::string perms;
  uint64_t inode = 0;
  std::string path;
  uint64_t size_kib = 0;
  uint64_t locked_kib = 0;
};

std::vector<Region> Smaps(pid_t pid) {
  std::vector<Region> regions;
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string first;
    fields >> first;
    size_t dash = first.find('-');
    if (dash != std::string::npos && first.back() != ':') {
      Region r;
      r.start = Hex(first.substr(0, dash));
      r.end = Hex(first.substr(dash + 1));
      std::string offset, dev;
      fields >> r.perms >> offset >> dev >> r.inode;
      std::getline(fields >> std::ws, r.path);
      regions.push_back(r);
    } else if (!regions.empty() && first == "Size:") {
      fields >> regions.back().size_kib;
    } else if (!regions.empty() && first == "Locked:") {
      fields >> regions.back().locked_kib;
    }
  }
  return regions;
}

const Region* RegionAt(const std::vector<Region>& regions, uint64_t addr) {
  for (const Region& r : regions) {
    if (r.start <= addr && addr < r.end) return &r;
  }
  return nullptr;
}

bool IsAnonymous(const Region& r) { return r.inode == 0 && (r.path.empty() || r.path[0] != '/'); }

const std::vector<std::string> kDenied = {"ptrace", "process_vm_readv", "process_vm_writev"};

TEST(DemoWorkloadsTest, HardenedAgentIsHardened) {
  Workload agent("vigil-demo-hardened-agent");
  const std::string line = agent.FirstLine();
  ASSERT_NE(line.find("hardened-agent pid="), std::string::npos) << "got: " << line;
  EXPECT_EQ(Comm(agent.pid()), "hardened-agent");

  auto status = ProcStatus(agent.pid());
  for (const char* set : {"CapBnd", "CapEff", "CapPrm", "CapInh"}) {
    const uint64_t mask = Hex(status[set]);
    for (int cap : {kCapSysPtrace, kCapSysAdmin, kCapDacReadSearch, kCapIpcLock}) {
      EXPECT_FALSE(HasCap(mask, cap)) << set << " has capability " << cap;
    }
  }
  EXPECT_EQ(Hex(status["CapAmb"]), 0u);
  EXPECT_EQ(status["NoNewPrivs"], "1");
  EXPECT_EQ(status["Seccomp"], "2");
  EXPECT_EQ(status["Seccomp_filters"], "1");
  EXPECT_GE(std::stoull(status["VmLck"]), 64u + 4u);

  const std::vector<Region> regions = Smaps(agent.pid());
  const Region* secret = RegionAt(regions, Hex(Token(line, "secret")));
  const Region* jit = RegionAt(regions, Hex(Token(line, "jit")));
  ASSERT_NE(secret, nullptr) << line;
  ASSERT_NE(jit, nullptr) << line;
  EXPECT_EQ(secret->perms, "rw-p");
  EXPECT_GE(secret->locked_kib, 64u);
  EXPECT_EQ(secret->locked_kib, secret->size_kib);
  EXPECT_TRUE(IsAnonymous(*jit));
  EXPECT_EQ(jit->perms, "r-xp");
  EXPECT_GT(jit->size_kib, 0u);
  EXPECT_EQ(jit->locked_kib, jit->size_kib);
  for (const Region& r : regions) {
    const bool wx =
        r.perms.find('w') != std::string::npos && r.perms.find('x') != std::string::npos;
    EXPECT_FALSE(wx && IsAnonymous(r))
        << "writable+executable anonymous region " << std::hex << r.start;
  }

  v1::SeccompState seccomp;
  absl::Status s = InspectSeccompFilters(agent.pid(), kDenied, &seccomp);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(seccomp.filters_inspected());
  EXPECT_EQ(seccomp.filter_sha256_size(), 1);
  // Each denied syscall through x86_64, i386 and x32: EPERM natively, every other ABI
  // killed, so there is no way around the filter.
  ASSERT_EQ(seccomp.verdicts_size(), 3 * 3);
  for (const auto& v : seccomp.verdicts()) {
    if (v.arch() == "x86_64") {
      EXPECT_EQ(v.action(), v1::SECCOMP_ACTION_ERRNO) << v.syscall();
      EXPECT_EQ(v.data(), static_cast<uint32_t>(EPERM)) << v.syscall();
    } else {
      EXPECT_EQ(v.action(), v1::SECCOMP_ACTION_KILL_PROCESS) << v.syscall() << " " << v.arch();
    }
    EXPECT_FALSE(v.bypass()) << v.syscall() << " " << v.arch();
    EXPECT_FALSE(v.argument_dependent()) << v.syscall() << " " << v.arch();
  }
  const std::string state = ProcStatus(agent.pid())["State"];
  // Alive (its own filter did not kill it): running, sleeping, or for a moment in an
  // uninterruptible sleep (page-ins of its locked memory); not a zombie or stopped.
  EXPECT_TRUE(state[0] == 'S' || state[0] == 'R' || state[0] == 'D') << state;

  const int exit_status = agent.Terminate();
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0) << exit_status;
}

TEST(DemoWorkloadsTest, NaiveAgentIsNot) {
  Workload agent("vigil-demo-naive-agent");
  const std::string line = agent.FirstLine();
  ASSERT_NE(line.find("naive-agent pid="), std::string::npos) << "got: " << line;
  EXPECT_EQ(Comm(agent.pid()), "naive-agent");
  for (const char* done : {"ptrace=ok", "process_vm_readv=ok", "rwx_exec=ok", "userns=ok"}) {
    EXPECT_NE(line.find(done), std::string::npos) << done << " missing in: " << line;
  }

  auto status = ProcStatus(agent.pid());
  EXPECT_EQ(status["Seccomp"], "0");
  EXPECT_EQ(status["NoNewPrivs"], "0");
  EXPECT_EQ(Hex(status["CapAmb"]), 0u);
  EXPECT_EQ(std::stoull(status["VmLck"]), 0u);
  // It keeps whatever the test runner had (root: all of these).
  const uint64_t ours = Hex(ProcStatus(getpid())["CapBnd"]);
  for (int cap : {kCapSysPtrace, kCapSysAdmin, kCapDacReadSearch}) {
    EXPECT_EQ(HasCap(Hex(status["CapBnd"]), cap), HasCap(ours, cap)) << cap;
    EXPECT_EQ(HasCap(Hex(status["CapEff"]), cap), HasCap(ours, cap)) << cap;
  }

  const std::vector<Region> regions = Smaps(agent.pid());
  const Region* rwx = RegionAt(regions, Hex(Token(line, "rwx")));
  ASSERT_NE(rwx, nullptr) << line;
  EXPECT_EQ(rwx->perms, "rwxp");
  EXPECT_TRUE(IsAnonymous(*rwx));
  EXPECT_EQ(rwx->locked_kib, 0u);

  const pid_t sibling = static_cast<pid_t>(std::stol(Token(line, "sibling_pid")));
  EXPECT_EQ(Comm(sibling), "naive-sibling");
  EXPECT_EQ(ProcStatus(sibling)["PPid"], std::to_string(agent.pid()));

  v1::SeccompState seccomp;
  absl::Status s = InspectSeccompFilters(agent.pid(), kDenied, &seccomp);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(seccomp.filters_inspected());
  EXPECT_EQ(seccomp.filter_sha256_size(), 0);
  ASSERT_EQ(seccomp.verdicts_size(), 3 * 3);
  for (const auto& v : seccomp.verdicts()) {
    EXPECT_EQ(v.action(), v1::SECCOMP_ACTION_ALLOW) << v.syscall() << " " << v.arch();
    EXPECT_FALSE(v.bypass()) << v.syscall() << " " << v.arch();  // nothing denied to bypass
  }

  const int exit_status = agent.Terminate();
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0) << exit_status;
  // The agent reaped its sibling before exiting.
  EXPECT_EQ(kill(sibling, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

}  // namespace
}  // namespace vigil::node
