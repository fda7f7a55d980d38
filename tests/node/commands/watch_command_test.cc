// The real `vigil-node watch` binary against workloads this test starts. Each workload
// reports through a pipe what it did (its pid and its children's, every syscall's result),
// and every line watch prints is checked against that: pid, kind, arguments, target, return
// value. Processes the selectors do not name must not appear; every way of ending watch
// (--duration, SIGINT, SIGTERM, a reader that went away) exits 0 with the probe summary; bad
// flags fail with one line and exit code 2.
//
// The workload is this executable itself, started under a name (a hard link) that is the comm
// the selectors look for: with the report pipe named in its environment it runs the
// workload from a static initializer and exits before GoogleTest's main.

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "node/commands/watch_command.h"
#include "node/probes/event_decoder.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/temp_dir.h"
#include "vigil/v1/runtime.pb.h"

extern char** environ;

namespace vigil::node {
namespace {

// ---- The workload ----

constexpr char kReportFdEnv[] = "VIGIL_WATCH_TEST_REPORT_FD";
constexpr int kWorkloadExit = 3;
constexpr int kNamespaceChildExit = 7;
constexpr int kDeniedPtraceErrno = EACCES;  // what the seccomp filter answers ptrace with
constexpr int kListenBacklog = 5;
// A comm a process chose to break line-based and JSON output (newline, quote, a byte that is
// not UTF-8, backslash), and how watch must print it.
constexpr char kHostileComm[] = "vw\n\"\xff\\";
constexpr char kEscapedComm[] = "vw\\x0a\"\\xff\\\\";

// Raw syscall result: -errno on failure, as the kernel returns it.
int64_t Raw(long r) { return r == -1 ? -static_cast<int64_t>(errno) : r; }

// One "name value" line to the test. A write this short to a pipe is atomic, so the
// workload's children report through the same pipe.
void Report(int fd, const char* name, int64_t value) {
  char line[96];
  int n = std::snprintf(line, sizeof(line), "%s %lld\n", name, static_cast<long long>(value));
  (void)!write(fd, line, static_cast<size_t>(n));
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

// A socket on 127.0.0.1 with a kernel-chosen port; reports its fd and port.
int BoundSocket(int fd, const char* name, uint16_t* port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Loopback(0);
  Report(fd, absl::StrCat(name, "_fd").c_str(), s);
  Report(fd, absl::StrCat(name, "_bind").c_str(),
         Raw(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a))));
  socklen_t len = sizeof(a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  Report(fd, absl::StrCat(name, "_port").c_str(), *port);
  return s;
}

// Connects a new socket to 127.0.0.1:port; reports its fd and the result.
void ConnectTo(int fd, const char* name, uint16_t port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Loopback(port);
  Report(fd, absl::StrCat(name, "_fd").c_str(), s);
  Report(fd, name, Raw(connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a))));
}

// Every action the test checks, each result reported to `fd`; returns the exit code.
int RunWorkload(int fd) {
  Report(fd, "pid", getpid());
  // A child that waits until the workload is done with it: the target of the cross-process
  // reads and ptrace attempts.
  int hold[2];
  if (pipe(hold) != 0) return 90;
  static char secret[] = "read from the sibling";
  pid_t sibling = fork();
  if (sibling == 0) {
    close(hold[1]);
    char c;
    while (read(hold[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(hold[0]);
  Report(fd, "sibling", sibling);

  char copy[sizeof(secret)] = {};
  iovec local{copy, sizeof(copy)};
  iovec remote{secret, sizeof(secret)};
  Report(fd, "vm_readv", Raw(process_vm_readv(sibling, &local, 1, &remote, 1, 0)));

  // A second child, whose seccomp filter answers ptrace with EACCES, tries its sibling.
  pid_t denier = fork();
  if (denier == 0) {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | kDeniedPtraceErrno),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog = {.len = 4, .filter = filter};
    Report(fd, "no_new_privs", Raw(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)));
    Report(fd, "seccomp", Raw(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)));
    Report(fd, "denied_ptrace", Raw(ptrace(PTRACE_ATTACH, sibling, nullptr, nullptr)));
    _exit(0);
  }
  Report(fd, "denier", denier);
  int status = 0;
  waitpid(denier, &status, 0);
  Report(fd, "denier_status", status);

  Report(fd, "attach", Raw(ptrace(PTRACE_ATTACH, sibling, nullptr, nullptr)));
  waitpid(sibling, &status, 0);  // the attach stop
  Report(fd, "detach", Raw(ptrace(PTRACE_DETACH, sibling, nullptr, nullptr)));

  const long page = sysconf(_SC_PAGESIZE);
  Report(fd, "page", page);
  void* code = mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  Report(fd, "mmap_exec", code == MAP_FAILED ? -errno : reinterpret_cast<intptr_t>(code));
  void* data = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  Report(fd, "mmap_data", data == MAP_FAILED ? -errno : reinterpret_cast<intptr_t>(data));
  Report(fd, "mprotect_read", Raw(mprotect(data, page, PROT_READ)));  // not an event
  Report(fd, "mprotect_exec", Raw(mprotect(data, page, PROT_READ | PROT_EXEC)));

  uint16_t port = 0, closed_port = 0;
  int listener = BoundSocket(fd, "listener", &port);
  Report(fd, "listen", Raw(listen(listener, kListenBacklog)));
  ConnectTo(fd, "connect", port);
  // Bound and not listening: refused, and no other process can take the port meanwhile.
  BoundSocket(fd, "closed", &closed_port);
  ConnectTo(fd, "connect_refused", closed_port);

  pid_t ns_child = fork();
  if (ns_child == 0) {
    Report(fd, "unshare", Raw(unshare(CLONE_NEWUSER)));
    _exit(kNamespaceChildExit);
  }
  Report(fd, "ns_child", ns_child);
  waitpid(ns_child, &status, 0);
  Report(fd, "ns_child_status", status);

  pid_t renamed = fork();
  if (renamed == 0) {
    Report(fd, "rename", Raw(prctl(PR_SET_NAME, kHostileComm, 0, 0, 0)));
    _exit(0);
  }
  Report(fd, "renamed", renamed);
  waitpid(renamed, &status, 0);
  Report(fd, "renamed_status", status);

  close(hold[1]);
  waitpid(sibling, &status, 0);
  Report(fd, "sibling_status", status);
  return kWorkloadExit;
}

// Started with kReportFdEnv set, this executable is a workload and ends here.
[[maybe_unused]] const bool kRunAsWorkload = [] {
  const char* fd = std::getenv(kReportFdEnv);
  if (fd == nullptr) return false;
  _exit(RunWorkload(std::atoi(fd)));
}();

// ---- Running workloads ----

// What a finished workload did, by its own account.
struct WorkloadRun {
  int pid = 0;
  int wait_status = 0;
  std::map<std::string, int64_t> report;
  absl::Time started, finished;

  int64_t Get(const std::string& name) const {
    auto it = report.find(name);
    if (it == report.end()) {
      ADD_FAILURE() << "the workload did not report " << name;
      return 0;
    }
    return it->second;
  }
};

// A forked workload that waits for Go(): either this executable exec'd as `exe` (a
// link naming the workload's comm), or, with `exe` empty, RunWorkload in the fork.
class Workload {
 public:
  explicit Workload(const std::string& exe) {
    int go[2], report[2];
    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << strerror(errno);
      return;
    }
    std::string env_entry = absl::StrCat(kReportFdEnv, "=", report[1]);
    std::vector<char*> env;
    for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
    env.push_back(env_entry.data());
    env.push_back(nullptr);
    std::string path = exe;
    char* argv[] = {path.data(), nullptr};
    pid_ = fork();
    if (pid_ == 0) {
      char c;
      if (read(go[0], &c, 1) != 1) _exit(98);
      if (exe.empty()) _exit(RunWorkload(report[1]));
      fcntl(report[1], F_SETFD, 0);  // the exec'd workload reports through it
      execve(path.c_str(), argv, env.data());
      _exit(99);
    }
    close(go[0]);
    close(report[1]);
    go_ = go[1];
    report_ = report[0];
    if (pid_ < 0) ADD_FAILURE() << "fork: " << strerror(errno);
  }
  ~Workload() {
    if (go_ >= 0) close(go_);
    if (report_ >= 0) close(report_);
    if (pid_ > 0 && !reaped_) waitpid(pid_, nullptr, 0);
  }
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  int pid() const { return pid_; }

  // Lets the workload act, reads its report to the end (when it and all its children are
  // gone) and reaps it.
  WorkloadRun Go() {
    WorkloadRun run;
    run.pid = pid_;
    run.started = absl::Now();
    (void)!write(go_, "g", 1);
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(report_, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) text.append(buf, static_cast<size_t>(n));
    }
    waitpid(pid_, &run.wait_status, 0);
    reaped_ = true;
    run.finished = absl::Now();
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(line, ' ');
      int64_t v = 0;
      EXPECT_TRUE(absl::SimpleAtoi(kv.second, &v)) << line;
      run.report[kv.first] = v;
    }
    return run;
  }

 private:
  int pid_ = -1;
  int go_ = -1;
  int report_ = -1;
  bool reaped_ = false;
};

// ---- Running watch ----

// Only keeps a broken binary from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kProgressBound = absl::Seconds(60);

constexpr char kReadyPrefix[] = "watching: ";

// `vigil-node watch` with its stdout and stderr read line by line.
class WatchRun {
 public:
  // Starts `vigil-node watch args...`; stdout goes to `stdout_fd` when given, else to a pipe
  // this object reads.
  explicit WatchRun(const std::vector<std::string>& args, int stdout_fd = -1) {
    int out[2] = {-1, -1}, err[2];
    if ((stdout_fd < 0 && pipe2(out, O_CLOEXEC) != 0) || pipe2(err, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << strerror(errno);
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, stdout_fd >= 0 ? stdout_fd : out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    std::vector<std::string> argv = {vigil::testing::BuildDir() + "/node/vigil-node", "watch"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> ptrs;
    for (std::string& a : argv) ptrs.push_back(a.data());
    ptrs.push_back(nullptr);
    int rc = posix_spawn(&pid_, ptrs[0], &actions, nullptr, ptrs.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (out[1] >= 0) close(out[1]);
    close(err[1]);
    stream_[0].fd = out[0];
    stream_[1].fd = err[0];
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn: " << strerror(rc);
      pid_ = -1;
    }
  }
  ~WatchRun() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (Stream& s : stream_) {
      if (s.fd >= 0) close(s.fd);
    }
  }
  WatchRun(const WatchRun&) = delete;
  WatchRun& operator=(const WatchRun&) = delete;

  const std::vector<std::string>& out() const { return stream_[0].lines; }
  const std::vector<std::string>& err() const { return stream_[1].lines; }

  // Reads both streams until `done()` holds or both ended. Returns done().
  bool ReadUntil(const std::function<bool()>& done) {
    const absl::Time give_up = absl::Now() + kProgressBound;
    while (!done()) {
      std::vector<pollfd> fds;
      std::vector<Stream*> which;
      for (Stream& s : stream_) {
        if (s.fd < 0) continue;
        fds.push_back({s.fd, POLLIN, 0});
        which.push_back(&s);
      }
      if (fds.empty()) return false;
      const int64_t left = absl::ToInt64Milliseconds(give_up - absl::Now());
      if (left <= 0) {
        ADD_FAILURE() << "vigil-node watch made no progress within " << kProgressBound;
        return false;
      }
      if (poll(fds.data(), fds.size(), static_cast<int>(left)) < 0 && errno != EINTR) {
        ADD_FAILURE() << "poll: " << strerror(errno);
        return false;
      }
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents != 0) which[i]->ReadSome();
      }
    }
    return true;
  }

  // Waits for the readiness line; returns it (empty when watch ended without one).
  std::string AwaitReady() {
    std::string line;
    ReadUntil([&] {
      for (const std::string& l : err()) {
        if (absl::StartsWith(l, kReadyPrefix)) line = l;
      }
      return !line.empty();
    });
    return line;
  }

  // Waits for the PROCESS_EXIT event of `pid` on stdout (JSON or text).
  bool AwaitExitOf(int pid) {
    return ReadUntil([&] {
      return std::any_of(out().begin(), out().end(), [&](const std::string& l) {
        return absl::StrContains(l, "PROCESS_EXIT") &&
               (absl::StrContains(l, absl::StrCat("\"pid\":", pid, ",")) ||
                absl::StrContains(l, absl::StrCat(" pid=", pid, " ")));
      });
    });
  }

  // Closes this side of watch's stdout pipe: the reader goes away.
  void CloseStdout() {
    close(stream_[0].fd);
    stream_[0].fd = -1;
  }

  // Reads both streams to their end and reaps watch; returns its wait status.
  int Finish() {
    ReadUntil([] { return false; });
    int status = -1;
    if (pid_ > 0) {
      if (stream_[0].fd >= 0 || stream_[1].fd >= 0) kill(pid_, SIGKILL);  // gave up reading
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    return status;
  }

  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }

  int Stop(int sig) {
    Signal(sig);
    return Finish();
  }

 private:
  struct Stream {
    int fd = -1;
    std::string partial;
    std::vector<std::string> lines;
    void ReadSome() {
      char buf[65536];
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) return;
      if (n <= 0) {
        if (!partial.empty()) lines.push_back(partial);
        partial.clear();
        close(fd);
        fd = -1;
        return;
      }
      partial.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = partial.find('\n')) != std::string::npos) {
        lines.push_back(partial.substr(0, nl));
        partial.erase(0, nl + 1);
      }
    }
  };

  pid_t pid_ = -1;
  Stream stream_[2];
};

// ---- Reading watch's output ----

// The fields every JSON line carries (zero values included).
const char* const kEventFields[] = {"time_unix_nano", "pid",     "tid",          "ppid", "uid",
                                    "comm",           "kind",    "return_value", "args", "path",
                                    "target_pid",     "address", "port"};

// Parses JSON lines into events; every line must be one JSON object with every field.
std::vector<v1::RuntimeEvent> ParseJsonEvents(const std::vector<std::string>& lines) {
  std::vector<v1::RuntimeEvent> events;
  for (const std::string& line : lines) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << "not a JSON object: " << line;
    if (!j.is_object()) continue;
    for (const char* field : kEventFields) EXPECT_TRUE(j.contains(field)) << field << ": " << line;
    v1::RuntimeEvent e;
    auto st = google::protobuf::util::JsonStringToMessage(line, &e);
    EXPECT_TRUE(st.ok()) << st.ToString() << ": " << line;
    events.push_back(e);
  }
  return events;
}

std::vector<v1::RuntimeEvent> Of(const std::vector<v1::RuntimeEvent>& events, int pid,
                                 v1::EventKind kind = v1::EVENT_KIND_UNSPECIFIED) {
  std::vector<v1::RuntimeEvent> out;
  for (const auto& e : events) {
    if (e.pid() == pid && (kind == v1::EVENT_KIND_UNSPECIFIED || e.kind() == kind)) {
      out.push_back(e);
    }
  }
  return out;
}

// Kind names, so a mismatch reads "EVENT_KIND_PTRACE" rather than 1.
std::vector<std::string> Kinds(const std::vector<v1::RuntimeEvent>& events) {
  std::vector<std::string> kinds;
  for (const auto& e : events) kinds.push_back(v1::EventKind_Name(e.kind()));
  return kinds;
}

std::vector<std::string> Kinds(std::initializer_list<v1::EventKind> list) {
  std::vector<std::string> kinds;
  for (v1::EventKind k : list) kinds.push_back(v1::EventKind_Name(k));
  return kinds;
}

// The readable form of `e` without its leading time of day (two watchers stamp one event
// at slightly different times).
std::string Untimed(const std::string& line) { return line.substr(line.find(' ') + 1); }

std::string OwnComm() {
  char comm[64] = {};
  FILE* f = std::fopen("/proc/self/comm", "r");
  if (f != nullptr) {
    if (std::fgets(comm, sizeof(comm), f) == nullptr) comm[0] = 0;
    std::fclose(f);
  }
  std::string s = comm;
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Checks `events` (all of watch's output) against what workload `w` reported: exactly the
// expected events of its processes in order, with their arguments and results, and nothing
// from any other process. `exec_path` is the file the workload was exec'd as after watch
// was ready (its exec is then an event too), empty when it only forked.
void ExpectWorkloadEvents(const std::vector<v1::RuntimeEvent>& events, const WorkloadRun& w,
                          const std::string& comm, const std::string& exec_path) {
  using v1::RuntimeEvent;
  const int pid = w.pid;
  const int sibling = static_cast<int>(w.Get("sibling"));
  const int denier = static_cast<int>(w.Get("denier"));
  const int ns_child = static_cast<int>(w.Get("ns_child"));
  const int renamed = static_cast<int>(w.Get("renamed"));
  ASSERT_EQ(w.Get("pid"), pid);
  ASSERT_TRUE(WIFEXITED(w.wait_status) && WEXITSTATUS(w.wait_status) == kWorkloadExit)
      << w.wait_status;
  // What the workload did, so the events below are about real actions.
  ASSERT_EQ(w.Get("vm_readv"), static_cast<int64_t>(sizeof("read from the sibling")));
  ASSERT_EQ(w.Get("seccomp"), 0);
  ASSERT_EQ(w.Get("denied_ptrace"), -kDeniedPtraceErrno);
  ASSERT_EQ(w.Get("attach"), 0);
  ASSERT_EQ(w.Get("detach"), 0);
  ASSERT_GT(w.Get("mmap_exec"), 0);
  ASSERT_GT(w.Get("mmap_data"), 0);
  ASSERT_EQ(w.Get("mprotect_exec"), 0);
  ASSERT_EQ(w.Get("connect"), 0);
  ASSERT_EQ(w.Get("connect_refused"), -ECONNREFUSED);
  ASSERT_EQ(w.Get("unshare"), 0);
  ASSERT_EQ(w.Get("rename"), 0);

  const std::set<int> ours = {pid, sibling, denier, ns_child, renamed};
  for (const RuntimeEvent& e : events) {
    EXPECT_TRUE(ours.contains(e.pid())) << "event of a process not selected: " << e.DebugString();
    EXPECT_EQ(e.tid(), e.pid()) << e.DebugString();  // all single-threaded
    EXPECT_EQ(e.uid(), getuid()) << e.DebugString();
    EXPECT_EQ(e.comm(), e.pid() == renamed ? kEscapedComm : comm) << e.DebugString();
    EXPECT_EQ(e.ppid(), e.pid() == pid ? getpid() : pid) << e.DebugString();
    // Wall-clock time, within the workload's run; the second of slack covers the clock
    // conversion (boot time plus an offset taken when the probes started).
    const absl::Time t = absl::FromUnixNanos(e.time_unix_nano());
    EXPECT_GE(t, w.started - absl::Seconds(1)) << e.DebugString();
    EXPECT_LE(t, w.finished + absl::Seconds(1)) << e.DebugString();
  }

  std::vector<std::string> expected;
  if (!exec_path.empty()) {
    expected = Kinds({v1::EVENT_KIND_PROCESS_EXEC, v1::EVENT_KIND_EXECVE});
  }
  for (const std::string& k :
       Kinds({v1::EVENT_KIND_PROCESS_FORK, v1::EVENT_KIND_PROCESS_VM_READV,
              v1::EVENT_KIND_PROCESS_FORK, v1::EVENT_KIND_PTRACE, v1::EVENT_KIND_PTRACE,
              v1::EVENT_KIND_MMAP, v1::EVENT_KIND_MPROTECT, v1::EVENT_KIND_BIND,
              v1::EVENT_KIND_LISTEN, v1::EVENT_KIND_CONNECT, v1::EVENT_KIND_BIND,
              v1::EVENT_KIND_CONNECT, v1::EVENT_KIND_PROCESS_FORK, v1::EVENT_KIND_PROCESS_FORK,
              v1::EVENT_KIND_PROCESS_EXIT})) {
    expected.push_back(k);
  }
  const std::vector<RuntimeEvent> mine = Of(events, pid);
  ASSERT_EQ(Kinds(mine), expected);
  size_t i = 0;
  if (!exec_path.empty()) {
    EXPECT_EQ(mine[0].path(), exec_path);
    EXPECT_EQ(mine[0].target_pid(), pid);
    EXPECT_EQ(mine[1].path(), exec_path);
    EXPECT_EQ(mine[1].return_value(), 0);
    i = 2;
  }
  const RuntimeEvent& fork_sibling = mine[i];
  EXPECT_EQ(fork_sibling.target_pid(), sibling);
  const RuntimeEvent& readv = mine[i + 1];
  EXPECT_EQ(readv.target_pid(), sibling);
  EXPECT_EQ(readv.args(0), static_cast<uint64_t>(sibling));
  EXPECT_EQ(readv.args(2), 1u);  // one local iovec
  EXPECT_EQ(readv.args(4), 1u);  // one remote iovec
  EXPECT_EQ(readv.return_value(), w.Get("vm_readv"));
  EXPECT_EQ(mine[i + 2].target_pid(), denier);
  const RuntimeEvent& attach = mine[i + 3];
  EXPECT_EQ(attach.args(0), static_cast<uint64_t>(PTRACE_ATTACH));
  EXPECT_EQ(attach.args(1), static_cast<uint64_t>(sibling));
  EXPECT_EQ(attach.target_pid(), sibling);
  EXPECT_EQ(attach.return_value(), w.Get("attach"));
  const RuntimeEvent& detach = mine[i + 4];
  EXPECT_EQ(detach.args(0), static_cast<uint64_t>(PTRACE_DETACH));
  EXPECT_EQ(detach.target_pid(), sibling);
  EXPECT_EQ(detach.return_value(), w.Get("detach"));
  const uint64_t page = static_cast<uint64_t>(w.Get("page"));
  const RuntimeEvent& mmap_event = mine[i + 5];
  EXPECT_EQ(mmap_event.return_value(), w.Get("mmap_exec"));
  EXPECT_EQ(mmap_event.args(1), page);
  EXPECT_EQ(mmap_event.args(2), static_cast<uint64_t>(PROT_READ | PROT_EXEC));
  EXPECT_EQ(mmap_event.args(3), static_cast<uint64_t>(MAP_PRIVATE | MAP_ANONYMOUS));
  const RuntimeEvent& mprotect_event = mine[i + 6];
  EXPECT_EQ(mprotect_event.args(0), static_cast<uint64_t>(w.Get("mmap_data")));
  EXPECT_EQ(mprotect_event.args(1), page);
  EXPECT_EQ(mprotect_event.args(2), static_cast<uint64_t>(PROT_READ | PROT_EXEC));
  EXPECT_EQ(mprotect_event.return_value(), w.Get("mprotect_exec"));
  const RuntimeEvent& bind_listener = mine[i + 7];
  EXPECT_EQ(bind_listener.args(0), static_cast<uint64_t>(w.Get("listener_fd")));
  EXPECT_EQ(bind_listener.address(), "127.0.0.1");
  EXPECT_EQ(bind_listener.port(), 0u);
  EXPECT_EQ(bind_listener.return_value(), w.Get("listener_bind"));
  const RuntimeEvent& listen_event = mine[i + 8];
  EXPECT_EQ(listen_event.args(0), static_cast<uint64_t>(w.Get("listener_fd")));
  EXPECT_EQ(listen_event.args(1), static_cast<uint64_t>(kListenBacklog));
  EXPECT_EQ(listen_event.return_value(), w.Get("listen"));
  const RuntimeEvent& connect_event = mine[i + 9];
  EXPECT_EQ(connect_event.args(0), static_cast<uint64_t>(w.Get("connect_fd")));
  EXPECT_EQ(connect_event.address(), "127.0.0.1");
  EXPECT_EQ(connect_event.port(), static_cast<uint32_t>(w.Get("listener_port")));
  EXPECT_EQ(connect_event.return_value(), w.Get("connect"));
  const RuntimeEvent& bind_closed = mine[i + 10];
  EXPECT_EQ(bind_closed.args(0), static_cast<uint64_t>(w.Get("closed_fd")));
  EXPECT_EQ(bind_closed.return_value(), w.Get("closed_bind"));
  const RuntimeEvent& refused = mine[i + 11];
  EXPECT_EQ(refused.args(0), static_cast<uint64_t>(w.Get("connect_refused_fd")));
  EXPECT_EQ(refused.address(), "127.0.0.1");
  EXPECT_EQ(refused.port(), static_cast<uint32_t>(w.Get("closed_port")));
  EXPECT_EQ(refused.return_value(), -ECONNREFUSED);
  EXPECT_EQ(mine[i + 12].target_pid(), ns_child);
  EXPECT_EQ(mine[i + 13].target_pid(), renamed);
  EXPECT_EQ(mine[i + 14].args(0), static_cast<uint64_t>(w.wait_status));

  const std::vector<RuntimeEvent> denied = Of(events, denier);
  ASSERT_EQ(Kinds(denied), Kinds({v1::EVENT_KIND_PRCTL, v1::EVENT_KIND_SECCOMP,
                                  v1::EVENT_KIND_PTRACE, v1::EVENT_KIND_PROCESS_EXIT}));
  EXPECT_EQ(denied[0].args(0), static_cast<uint64_t>(PR_SET_NO_NEW_PRIVS));
  EXPECT_EQ(denied[0].return_value(), w.Get("no_new_privs"));
  EXPECT_EQ(denied[1].args(0), static_cast<uint64_t>(SECCOMP_SET_MODE_FILTER));
  EXPECT_EQ(denied[1].return_value(), w.Get("seccomp"));
  EXPECT_EQ(denied[2].args(0), static_cast<uint64_t>(PTRACE_ATTACH));
  EXPECT_EQ(denied[2].target_pid(), sibling);
  EXPECT_EQ(denied[2].return_value(), -kDeniedPtraceErrno);
  EXPECT_EQ(denied[3].args(0), static_cast<uint64_t>(w.Get("denier_status")));

  const std::vector<RuntimeEvent> ns = Of(events, ns_child);
  ASSERT_EQ(Kinds(ns), Kinds({v1::EVENT_KIND_UNSHARE, v1::EVENT_KIND_PROCESS_EXIT}));
  EXPECT_EQ(ns[0].args(0), static_cast<uint64_t>(CLONE_NEWUSER));
  EXPECT_EQ(ns[0].return_value(), w.Get("unshare"));
  EXPECT_EQ(ns[1].args(0), static_cast<uint64_t>(w.Get("ns_child_status")));
  EXPECT_EQ(WEXITSTATUS(ns[1].args(0)), kNamespaceChildExit);

  // The new name is escaped (as process snapshots escape strings), never printed raw.
  const std::vector<RuntimeEvent> named = Of(events, renamed);
  ASSERT_EQ(Kinds(named), Kinds({v1::EVENT_KIND_PRCTL, v1::EVENT_KIND_PROCESS_EXIT}));
  EXPECT_EQ(named[0].args(0), static_cast<uint64_t>(PR_SET_NAME));
  EXPECT_EQ(named[0].return_value(), w.Get("rename"));
  EXPECT_EQ(named[1].args(0), static_cast<uint64_t>(w.Get("renamed_status")));

  const std::vector<RuntimeEvent> sib = Of(events, sibling);
  ASSERT_EQ(Kinds(sib), Kinds({v1::EVENT_KIND_PROCESS_EXIT}));
  EXPECT_EQ(sib[0].args(0), static_cast<uint64_t>(w.Get("sibling_status")));
}

// The drop counters of the text summary: every reason, none lost in these small runs.
constexpr char kNoDropsLine[] =
    "dropped events: ringbuf_full=0 stash_full=0 monitor_full=0 queue_full=0 malformed=0";

// Hook counts from the readiness line "watching: N hooks active, M refused; ...".
std::pair<int, int> ReadyCounts(const std::string& ready) {
  int active = -1, refused = -1;
  EXPECT_EQ(std::sscanf(ready.c_str(), "watching: %d hooks active, %d refused;", &active, &refused),
            2)
      << ready;
  return {active, refused};
}

// The text summary at the end of stderr: hooks as announced, every drop reason.
void ExpectTextSummary(const std::vector<std::string>& err, const std::string& ready) {
  auto [active, refused] = ReadyCounts(ready);
  ASSERT_GE(err.size(), 4u);
  const size_t n = err.size();
  EXPECT_TRUE(absl::StartsWith(err[n - 4], absl::StrCat("active hooks (", active, "): ")))
      << err[n - 4];
  EXPECT_TRUE(absl::StartsWith(err[n - 3], absl::StrCat("refused hooks (", refused, ")")))
      << err[n - 3];
  EXPECT_EQ(err[n - 2], kNoDropsLine);
  EXPECT_TRUE(absl::StartsWith(err[n - 1], "bpf object sha256: ")) << err[n - 1];
  EXPECT_EQ(err[n - 1].size(), std::string("bpf object sha256: ").size() + 64) << err[n - 1];
}

// The JSON summary: the last line of stderr, a ProbeStatus with every drop reason.
void ExpectJsonSummary(const std::vector<std::string>& err, const std::string& ready) {
  auto [active, refused] = ReadyCounts(ready);
  ASSERT_FALSE(err.empty());
  ASSERT_TRUE(nlohmann::json::accept(err.back())) << err.back();
  v1::ProbeStatus status;
  auto st = google::protobuf::util::JsonStringToMessage(err.back(), &status);
  ASSERT_TRUE(st.ok()) << st.ToString() << ": " << err.back();
  EXPECT_EQ(status.active_hooks_size(), active);
  EXPECT_EQ(status.refused_hooks_size(), refused);
  EXPECT_EQ(status.bpf_object_sha256().size(), 64u);
  std::map<std::string, uint64_t> drops(status.dropped_events().begin(),
                                        status.dropped_events().end());
  EXPECT_EQ(drops, (std::map<std::string, uint64_t>{{"ringbuf_full", 0},
                                                    {"stash_full", 0},
                                                    {"monitor_full", 0},
                                                    {"queue_full", 0},
                                                    {"malformed", 0}}));
}

bool ExitedZero(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// ---- Fixture: a directory with the workload's names ----

class WatchCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ::vigil::testing::TestTempDir::Create("watch");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    dir_ = tmp_.path();
    static int counter = 0;
    const std::string id = absl::StrCat(getpid(), "n", counter++);
    comm_ = absl::StrCat("vw", id);
    decoy_comm_ = absl::StrCat("vx", id);
    ASSERT_LE(comm_.size(), 15u);
    exe_ = dir_ + "/" + comm_;
    decoy_exe_ = dir_ + "/" + decoy_comm_;
    ASSERT_NO_FATAL_FAILURE(LinkSelf(exe_));
    ASSERT_NO_FATAL_FAILURE(LinkSelf(decoy_exe_));
  }
  // This executable under another name: a hard link (a copy across file systems), so the
  // name is also the resolved path that exe selectors match.
  static void LinkSelf(const std::string& name) {
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
    std::error_code ec;
    std::filesystem::create_hard_link(self, name, ec);
    if (ec) std::filesystem::copy_file(self, name, ec);
    ASSERT_FALSE(ec) << name << ": " << ec.message();
  }

  // Runs the decoy (not selected) and then the workload, both exec'd after watch is ready;
  // waits until watch printed the workload's exit. The decoy finished before the workload
  // started, so any of its events would be printed before that exit.
  WorkloadRun RunDecoyThenWorkload(WatchRun& watch) {
    WorkloadRun decoy = Workload(decoy_exe_).Go();
    EXPECT_TRUE(WIFEXITED(decoy.wait_status) && WEXITSTATUS(decoy.wait_status) == kWorkloadExit)
        << decoy.wait_status;
    WorkloadRun run = Workload(exe_).Go();
    EXPECT_TRUE(watch.AwaitExitOf(run.pid)) << "no exit event of the workload " << run.pid;
    return run;
  }

  ::vigil::testing::TestTempDir tmp_;
  std::string dir_, comm_, decoy_comm_, exe_, decoy_exe_;
};

// ---- Events ----

enum class SelectBy { kComm, kExeGlob };

class WatchSelectorTest : public WatchCommandTest,
                          public ::testing::WithParamInterface<SelectBy> {};

TEST_P(WatchSelectorTest, JsonLinesAreExactlyWhatTheSelectedWorkloadDid) {
  const std::string selector =
      GetParam() == SelectBy::kComm ? "comm=" + comm_ : "exe=" + dir_ + "/vw*";
  WatchRun watch({"--json", "--select", selector});
  const std::string ready = watch.AwaitReady();
  ASSERT_FALSE(ready.empty()) << absl::StrJoin(watch.err(), "\n");
  EXPECT_TRUE(absl::StrContains(ready, selector)) << ready;

  WorkloadRun run = RunDecoyThenWorkload(watch);
  const int status = watch.Stop(SIGINT);
  EXPECT_TRUE(ExitedZero(status)) << status;
  ExpectWorkloadEvents(ParseJsonEvents(watch.out()), run, comm_, exe_);
  ExpectJsonSummary(watch.err(), ready);
}

INSTANTIATE_TEST_SUITE_P(Selectors, WatchSelectorTest,
                         ::testing::Values(SelectBy::kComm, SelectBy::kExeGlob),
                         [](const auto& info) {
                           return info.param == SelectBy::kComm ? "Comm" : "ExeGlob";
                         });

TEST_F(WatchCommandTest, PidSelectorFollowsARunningProcessAndItsChildrenOnly) {
  // Both fork from this process before watch starts; only `selected` is named.
  Workload selected(""), other("");
  WatchRun watch({"--json", "--select", absl::StrCat("pid=", selected.pid())});
  const std::string ready = watch.AwaitReady();
  ASSERT_FALSE(ready.empty()) << absl::StrJoin(watch.err(), "\n");
  EXPECT_TRUE(absl::StrContains(ready, "running processes matched: 1;")) << ready;

  // Neither this process (the selected one's parent) nor its other child is watched.
  const long page = sysconf(_SC_PAGESIZE);
  void* code = mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(code, MAP_FAILED);
  munmap(code, page);
  WorkloadRun ignored = other.Go();
  ASSERT_EQ(ignored.Get("unshare"), 0);
  WorkloadRun run = selected.Go();
  ASSERT_TRUE(watch.AwaitExitOf(run.pid));
  const int status = watch.Stop(SIGTERM);
  EXPECT_TRUE(ExitedZero(status)) << status;
  ExpectWorkloadEvents(ParseJsonEvents(watch.out()), run, OwnComm(), "");
  ExpectJsonSummary(watch.err(), ready);
}

TEST_F(WatchCommandTest, TextModePrintsOneLinePerEvent) {
  // Two watchers see the same events; the readable one must print exactly one line for each
  // event the JSON one printed, rendered the same way.
  WatchRun json({"--json", "--select", "comm=" + comm_});
  WatchRun text({"--select", "comm=" + comm_});
  const std::string json_ready = json.AwaitReady();
  const std::string text_ready = text.AwaitReady();
  ASSERT_FALSE(json_ready.empty()) << absl::StrJoin(json.err(), "\n");
  ASSERT_FALSE(text_ready.empty()) << absl::StrJoin(text.err(), "\n");

  WorkloadRun run = RunDecoyThenWorkload(json);
  ASSERT_TRUE(text.AwaitExitOf(run.pid)) << absl::StrJoin(text.out(), "\n");
  json.Signal(SIGTERM);
  text.Signal(SIGTERM);
  EXPECT_TRUE(ExitedZero(json.Finish()));
  EXPECT_TRUE(ExitedZero(text.Finish()));

  const std::vector<v1::RuntimeEvent> events = ParseJsonEvents(json.out());
  ExpectWorkloadEvents(events, run, comm_, exe_);
  std::multiset<std::string> from_json, from_text;
  for (const auto& e : events) from_json.insert(Untimed(FormatEvent(e)));
  for (const std::string& line : text.out()) {
    EXPECT_TRUE(absl::StrContains(line, absl::StrCat(" comm=", comm_, " ")) ||
                absl::StrContains(line, absl::StrCat(" comm=", kEscapedComm, " ")))
        << line;
    from_text.insert(Untimed(line));
  }
  EXPECT_EQ(from_text, from_json);
  ExpectTextSummary(text.err(), text_ready);
}

// ---- Ending ----

// Each watcher below runs in its own process, at the same time as the others: unloading the
// probes takes a while, and the watchers do it in parallel.

TEST_F(WatchCommandTest, DurationSigintAndSigtermEachEndWithExitZeroAndTheSummary) {
  const std::vector<std::string> select = {"--select", "comm=" + comm_};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), select.begin(), select.end());
    return extra;
  };
  WatchRun timed_text(with({"--duration", "1"}));
  WatchRun timed_json(with({"--duration", "1", "--json"}));
  WatchRun interrupted(select);
  WatchRun terminated(with({"--json"}));
  const std::string timed_text_ready = timed_text.AwaitReady();
  const std::string timed_json_ready = timed_json.AwaitReady();
  const std::string interrupted_ready = interrupted.AwaitReady();
  const std::string terminated_ready = terminated.AwaitReady();
  ASSERT_FALSE(timed_text_ready.empty()) << absl::StrJoin(timed_text.err(), "\n");
  ASSERT_FALSE(timed_json_ready.empty()) << absl::StrJoin(timed_json.err(), "\n");
  ASSERT_FALSE(interrupted_ready.empty()) << absl::StrJoin(interrupted.err(), "\n");
  ASSERT_FALSE(terminated_ready.empty()) << absl::StrJoin(terminated.err(), "\n");

  // Two run until a signal, and print everything that happened before it; the duration
  // ends the other two, whatever they saw.
  WorkloadRun run = Workload(exe_).Go();
  ASSERT_TRUE(interrupted.AwaitExitOf(run.pid));
  ASSERT_TRUE(terminated.AwaitExitOf(run.pid));
  interrupted.Signal(SIGINT);
  terminated.Signal(SIGTERM);
  const int timed_text_status = timed_text.Finish();
  const int timed_json_status = timed_json.Finish();
  const int interrupted_status = interrupted.Finish();
  const int terminated_status = terminated.Finish();
  EXPECT_TRUE(ExitedZero(timed_text_status)) << timed_text_status;
  EXPECT_TRUE(ExitedZero(timed_json_status)) << timed_json_status;
  ExpectTextSummary(timed_text.err(), timed_text_ready);
  ExpectJsonSummary(timed_json.err(), timed_json_ready);
  EXPECT_TRUE(ExitedZero(interrupted_status)) << interrupted_status;
  EXPECT_TRUE(ExitedZero(terminated_status)) << terminated_status;
  ExpectTextSummary(interrupted.err(), interrupted_ready);
  ExpectJsonSummary(terminated.err(), terminated_ready);
  ExpectWorkloadEvents(ParseJsonEvents(terminated.out()), run, comm_, exe_);
  EXPECT_EQ(interrupted.out().size(), terminated.out().size());
}

TEST_F(WatchCommandTest, AReaderThatWentAwayEndsWatchWithExitZero) {
  // `vigil-node watch --json | head -1`: once its pipe has no reader watch stops, even when
  // nothing more happens.
  WatchRun piped({"--json", "--select", "comm=" + comm_});
  // A socket whose reader shut down reading shows nothing on poll: the next write fails with
  // EPIPE (and SIGPIPE, which must not kill watch).
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  WatchRun socket({"--json", "--select", "comm=" + comm_}, sv[1]);
  close(sv[1]);
  const std::string piped_ready = piped.AwaitReady();
  const std::string socket_ready = socket.AwaitReady();
  ASSERT_FALSE(piped_ready.empty()) << absl::StrJoin(piped.err(), "\n");
  ASSERT_FALSE(socket_ready.empty()) << absl::StrJoin(socket.err(), "\n");
  ASSERT_EQ(shutdown(sv[0], SHUT_RD), 0);

  WorkloadRun run = Workload(exe_).Go();
  ASSERT_TRUE(piped.AwaitExitOf(run.pid));
  piped.CloseStdout();
  const int piped_status = piped.Finish();
  const int socket_status = socket.Finish();  // ended by its first failed write
  close(sv[0]);
  EXPECT_TRUE(ExitedZero(piped_status)) << piped_status;
  EXPECT_TRUE(ExitedZero(socket_status)) << socket_status;
  for (WatchRun* watch : {&piped, &socket}) {
    ASSERT_GE(watch->err().size(), 2u);
    EXPECT_EQ(watch->err()[watch->err().size() - 2], "vigil-node: watch: output closed, stopping");
  }
  ExpectJsonSummary(piped.err(), piped_ready);
  ExpectJsonSummary(socket.err(), socket_ready);
}

// ---- Bad input ----

struct BadInput {
  const char* name;
  std::vector<std::string> args;
  const char* mentions;  // the message names the culprit
};

class WatchBadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(WatchBadInputTest, FailsWithOneLineAndExitCodeTwo) {
  WatchRun watch(GetParam().args);
  const int status = watch.Finish();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_TRUE(watch.out().empty()) << absl::StrJoin(watch.out(), "\n");
  ASSERT_EQ(watch.err().size(), 1u) << absl::StrJoin(watch.err(), "\n");
  EXPECT_TRUE(absl::StartsWith(watch.err()[0], "vigil-node: ")) << watch.err()[0];
  EXPECT_TRUE(absl::StrContains(watch.err()[0], GetParam().mentions)) << watch.err()[0];
}

INSTANTIATE_TEST_SUITE_P(
    Flags, WatchBadInputTest,
    ::testing::Values(BadInput{"NegativeDuration", {"--duration", "-1"}, "--duration"},
                      BadInput{"TextDuration", {"--duration", "soon"}, "--duration"},
                      BadInput{"UnknownFlag", {"--pid", "0"}, "--pid"},
                      BadInput{"PidZero", {"--select", "pid=0"}, "pid '0'"},
                      BadInput{"NotKeyValue", {"--select", "comm"}, "'comm' is not key=value"},
                      BadInput{"UnknownKey", {"--select", "name=x"}, "unknown key 'name'"},
                      BadInput{"CommTooLong", {"--select", "comm=sixteen-letters!"}, "15 bytes"},
                      BadInput{"StrayArgument", {"--json", "extra"}, "extra"},
                      BadInput{"ZeroDuration", {"--duration", "0"}, "--duration"},
                      BadInput{"BracketGlob", {"--select", "exe=/opt/[ab]/x"}, "only '*' and '?'"},
                      BadInput{"EscapeGlob", {"--select", "exe=/opt/a\\*"}, "only '*' and '?'"}),
    [](const auto& info) { return info.param.name; });

TEST(WatchPidSelectorTest, PidThatIsNotRunningFailsBeforeLoading) {
  // Above any pid_max, so never a running process: an error of the run, exit 1.
  WatchRun watch({"--select", "pid=1073741824"});
  const int status = watch.Finish();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_TRUE(watch.out().empty());
  EXPECT_EQ(watch.err(), std::vector<std::string>{"vigil-node: watch: selector "
                                                  "'pid=1073741824' matches no running process"});
}

// ---- Options the probes cannot honour ----

Selector Parsed(const std::string& text) {
  auto s = ParseSelector(text);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : Selector{};
}

TEST(ValidateWatchOptionsTest, AcceptsWhatTheKernelCanMatch) {
  WatchOptions o;
  for (int i = 0; i < 16; ++i) o.selectors.push_back(Parsed(absl::StrCat("comm=c", i)));
  for (int i = 1; i <= 20; ++i) o.selectors.push_back(Parsed(absl::StrCat("pid=", i)));
  o.selectors.push_back(Parsed("pid=7,comm=c"));  // has a pid: not matched at exec
  EXPECT_TRUE(ValidateWatchOptions(o).ok()) << ValidateWatchOptions(o);
}

TEST(ValidateWatchOptionsTest, RefusesWhatTheKernelCannotMatch) {
  WatchOptions too_many;
  for (int i = 0; i < 17; ++i) too_many.selectors.push_back(Parsed(absl::StrCat("comm=c", i)));
  EXPECT_EQ(ValidateWatchOptions(too_many).message(),
            "17 selectors without a pid: the kernel matches at most 16 at exec");

  WatchOptions long_glob;
  long_glob.selectors.push_back(Parsed("exe=/" + std::string(127, 'a')));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateWatchOptions(long_glob)));

  for (const char* glob : {"exe=/usr/bin/python3.[0-9]*", "exe=/opt/a\\*b"}) {
    WatchOptions o;
    o.selectors.push_back(Parsed(glob));
    absl::Status st = ValidateWatchOptions(o);
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << glob;
    EXPECT_TRUE(absl::StrContains(st.message(), "only '*' and '?'")) << st;
  }

  WatchOptions negative;
  negative.duration_seconds = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateWatchOptions(negative)));
}

}  // namespace
}  // namespace vigil::node
