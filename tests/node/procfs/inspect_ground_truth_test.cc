// Snapshots of unusual but realistic processes, checked against ground truth the test sets up
// itself: the syscalls it made (credentials, capabilities, seccomp, mappings, sockets,
// namespaces) and what those syscalls returned, never procfs read the way the snapshotter
// reads it.

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <mntent.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "google/protobuf/util/json_util.h"
#include "node/procfs/procfs.h"
#include "node/procfs/snapshotter.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

constexpr size_t kPage = 4096;

// A forked child that sets up a workload, sends what it did back over a pipe and then holds
// still until the test ends (or does something else when the setup never returns).
class Workload {
 public:
  // What the child's setup gets: a way to report and to wait for the end of the test.
  struct Io {
    int report_fd;
    int hold_fd;
    void Send(const void* data, size_t n) const {
      if (write(report_fd, data, n) != static_cast<ssize_t>(n)) _exit(100);
    }
    [[noreturn]] void Hold() const {
      char c;
      while (read(hold_fd, &c, 1) > 0) {
      }
      _exit(0);
    }
  };

  Workload() = default;
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;
  ~Workload() { Stop(); }

  // Runs `setup` in a child; it reports with io.Send and ends with io.Hold().
  void Start(const std::function<void(const Io&)>& setup) {
    int report[2], hold[2];
    ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      close(report[0]);
      close(hold[1]);
      setup(Io{report[1], hold[0]});
      _exit(101);
    }
    close(report[1]);
    close(hold[0]);
    report_fd_ = report[0];
    hold_fd_ = hold[1];
  }

  // Reads `n` bytes of the child's report; fails the test with the child's exit status
  // when it died first.
  void Receive(void* data, size_t n) {
    size_t got = 0;
    while (got < n) {
      ssize_t r = read(report_fd_, static_cast<char*>(data) + got, n - got);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    if (got == n) return;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    FAIL() << "the workload failed to set up, exit status " << WEXITSTATUS(status);
  }

  void Stop() {
    if (hold_fd_ >= 0) close(hold_fd_);
    if (report_fd_ >= 0) close(report_fd_);
    hold_fd_ = report_fd_ = -1;
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  // Returns once the child exec'd (or exited): its close-on-exec report pipe closed.
  void WaitForExec() {
    char c;
    while (read(report_fd_, &c, 1) > 0) {
    }
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int report_fd_ = -1;
  int hold_fd_ = -1;
};

std::string Hex(const std::string& bytes) { return HexEncode(Sha256(bytes)); }

std::string ReadWhole(const std::string& path) {
  std::string out;
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}

bool WriteWhole(const std::string& path, const std::string& bytes, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return false;
  bool ok = write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  return close(fd) == 0 && ok;
}

uint64_t InodeOf(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

uint64_t InodeOfFd(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

// The path of the running test binary (the forked workloads run it too).
std::string OwnExe() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec).string();
}

const v1::SyscallVerdict* NativeVerdict(const v1::SeccompState& sec, const std::string& name) {
  for (const auto& v : sec.verdicts()) {
    if (v.syscall() == name && v.arch() == "x86_64") return &v;
  }
  return nullptr;
}

struct Caps {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};

Caps CapGet() {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  syscall(SYS_capget, &h, d);
  Caps c;
  c.effective = d[0].effective | (uint64_t{d[1].effective} << 32);
  c.permitted = d[0].permitted | (uint64_t{d[1].permitted} << 32);
  c.inheritable = d[0].inheritable | (uint64_t{d[1].inheritable} << 32);
  return c;
}

bool CapSet(uint64_t effective, uint64_t permitted, uint64_t inheritable) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  d[0].effective = static_cast<uint32_t>(effective);
  d[1].effective = static_cast<uint32_t>(effective >> 32);
  d[0].permitted = static_cast<uint32_t>(permitted);
  d[1].permitted = static_cast<uint32_t>(permitted >> 32);
  d[0].inheritable = static_cast<uint32_t>(inheritable);
  d[1].inheritable = static_cast<uint32_t>(inheritable >> 32);
  return syscall(SYS_capset, &h, d) == 0;
}

// ptrace -> ERRNO(EPERM), everything else allowed, for the calling thread only.
bool DenyPtraceInThisThread() {
  sock_filter prog[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog fprog{static_cast<unsigned short>(sizeof(prog) / sizeof(prog[0])), prog};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0;
}

class InspectGroundTruthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ::vigil::testing::TestTempDir::Create("inspect");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    dir_ = tmp_.path();
    sleep_bytes_ = ReadWhole("/bin/sleep");
    ASSERT_FALSE(sleep_bytes_.empty());
  }
  void TearDown() override {
    for (auto& w : workloads_) w->Stop();
  }

  Workload& NewWorkload() {
    workloads_.push_back(std::make_unique<Workload>());
    return *workloads_.back();
  }

  // The library's snapshot; every gap fails the test unless `gaps` is given.
  v1::ProcessSnapshot Snap(int pid, std::vector<std::string>* gaps = nullptr,
                           std::vector<std::string> syscalls = {}) {
    SnapshotOptions opts;
    opts.seccomp_syscalls = std::move(syscalls);
    Snapshotter snap(opts, &hashes_);
    std::vector<std::string> own;
    auto s = snap.Snapshot(pid, gaps != nullptr ? gaps : &own);
    EXPECT_TRUE(s.ok()) << s.status();
    for (const auto& g : own) ADD_FAILURE() << "unexpected gap: " << g;
    return s.ok() ? *s : v1::ProcessSnapshot();
  }

  // Starts `argv` through execve(2) in a child, returning once the exec succeeded (the
  // close-on-exec pipe closes).
  pid_t Exec(const std::function<void()>& exec) {
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      close(p[0]);
      exec();
      _exit(102);
    }
    close(p[1]);
    char c;
    EXPECT_EQ(read(p[0], &c, 1), 0);  // EOF: exec'd
    close(p[0]);
    execs_.push_back(pid);
    // exec closes the pipe before the kernel sets the new program's argument area, so for a
    // moment /proc/<pid>/cmdline reads empty: wait (bounded) until it does not.
    const std::string cmdline = "/proc/" + std::to_string(pid) + "/cmdline";
    for (int i = 0; i < 5000; ++i) {
      const int fd = ::open(cmdline.c_str(), O_RDONLY | O_CLOEXEC);
      const ssize_t n = fd >= 0 ? ::read(fd, &c, 1) : -1;
      if (fd >= 0) ::close(fd);
      if (n != 0) break;  // an argument, or the process is gone (the test sees that)
      usleep(1000);
    }
    return pid;
  }

  void StopExecs() {
    for (pid_t p : execs_) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    execs_.clear();
  }

  ::vigil::testing::TestTempDir tmp_;
  std::string dir_;
  std::string sleep_bytes_;
  FileHashCache hashes_;
  std::vector<std::unique_ptr<Workload>> workloads_;
  std::vector<pid_t> execs_;

 public:
  ~InspectGroundTruthTest() override { StopExecs(); }
};

// Threads: one installs a seccomp filter for itself, one drops capabilities and changes its
// uids with raw syscalls, one enters a new UTS namespace. The process-level fields are the
// main thread's; each differing thread is listed with its own state.
TEST_F(InspectGroundTruthTest, ThreadsThatDifferAreListedWithTheirOwnState) {
  struct Report {
    int filtered_tid, dropped_tid, uts_tid;
    int filter_ok;
    uint32_t dropped_uids[3];
    Caps main_caps, dropped_caps;
    uint64_t thread_uts;
  } r{};
  Workload& w = NewWorkload();
  w.Start([](const Workload::Io& io) {
    Report r{};
    r.main_caps = CapGet();
    // Each thread changes its own state, then parks until the process ends.
    int go[2];
    if (pipe(go) != 0) _exit(1);
    int ready[2];
    if (pipe(ready) != 0) _exit(1);
    auto park = [&] {
      char c = 0;
      if (write(ready[1], &c, 1) != 1) _exit(1);
      (void)read(go[0], &c, 1);
    };
    std::thread filtered([&] {
      r.filtered_tid = static_cast<int>(gettid());
      r.filter_ok = DenyPtraceInThisThread();
      park();
    });
    std::thread dropped([&] {
      r.dropped_tid = static_cast<int>(gettid());
      Caps c = CapGet();
      uint64_t keep = c.permitted & ~(1ull << CAP_NET_ADMIN);
      if (!CapSet(c.effective & keep, keep, c.inheritable)) _exit(2);
      if (syscall(SYS_setresuid, 1000, 1000, 1000) != 0) _exit(3);  // this thread only
      uid_t u[3];
      if (syscall(SYS_getresuid, &u[0], &u[1], &u[2]) != 0) _exit(4);
      for (int i = 0; i < 3; ++i) r.dropped_uids[i] = u[i];
      r.dropped_caps = CapGet();
      park();
    });
    std::thread uts([&] {
      r.uts_tid = static_cast<int>(gettid());
      if (unshare(CLONE_NEWUTS) != 0) _exit(5);
      r.thread_uts = InodeOf("/proc/thread-self/ns/uts");
      park();
    });
    char c;
    for (int i = 0; i < 3; ++i) {
      if (read(ready[0], &c, 1) != 1) _exit(6);
    }
    io.Send(&r, sizeof(r));
    io.Hold();
  });
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_NO_FATAL_FAILURE(w.Receive(&r, sizeof(r)));
  ASSERT_TRUE(r.filter_ok);

  v1::ProcessSnapshot s = Snap(w.pid(), nullptr, {"ptrace"});
  // The main thread: no filter, all of its capabilities, the test's UTS namespace.
  EXPECT_EQ(s.seccomp().mode(), 0u);
  EXPECT_EQ(s.seccomp().filter_count(), 0u);
  EXPECT_FALSE(s.seccomp().no_new_privs());
  EXPECT_EQ(s.capabilities().effective(), r.main_caps.effective);
  EXPECT_EQ(s.credentials().uid_effective(), geteuid());
  EXPECT_EQ(s.namespaces().at("uts"), InodeOf("/proc/self/ns/uts"));
  EXPECT_FALSE(s.main_thread_exited());

  ASSERT_EQ(s.divergent_threads_size(), 3);
  std::map<int, const v1::ThreadState*> by_tid;
  for (const auto& t : s.divergent_threads()) by_tid[t.tid()] = &t;
  ASSERT_TRUE(by_tid.count(r.filtered_tid));
  ASSERT_TRUE(by_tid.count(r.dropped_tid));
  ASSERT_TRUE(by_tid.count(r.uts_tid));

  const v1::ThreadState& filtered = *by_tid[r.filtered_tid];
  EXPECT_EQ(filtered.seccomp().mode(), 2u);
  EXPECT_EQ(filtered.seccomp().filter_count(), 1u);
  EXPECT_TRUE(filtered.seccomp().no_new_privs());
  EXPECT_TRUE(filtered.seccomp().filters_inspected()) << filtered.seccomp().inspection_error();
  const v1::SyscallVerdict* ptrace = NativeVerdict(filtered.seccomp(), "ptrace");
  ASSERT_NE(ptrace, nullptr);
  EXPECT_EQ(ptrace->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(ptrace->data(), static_cast<uint32_t>(EPERM));
  EXPECT_EQ(filtered.capabilities().effective(), r.main_caps.effective);
  // The main thread's own verdict: nothing installed there.
  const v1::SyscallVerdict* main_ptrace = NativeVerdict(s.seccomp(), "ptrace");
  ASSERT_NE(main_ptrace, nullptr);
  EXPECT_EQ(main_ptrace->action(), v1::SECCOMP_ACTION_ALLOW);

  const v1::ThreadState& dropped = *by_tid[r.dropped_tid];
  EXPECT_EQ(dropped.credentials().uid_real(), r.dropped_uids[0]);
  EXPECT_EQ(dropped.credentials().uid_effective(), r.dropped_uids[1]);
  EXPECT_EQ(dropped.credentials().uid_saved(), r.dropped_uids[2]);
  EXPECT_EQ(dropped.capabilities().effective(), r.dropped_caps.effective);
  EXPECT_EQ(dropped.capabilities().permitted(), r.dropped_caps.permitted);
  EXPECT_EQ(dropped.seccomp().mode(), 0u);

  const v1::ThreadState& uts = *by_tid[r.uts_tid];
  EXPECT_EQ(uts.namespaces().at("uts"), r.thread_uts);
  EXPECT_NE(uts.namespaces().at("uts"), s.namespaces().at("uts"));
  EXPECT_EQ(uts.namespaces().at("net"), s.namespaces().at("net"));
}

// The main thread calls pthread_exit while another thread runs: the process is alive, and
// its executable, memory and namespaces are read through the running thread.
TEST_F(InspectGroundTruthTest, MainThreadExitedIsReadThroughARunningThread) {
  Workload& w = NewWorkload();
  w.Start([](const Workload::Io& io) {
    pthread_t main_thread = pthread_self();
    std::thread([main_thread, io] {
      pthread_join(main_thread, nullptr);  // returns once the main thread has exited
      int tid = static_cast<int>(gettid());
      io.Send(&tid, sizeof(tid));
      io.Hold();
    }).detach();
    // The raw exit(2) ends this thread only, as pthread_exit does, without the forced
    // unwinding that the test framework's exception handlers would catch.
    syscall(SYS_exit, 0);
  });
  ASSERT_FALSE(HasFatalFailure());
  int tid = 0;
  ASSERT_NO_FATAL_FAILURE(w.Receive(&tid, sizeof(tid)));
  ASSERT_NE(tid, w.pid());

  v1::ProcessSnapshot s = Snap(w.pid());
  const std::string exe = OwnExe();
  const std::string exe_hash = Hex(ReadWhole(exe));
  EXPECT_TRUE(s.main_thread_exited());
  EXPECT_EQ(s.exe_path(), exe);
  EXPECT_EQ(s.exe_sha256(), exe_hash);
  EXPECT_EQ(s.cmdline(0), ::testing::internal::GetArgvs()[0]);
  EXPECT_EQ(s.namespaces().at("net"), InodeOf("/proc/self/ns/net"));
  EXPECT_EQ(s.namespaces().at("mnt"), InodeOf("/proc/self/ns/mnt"));
  EXPECT_FALSE(s.root_read_only());
  bool saw_exe = false;
  for (const auto& f : s.memory().executable_files()) saw_exe |= f.sha256() == exe_hash;
  EXPECT_TRUE(saw_exe);
  EXPECT_EQ(s.divergent_threads_size(), 0);
}

// New user, mount, pid and network namespaces; the process is pid 1 of its pid namespace
// and pivot_root(2)s into a tmpfs that is read-only or writable.
class NamespacedRootTest : public InspectGroundTruthTest,
                           public ::testing::WithParamInterface<bool> {};

TEST_P(NamespacedRootTest, ReadsTheProcessesOwnNamespacesRootAndSockets) {
  const bool read_only = GetParam();
  const std::string root = dir_ + "/root";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  struct Report {
    pid_t pid;  // in the test's pid namespace
    uint64_t net, mnt, user, pid_ns;
    int mkdir_errno;
    uint16_t tcp_port, tcp6_port;
    int tcp6_ok;
  } r{};
  const std::string abstract_name = absl::StrCat("vigil-gt-ns-", getpid());
  Workload& w = NewWorkload();
  w.Start([&](const Workload::Io& io) {
    const uid_t uid = getuid();
    const gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET) != 0 ||
        !WriteWhole("/proc/self/setgroups", "deny", 0) ||
        !WriteWhole("/proc/self/uid_map", absl::StrCat("0 ", uid, " 1"), 0) ||
        !WriteWhole("/proc/self/gid_map", absl::StrCat("0 ", gid, " 1"), 0)) {
      _exit(1);
    }
    int inner[2];
    if (pipe(inner) != 0) _exit(2);
    pid_t child = fork();  // pid 1 of the new pid namespace
    if (child == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      Report c{};
      c.net = InodeOf("/proc/self/ns/net");
      c.mnt = InodeOf("/proc/self/ns/mnt");
      c.user = InodeOf("/proc/self/ns/user");
      c.pid_ns = InodeOf("/proc/self/ns/pid");
      int tcp = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      socklen_t len = sizeof(a);
      if (bind(tcp, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(tcp, 1) != 0 ||
          getsockname(tcp, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        _exit(3);
      }
      c.tcp_port = ntohs(a.sin_port);
      int tcp6 = socket(AF_INET6, SOCK_STREAM, 0);
      sockaddr_in6 a6{};
      a6.sin6_family = AF_INET6;
      len = sizeof(a6);
      c.tcp6_ok = tcp6 >= 0 && bind(tcp6, reinterpret_cast<sockaddr*>(&a6), sizeof(a6)) == 0 &&
                  listen(tcp6, 1) == 0 &&
                  getsockname(tcp6, reinterpret_cast<sockaddr*>(&a6), &len) == 0;
      c.tcp6_port = ntohs(a6.sin6_port);
      int ux = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un u{};
      u.sun_family = AF_UNIX;
      memcpy(u.sun_path + 1, abstract_name.data(), abstract_name.size());
      if (bind(ux, reinterpret_cast<sockaddr*>(&u),
               offsetof(sockaddr_un, sun_path) + 1 + abstract_name.size()) != 0 ||
          listen(ux, 1) != 0) {
        _exit(4);
      }
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          mount("tmpfs", root.c_str(), "tmpfs", 0, "size=64k") != 0 ||
          mkdir((root + "/old").c_str(), 0755) != 0) {
        _exit(5);
      }
      if (read_only &&
          mount(nullptr, root.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
        _exit(6);
      }
      if (syscall(SYS_pivot_root, root.c_str(), (root + "/old").c_str()) != 0 || chdir("/") != 0 ||
          umount2("/old", MNT_DETACH) != 0) {
        _exit(7);
      }
      c.mkdir_errno = mkdir("/probe", 0755) == 0 ? 0 : errno;
      if (write(inner[1], &c, sizeof(c)) != sizeof(c)) _exit(8);
      io.Hold();
    }
    Report c{};
    if (child < 0 || read(inner[0], &c, sizeof(c)) != sizeof(c)) _exit(9);
    c.pid = child;
    io.Send(&c, sizeof(c));
    io.Hold();
  });
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_NO_FATAL_FAILURE(w.Receive(&r, sizeof(r)));
  ASSERT_EQ(r.mkdir_errno, read_only ? EROFS : 0);

  // Both through the library and through the real binary's JSON.
  v1::ProcessSnapshot lib = Snap(r.pid);
  std::string cmd = absl::StrCat(vigil::testing::BuildDir(),
                                 "/node/vigil-node inspect --json --pid ", r.pid, " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string json;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) json.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << cmd;
  v1::ProcessSnapshot bin;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &bin).ok()) << json;

  for (const v1::ProcessSnapshot* s : {&lib, &bin}) {
    SCOPED_TRACE(s == &lib ? "library" : "binary");
    EXPECT_EQ(s->pid(), r.pid);
    EXPECT_EQ(s->ppid(), w.pid());
    EXPECT_EQ(s->namespaces().at("net"), r.net);
    EXPECT_EQ(s->namespaces().at("mnt"), r.mnt);
    EXPECT_EQ(s->namespaces().at("user"), r.user);
    EXPECT_EQ(s->namespaces().at("pid"), r.pid_ns);
    EXPECT_NE(s->namespaces().at("net"), InodeOf("/proc/self/ns/net"));
    ASSERT_EQ(s->credentials().uid_map_size(), 1);
    EXPECT_EQ(s->credentials().uid_map(0).inside(), 0u);
    EXPECT_EQ(s->credentials().uid_map(0).outside(), getuid());
    EXPECT_EQ(s->credentials().uid_map(0).count(), 1u);
    ASSERT_TRUE(s->has_root_read_only());
    EXPECT_EQ(s->root_read_only(), read_only);
    EXPECT_EQ(s->exe_path(), OwnExe());  // the binary is reached through the exe link
    // The sockets exist only in the process's network namespace.
    std::set<std::tuple<std::string, std::string, std::string, uint32_t>> got;
    for (const auto& k : s->sockets()) {
      got.insert({k.protocol(), k.state(), k.local_address(), k.local_port()});
    }
    std::set<std::tuple<std::string, std::string, std::string, uint32_t>> want = {
        {"tcp", "listen", "0.0.0.0", r.tcp_port}, {"unix", "listen", "@" + abstract_name, 0}};
    if (r.tcp6_ok) want.insert({"tcp6", "listen", "::", r.tcp6_port});
    EXPECT_EQ(got, want);
  }
}

INSTANTIATE_TEST_SUITE_P(ReadOnlyAndWritable, NamespacedRootTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "ReadOnly" : "Writable"; });

// A chroot(2) into a plain directory of a read-only mount: there is no "/" line in its
// mountinfo, the root is still known.
TEST_F(InspectGroundTruthTest, ChrootIntoADirectoryOfAReadOnlyMount) {
  const std::string mnt = dir_ + "/mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  Workload& w = NewWorkload();
  w.Start([&](const Workload::Io& io) {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0 ||
        mkdir((mnt + "/jail").c_str(), 0755) != 0 ||
        mount(nullptr, mnt.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0 ||
        chroot((mnt + "/jail").c_str()) != 0 || chdir("/") != 0) {
      _exit(1);
    }
    int e = mkdir("/probe", 0755) == 0 ? 0 : errno;
    io.Send(&e, sizeof(e));
    io.Hold();
  });
  ASSERT_FALSE(HasFatalFailure());
  int mkdir_errno = 0;
  ASSERT_NO_FATAL_FAILURE(w.Receive(&mkdir_errno, sizeof(mkdir_errno)));
  ASSERT_EQ(mkdir_errno, EROFS);
  v1::ProcessSnapshot s = Snap(w.pid());
  ASSERT_TRUE(s.has_root_read_only());
  EXPECT_TRUE(s.root_read_only());
}

// The program file was deleted, or replaced by another, after the process started: the
// snapshot names and hashes the file the process runs.
TEST_F(InspectGroundTruthTest, DeletedAndReplacedExecutablesAreHashedAsRunning) {
  const std::string deleted = dir_ + "/deleted-prog";
  const std::string replaced = dir_ + "/replaced-prog";
  ASSERT_TRUE(WriteWhole(deleted, sleep_bytes_, 0755));
  ASSERT_TRUE(WriteWhole(replaced, sleep_bytes_, 0755));
  pid_t a = Exec([&] { execl(deleted.c_str(), deleted.c_str(), "1000", nullptr); });
  pid_t b = Exec([&] { execl(replaced.c_str(), replaced.c_str(), "1000", nullptr); });
  ASSERT_EQ(unlink(deleted.c_str()), 0);
  const std::string other = "#!/bin/sh\nexit 0\n";
  ASSERT_TRUE(WriteWhole(replaced + ".new", other, 0755));
  ASSERT_EQ(rename((replaced + ".new").c_str(), replaced.c_str()), 0);

  const std::string want = Hex(sleep_bytes_);
  for (auto [pid, path] : {std::pair{a, deleted}, std::pair{b, replaced}}) {
    SCOPED_TRACE(path);
    v1::ProcessSnapshot s = Snap(pid);
    EXPECT_EQ(s.exe_path(), path + " (deleted)");
    EXPECT_EQ(s.exe_sha256(), want);
    ASSERT_EQ(s.cmdline_size(), 2);
    EXPECT_EQ(s.cmdline(0), path);
    bool mapped = false;
    for (const auto& f : s.memory().executable_files()) {
      mapped |= f.path() == path + " (deleted)" && f.sha256() == want;
    }
    EXPECT_TRUE(mapped);
  }
  EXPECT_NE(Hex(ReadWhole(replaced)), want);  // the new file is another program
}

// fexecve(3) of a memfd: the program has no path; its memory is anonymous memory.
TEST_F(InspectGroundTruthTest, ProgramRunFromAMemfd) {
  pid_t pid = Exec([&] {
    int m = memfd_create("vigil payload", MFD_CLOEXEC);
    if (m < 0 || write(m, sleep_bytes_.data(), sleep_bytes_.size()) !=
                     static_cast<ssize_t>(sleep_bytes_.size())) {
      _exit(1);
    }
    char arg0[] = "payload", arg1[] = "1000";
    char* argv[] = {arg0, arg1, nullptr};
    char* envp[] = {nullptr};
    fexecve(m, argv, envp);
  });
  v1::ProcessSnapshot s = Snap(pid);
  EXPECT_EQ(s.exe_path(), "/memfd:vigil payload (deleted)");
  EXPECT_EQ(s.exe_sha256(), Hex(sleep_bytes_));
  EXPECT_EQ(s.cmdline(0), "payload");
  bool text = false;
  for (const auto& r : s.memory().anonymous_executable()) {
    if (r.name() != "/memfd:vigil payload (deleted)") continue;
    text = true;
    EXPECT_FALSE(r.writable());
    EXPECT_FALSE(r.writable_alias());  // the descriptor closed at exec, nothing maps it writable
  }
  EXPECT_TRUE(text);
  for (const auto& f : s.memory().executable_files()) EXPECT_NE(f.path().rfind("/memfd:", 0), 0u);
}

// Spaces and a newline in the program's path: the same escaped path everywhere.
TEST_F(InspectGroundTruthTest, ExecutablePathWithSpacesAndANewline) {
  const std::string sub = dir_ + "/dir with space\nand newline";
  ASSERT_EQ(mkdir(sub.c_str(), 0755), 0);
  const std::string prog = sub + "/my prog";
  ASSERT_TRUE(WriteWhole(prog, sleep_bytes_, 0755));
  pid_t pid = Exec([&] { execl(prog.c_str(), prog.c_str(), "1000", nullptr); });
  v1::ProcessSnapshot s = Snap(pid);
  const std::string escaped = procfs::Printable(prog);
  EXPECT_NE(escaped.find("space\\x0aand"), std::string::npos);
  EXPECT_EQ(s.exe_path(), escaped);
  EXPECT_EQ(s.cmdline(0), escaped);
  bool mapped = false;
  for (const auto& f : s.memory().executable_files()) mapped |= f.path() == escaped;
  EXPECT_TRUE(mapped);
}

// An argument list longer than the snapshot keeps: its first MiB, and a gap saying so.
TEST_F(InspectGroundTruthTest, AVeryLongCommandLineIsCutWithAGap) {
  std::vector<std::string> args = {"sh", "-c", "read x", "sh"};
  for (int i = 0; i < 12; ++i) args.push_back(std::string(100000, static_cast<char>('a' + i)));
  int in[2];
  ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
  pid_t pid = Exec([&] {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    dup2(in[0], 0);  // `read` waits on a pipe nobody writes
    execv("/bin/sh", argv.data());
  });
  std::vector<std::string> gaps;
  v1::ProcessSnapshot s = Snap(pid, &gaps);
  close(in[1]);
  close(in[0]);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_NE(gaps[0].find("/cmdline: longer than 1048576 bytes"), std::string::npos) << gaps[0];
  // 4 short arguments, then 10 of 100000 bytes and a NUL each fit; the 11th is cut.
  ASSERT_EQ(s.cmdline_size(), 15);
  size_t total = 0;
  for (int i = 0; i < 14; ++i) {
    EXPECT_EQ(s.cmdline(i), args[i]) << i;
    total += args[i].size() + 1;
  }
  EXPECT_EQ(s.cmdline(14), args[14].substr(0, (1 << 20) - total));
  EXPECT_EQ(s.exe_path(), std::filesystem::canonical("/bin/sh").string());
}

// A process moved into a cgroup named the way a container runtime names it.
TEST_F(InspectGroundTruthTest, CgroupAndContainerId) {
  std::string hierarchy;  // where cgroup v2 is mounted
  if (FILE* mounts = setmntent("/proc/self/mounts", "r")) {
    while (mntent* m = getmntent(mounts)) {
      if (std::string(m->mnt_type) == "cgroup2") hierarchy = m->mnt_dir;
    }
    endmntent(mounts);
  }
  ASSERT_FALSE(hierarchy.empty()) << "no cgroup2 hierarchy is mounted";
  const std::string id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const std::string group = absl::StrCat("/vigil-gt-", getpid(), "/docker-", id, ".scope");
  std::filesystem::create_directories(hierarchy + group);
  pid_t pid = Exec([] { execl("/bin/sleep", "sleep", "1000", nullptr); });
  ASSERT_TRUE(WriteWhole(hierarchy + group + "/cgroup.procs", std::to_string(pid), 0));
  v1::ProcessSnapshot s = Snap(pid);
  StopExecs();
  rmdir((hierarchy + group).c_str());
  rmdir((hierarchy + absl::StrCat("/vigil-gt-", getpid())).c_str());
  EXPECT_EQ(s.cgroup(), group);
  EXPECT_EQ(s.container_id(), id);
}

// Real, effective and saved ids that all differ, as a setuid program leaves them.
TEST_F(InspectGroundTruthTest, SetuidStyleCredentials) {
  struct Report {
    uid_t uid[3];
    gid_t gid[3];
    gid_t groups[2];
  } r{};
  Workload& w = NewWorkload();
  w.Start([](const Workload::Io& io) {
    gid_t groups[] = {4, 27};
    if (setgroups(2, groups) != 0 || setresgid(100, 0, 300) != 0 || setresuid(1000, 0, 2000) != 0) {
      _exit(1);
    }
    Report r{};
    getresuid(&r.uid[0], &r.uid[1], &r.uid[2]);
    getresgid(&r.gid[0], &r.gid[1], &r.gid[2]);
    if (getgroups(2, r.groups) != 2) _exit(2);
    io.Send(&r, sizeof(r));
    io.Hold();
  });
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_NO_FATAL_FAILURE(w.Receive(&r, sizeof(r)));
  v1::ProcessSnapshot s = Snap(w.pid());
  const auto& c = s.credentials();
  EXPECT_EQ(c.uid_real(), r.uid[0]);
  EXPECT_EQ(c.uid_effective(), r.uid[1]);
  EXPECT_EQ(c.uid_saved(), r.uid[2]);
  EXPECT_EQ(c.uid_fs(), r.uid[1]);  // follows the effective uid
  EXPECT_EQ(c.gid_real(), r.gid[0]);
  EXPECT_EQ(c.gid_effective(), r.gid[1]);
  EXPECT_EQ(c.gid_saved(), r.gid[2]);
  EXPECT_EQ(c.uid_real(), 1000u);
  EXPECT_EQ(c.uid_saved(), 2000u);
  ASSERT_EQ(c.supplementary_gids_size(), 2);
  EXPECT_EQ(c.supplementary_gids(0), r.groups[0]);
  EXPECT_EQ(c.supplementary_gids(1), r.groups[1]);
}

// A non-root process that keeps CAP_NET_RAW through the ambient set.
TEST_F(InspectGroundTruthTest, AmbientCapabilities) {
  struct Report {
    Caps caps;
    uint64_t ambient;
  } r{};
  Workload& w = NewWorkload();
  w.Start([](const Workload::Io& io) {
    constexpr uint64_t kKeep = (1ull << CAP_NET_RAW) | (1ull << CAP_NET_BIND_SERVICE);
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setresuid(1000, 1000, 1000) != 0 ||
        !CapSet(kKeep, kKeep, kKeep) ||
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) != 0) {
      _exit(1);
    }
    Report r{};
    r.caps = CapGet();
    for (int cap = 0; cap < 64; ++cap) {
      if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) r.ambient |= 1ull << cap;
    }
    io.Send(&r, sizeof(r));
    io.Hold();
  });
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_NO_FATAL_FAILURE(w.Receive(&r, sizeof(r)));
  ASSERT_EQ(r.ambient, 1ull << CAP_NET_RAW);
  v1::ProcessSnapshot s = Snap(w.pid());
  EXPECT_EQ(s.credentials().uid_effective(), 1000u);
  EXPECT_EQ(s.capabilities().effective(), r.caps.effective);
  EXPECT_EQ(s.capabilities().permitted(), r.caps.permitted);
  EXPECT_EQ(s.capabilities().inheritable(), r.caps.inheritable);
  EXPECT_EQ(s.capabilities().ambient(), r.ambient);
}

// Every kind of socket a workload holds, each compared field by field with what the calls
// that made it returned; a child that inherits the descriptors reports the same sockets.
TEST_F(InspectGroundTruthTest, SocketsOfEveryKindAndInheritedOnes) {
  using Row = std::tuple<std::string, std::string, std::string, uint32_t, std::string, uint32_t>;
  struct Entry {
    uint64_t inode;
    char protocol[12], state[16], local[160], remote[160];
    uint32_t local_port, remote_port;
  };
  constexpr int kMax = 24;
  struct Report {
    int count;
    pid_t inheritor;
    Entry e[kMax];
  } r{};
  const std::string path_sock = dir_ + "/agent ctl.sock";
  const std::string nl_sock = dir_ + "/odd\nsock";
  const std::string abstract = absl::StrCat("vigil-gt-", getpid());
  Workload& w = NewWorkload();
  w.Start([&](const Workload::Io& io) {
    // Only this workload's own sockets: drop whatever the test process had open.
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != io.report_fd && fd != io.hold_fd) close(fd);
    }
    Report r{};
    auto add = [&](int fd, const char* proto, const char* state, const std::string& local,
                   uint32_t lport, const std::string& remote, uint32_t rport) {
      if (fd < 0 || r.count == kMax) _exit(10);
      Entry& e = r.e[r.count++];
      e.inode = InodeOfFd(fd);
      snprintf(e.protocol, sizeof(e.protocol), "%s", proto);
      snprintf(e.state, sizeof(e.state), "%s", state);
      snprintf(e.local, sizeof(e.local), "%s", local.c_str());
      snprintf(e.remote, sizeof(e.remote), "%s", remote.c_str());
      e.local_port = lport;
      e.remote_port = rport;
    };
    auto inet = [](const sockaddr_storage& a, uint32_t* port) {
      char buf[INET6_ADDRSTRLEN] = {};
      if (a.ss_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(&a);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
        *port = ntohs(in->sin_port);
      } else {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
        *port = ntohs(in6->sin6_port);
      }
      return std::string(buf);
    };
    auto name = [&](int fd, bool peer, uint32_t* port) {
      sockaddr_storage a{};
      socklen_t len = sizeof(a);
      int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len)
                    : getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
      if (rc != 0) _exit(11);
      return inet(a, port);
    };
    // Connects `fd` to the address `target` is bound to.
    auto connect_to = [](int fd, int target) {
      sockaddr_storage a{};
      socklen_t len = sizeof(a);
      if (getsockname(target, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
          connect(fd, reinterpret_cast<sockaddr*>(&a), len) != 0) {
        _exit(13);
      }
    };
    // TCP and UDP over IPv4 and IPv6: a listener, a connection (both ends), a bound and a
    // connected datagram socket.
    for (int family : {AF_INET, AF_INET6}) {
      const bool v6 = family == AF_INET6;
      const char* tcp = v6 ? "tcp6" : "tcp";
      const char* udp = v6 ? "udp6" : "udp";
      sockaddr_storage loop{};
      socklen_t len;
      if (v6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&loop);
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
      } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&loop);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
      }
      int l = socket(family, SOCK_STREAM, 0);
      if (bind(l, reinterpret_cast<sockaddr*>(&loop), len) != 0 || listen(l, 4) != 0) _exit(12);
      uint32_t lp = 0, cp = 0, x = 0, y = 0;
      std::string la = name(l, false, &lp);
      add(l, tcp, "listen", la, lp, v6 ? "::" : "0.0.0.0", 0);
      int c = socket(family, SOCK_STREAM, 0);
      connect_to(c, l);
      int s = accept(l, nullptr, nullptr);
      std::string ca = name(c, false, &cp);
      std::string peer = name(c, true, &y);
      add(c, tcp, "established", ca, cp, peer, y);
      std::string sa = name(s, false, &x);
      add(s, tcp, "established", sa, x, ca, cp);
      int u = socket(family, SOCK_DGRAM, 0);
      if (bind(u, reinterpret_cast<sockaddr*>(&loop), len) != 0) _exit(14);
      uint32_t up = 0;
      std::string ua = name(u, false, &up);
      add(u, udp, "unconnected", ua, up, v6 ? "::" : "0.0.0.0", 0);
      int uc = socket(family, SOCK_DGRAM, 0);
      connect_to(uc, u);
      uint32_t ucp = 0;
      std::string uca = name(uc, false, &ucp);
      std::string upeer = name(uc, true, &y);
      add(uc, udp, "established", uca, ucp, upeer, y);
    }
    // unix: a path listener with a client, an abstract listener, a path with a newline, a
    // socketpair.
    auto unix_listen = [&](const std::string& n, bool abstract_name) {
      int fd = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      memcpy(a.sun_path + (abstract_name ? 1 : 0), n.data(), n.size());
      socklen_t len = offsetof(sockaddr_un, sun_path) + n.size() + 1;
      if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd, 4) != 0) _exit(16);
      return std::pair{fd, a};
    };
    auto [pl, paddr] = unix_listen(path_sock, false);
    add(pl, "unix", "listen", path_sock, 0, "", 0);
    int pc = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(pc, reinterpret_cast<sockaddr*>(&paddr), sizeof(paddr)) != 0) _exit(17);
    int ps = accept(pl, nullptr, nullptr);
    add(pc, "unix", "connected", "", 0, path_sock, 0);  // its peer carries the listener's path
    add(ps, "unix", "connected", path_sock, 0, "", 0);
    int waiting = socket(AF_UNIX, SOCK_STREAM, 0);  // connected, never accepted
    if (connect(waiting, reinterpret_cast<sockaddr*>(&paddr), sizeof(paddr)) != 0) _exit(19);
    add(waiting, "unix", "connected", "", 0, path_sock, 0);
    auto [al, aaddr] = unix_listen(abstract, true);
    (void)aaddr;
    add(al, "unix", "listen", "@" + abstract, 0, "", 0);
    auto [nl, naddr] = unix_listen(nl_sock, false);
    (void)naddr;
    add(nl, "unix", "listen", procfs::Printable(nl_sock), 0, "", 0);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) _exit(18);
    add(pair[0], "unix", "connected", "", 0, "", 0);
    add(pair[1], "unix", "connected", "", 0, "", 0);
    // Sockets in no TCP/UDP table: raw ICMP and netlink.
    add(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), "raw", "unconnected", "0.0.0.0", IPPROTO_ICMP,
        "0.0.0.0", 0);
    add(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), "netlink", "unknown", "", 0, "", 0);
    // A child that shares every descriptor.
    r.inheritor = fork();
    if (r.inheritor == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      io.Hold();
    }
    io.Send(&r, sizeof(r));
    io.Hold();
  });
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_NO_FATAL_FAILURE(w.Receive(&r, sizeof(r)));
  std::map<uint64_t, Row> want;
  for (int i = 0; i < r.count; ++i) {
    const Entry& e = r.e[i];
    want[e.inode] = {e.protocol, e.state, e.local, e.local_port, e.remote, e.remote_port};
  }
  ASSERT_EQ(want.size(), static_cast<size_t>(r.count));  // every socket is its own inode
  for (pid_t pid : {w.pid(), r.inheritor}) {
    SCOPED_TRACE(pid == w.pid() ? "creator" : "inheritor");
    v1::ProcessSnapshot s = Snap(pid);
    std::map<uint64_t, Row> got;
    for (const auto& k : s.sockets()) {
      EXPECT_TRUE(got.emplace(k.inode(), Row{k.protocol(), k.state(), k.local_address(),
                                             k.local_port(), k.remote_address(), k.remote_port()})
                      .second)
          << "socket " << k.inode() << " listed twice";
    }
    EXPECT_EQ(got, want);
  }
  kill(r.inheritor, SIGKILL);
}

// A zombie: exited, not reaped. One gap says so; nothing is made up for it.
TEST_F(InspectGroundTruthTest, ZombieGetsOneGapAndItsStatusOnly) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(7);
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, pid, &info, WEXITED | WNOWAIT), 0);  // exited, still unreaped
  std::vector<std::string> gaps;
  v1::ProcessSnapshot s = Snap(pid, &gaps);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_NE(gaps[0].find("zombie"), std::string::npos) << gaps[0];
  EXPECT_EQ(s.pid(), pid);
  EXPECT_EQ(s.ppid(), getpid());
  EXPECT_EQ(s.credentials().uid_effective(), geteuid());
  EXPECT_TRUE(s.exe_path().empty());
  EXPECT_EQ(s.memory().anonymous_executable_size() + s.memory().executable_files_size(), 0);
  EXPECT_EQ(s.sockets_size(), 0);
  waitpid(pid, nullptr, 0);
}

// kthreadd: refused clearly rather than reported as a process with no executable.
TEST_F(InspectGroundTruthTest, KernelThreadIsRefused) {
  ASSERT_EQ(ReadWhole("/proc/2/comm"), "kthreadd\n");
  Snapshotter snap(SnapshotOptions{}, &hashes_);
  std::vector<std::string> gaps;
  auto s = snap.Snapshot(2, &gaps);
  EXPECT_TRUE(absl::IsFailedPrecondition(s.status())) << s.status();
  EXPECT_NE(s.status().message().find("kernel thread"), std::string::npos);
  EXPECT_TRUE(gaps.empty());
}

// Makes a workload exit or exec while a snapshot of it is under way, deterministically: a
// fanotify permission event holds the snapshotter inside its open(2) of a file only that
// workload maps executable, until the test has changed the workload.
class MidSnapshotTest : public InspectGroundTruthTest {
 protected:
  // Starts a workload that maps `trigger_` executable and, when told over its command
  // pipe, execs /bin/sleep.
  void StartWorkload() {
    trigger_ = dir_ + "/trigger";
    ASSERT_TRUE(WriteWhole(trigger_, std::string(kPage, '\xc3'), 0644));
    ASSERT_EQ(pipe2(command_, O_CLOEXEC), 0);
    Workload& w = NewWorkload();
    workload_ = &w;
    w.Start([&](const Workload::Io& io) {
      int fd = open(trigger_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED) {
        _exit(1);
      }
      close(fd);
      char ready = 1;
      io.Send(&ready, 1);
      char c;
      if (read(command_[0], &c, 1) == 1) {
        execl("/bin/sleep", "sleep", "1000", nullptr);
      }
      io.Hold();
    });
    ASSERT_FALSE(HasFatalFailure());
    char ready = 0;
    ASSERT_NO_FATAL_FAILURE(w.Receive(&ready, 1));
    close(command_[0]);
    fan_ = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fan_, 0) << strerror(errno);
    ASSERT_EQ(fanotify_mark(fan_, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, trigger_.c_str()), 0)
        << strerror(errno);
  }
  void TearDown() override {
    if (fan_ >= 0) close(fan_);
    if (command_[1] >= 0) close(command_[1]);
    InspectGroundTruthTest::TearDown();
  }

  // Snapshots the workload; `during` runs while the snapshotter waits in its open(2) of the
  // trigger file, and the open is then allowed.
  absl::StatusOr<v1::ProcessSnapshot> SnapshotWhile(const std::function<void()>& during,
                                                    std::vector<std::string>* gaps) {
    absl::StatusOr<v1::ProcessSnapshot> result = absl::UnknownError("not run");
    std::thread t([&] {
      Snapshotter snap(SnapshotOptions{}, &hashes_);
      result = snap.Snapshot(workload_->pid(), gaps);
    });
    fanotify_event_metadata ev{};
    bool held = false;
    if (read(fan_, &ev, sizeof(ev)) == static_cast<ssize_t>(sizeof(ev)) &&
        (ev.mask & FAN_OPEN_PERM)) {
      held = ev.pid == getpid();
      during();
      fanotify_response allow{ev.fd, FAN_ALLOW};
      EXPECT_EQ(write(fan_, &allow, sizeof(allow)), static_cast<ssize_t>(sizeof(allow)));
      close(ev.fd);
    }
    close(fan_);  // any later open of the trigger goes through unheld
    fan_ = -1;
    t.join();
    EXPECT_TRUE(held) << "the snapshot did not open the workload's mapped file";
    return result;
  }

  std::string trigger_;
  int command_[2] = {-1, -1};
  int fan_ = -1;
  Workload* workload_ = nullptr;
};

TEST_F(MidSnapshotTest, AProcessThatExitsWhileItIsReadIsReportedGone) {
  ASSERT_NO_FATAL_FAILURE(StartWorkload());
  std::vector<std::string> gaps;
  auto s = SnapshotWhile(
      [&] {
        kill(workload_->pid(), SIGKILL);
        siginfo_t info{};
        waitid(P_PID, workload_->pid(), &info, WEXITED | WNOWAIT);  // a zombie now
      },
      &gaps);
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_NE(s.status().message().find("exited while it was read"), std::string::npos);
  EXPECT_TRUE(gaps.empty());
}

TEST_F(MidSnapshotTest, AProcessThatExecsWhileItIsReadIsReadAgain) {
  ASSERT_NO_FATAL_FAILURE(StartWorkload());
  std::vector<std::string> gaps;
  auto s = SnapshotWhile(
      [&] {
        char go = 1;
        ASSERT_EQ(write(command_[1], &go, 1), 1);
        workload_->WaitForExec();
      },
      &gaps);
  ASSERT_TRUE(s.ok()) << s.status();
  for (const auto& g : gaps) ADD_FAILURE() << "unexpected gap: " << g;
  EXPECT_EQ(s->exe_sha256(), Hex(sleep_bytes_));
  ASSERT_GE(s->cmdline_size(), 1);
  EXPECT_EQ(s->cmdline(0), "sleep");
  for (const auto& f : s->memory().executable_files()) {
    EXPECT_EQ(f.path().find("trigger"), std::string::npos) << "a mapping of the old program";
  }
}

// mlock of half an rwx region splits it; mlockall(MCL_FUTURE) locks what is mapped later.
// Shared anonymous rwx memory and a memfd mapped twice (W^X) are anonymous executable memory.
TEST_F(InspectGroundTruthTest, LockedSharedAndDoubleMappedExecutableMemory) {
  struct Report {
    uintptr_t rwx, shared, jit_x, sealed_x, open_x;
  } r{};
  Workload& w = NewWorkload();
  w.Start([](const Workload::Io& io) {
    Report r{};
    constexpr int kRwx = PROT_READ | PROT_WRITE | PROT_EXEC;
    void* rwx = mmap(nullptr, 4 * kPage, kRwx, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    // Through syscall(2): AddressSanitizer's mlock interceptors do nothing (docs/fuzzing.md).
    if (rwx == MAP_FAILED || syscall(SYS_mlock, rwx, 2 * kPage) != 0) _exit(1);
    void* shared = mmap(nullptr, 2 * kPage, kRwx, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    // The JIT double mapping: one writable view, one executable view of the same memfd.
    int jit = memfd_create("jit", MFD_CLOEXEC);
    int sealed = memfd_create("sealed", MFD_CLOEXEC);
    int open_fd = memfd_create("open", MFD_CLOEXEC);
    if (shared == MAP_FAILED || jit < 0 || sealed < 0 || open_fd < 0 ||
        ftruncate(jit, kPage) != 0 || ftruncate(sealed, kPage) != 0 ||
        ftruncate(open_fd, kPage) != 0) {
      _exit(2);
    }
    void* jit_w = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, jit, 0);
    void* jit_x = mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_SHARED, jit, 0);
    void* sealed_x = mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_PRIVATE, sealed, 0);
    void* open_x = mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_PRIVATE, open_fd, 0);
    if (jit_w == MAP_FAILED || jit_x == MAP_FAILED || sealed_x == MAP_FAILED ||
        open_x == MAP_FAILED) {
      _exit(3);
    }
    close(jit);
    close(sealed);  // nothing can write it any more; open_fd stays open for writing
    r = {reinterpret_cast<uintptr_t>(rwx), reinterpret_cast<uintptr_t>(shared),
         reinterpret_cast<uintptr_t>(jit_x), reinterpret_cast<uintptr_t>(sealed_x),
         reinterpret_cast<uintptr_t>(open_x)};
    io.Send(&r, sizeof(r));
    io.Hold();
  });
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_NO_FATAL_FAILURE(w.Receive(&r, sizeof(r)));
  v1::ProcessSnapshot s = Snap(w.pid());
  std::map<uint64_t, const v1::MemoryRegion*> by_start;
  for (const auto& m : s.memory().anonymous_executable()) by_start[m.start()] = &m;

  EXPECT_EQ(s.vm_locked_kib(), 8u);  // the only mlock
  ASSERT_TRUE(by_start.count(r.rwx));
  ASSERT_TRUE(by_start.count(r.rwx + 2 * kPage));
  const v1::MemoryRegion& locked = *by_start[r.rwx];
  const v1::MemoryRegion& unlocked = *by_start[r.rwx + 2 * kPage];
  EXPECT_EQ(locked.end(), r.rwx + 2 * kPage);
  EXPECT_EQ(locked.permissions(), "rwxp");
  EXPECT_EQ(locked.size_kib(), 8u);
  EXPECT_EQ(locked.locked_kib(), 8u);
  EXPECT_EQ(unlocked.size_kib(), 8u);
  EXPECT_EQ(unlocked.locked_kib(), 0u);

  ASSERT_TRUE(by_start.count(r.shared));
  EXPECT_EQ(by_start[r.shared]->permissions(), "rwxs");
  EXPECT_TRUE(by_start[r.shared]->writable());
  EXPECT_EQ(by_start[r.shared]->name(), "/dev/zero (deleted)");
  for (const auto& f : s.memory().executable_files()) EXPECT_NE(f.path(), "/dev/zero (deleted)");

  ASSERT_TRUE(by_start.count(r.jit_x));
  EXPECT_EQ(by_start[r.jit_x]->permissions(), "r-xs");
  EXPECT_FALSE(by_start[r.jit_x]->writable());
  EXPECT_TRUE(by_start[r.jit_x]->writable_alias());
  ASSERT_TRUE(by_start.count(r.sealed_x));
  EXPECT_FALSE(by_start[r.sealed_x]->writable_alias());
  ASSERT_TRUE(by_start.count(r.open_x));
  EXPECT_TRUE(by_start[r.open_x]->writable_alias());
}

TEST_F(InspectGroundTruthTest, MlockallLocksLaterMappings) {
  uintptr_t later = 0;
  Workload& w = NewWorkload();
  w.Start([](const Workload::Io& io) {
    // MCL_FUTURE only: what is mapped later is the point here, and MCL_CURRENT would also
    // lock every current mapping, which under AddressSanitizer includes its terabytes of
    // shadow reservation (the kernel faults it in until the child is killed).
    if (syscall(SYS_mlockall, MCL_FUTURE) != 0) _exit(1);
    void* p = mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(2);
    uintptr_t at = reinterpret_cast<uintptr_t>(p);
    io.Send(&at, sizeof(at));
    io.Hold();
  });
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_NO_FATAL_FAILURE(w.Receive(&later, sizeof(later)));
  v1::ProcessSnapshot s = Snap(w.pid());
  const v1::MemoryRegion* region = nullptr;
  for (const auto& m : s.memory().anonymous_executable()) {
    if (m.start() == later) region = &m;
  }
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(region->size_kib(), 12u);
  EXPECT_EQ(region->locked_kib(), 12u);
  EXPECT_GE(s.vm_locked_kib(), 12u);
}

// Tens of thousands of mappings: every executable one is reported.
TEST_F(InspectGroundTruthTest, ProcessWithManyMappings) {
  constexpr int kRegions = 30000;  // below the default vm.max_map_count of 65530
  int executable = 0;
  Workload& w = NewWorkload();
  w.Start([](const Workload::Io& io) {
    char* base = static_cast<char*>(
        mmap(nullptr, size_t{kRegions} * 2 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base == MAP_FAILED) _exit(1);
    int exec = 0;
    for (int i = 0; i < kRegions; ++i) {
      // Separated by PROT_NONE pages, so no two regions merge.
      int prot = PROT_READ | (i % 3 == 0 ? PROT_EXEC : PROT_WRITE);
      if (mprotect(base + static_cast<size_t>(i) * 2 * kPage, kPage, prot) != 0) _exit(2);
      exec += i % 3 == 0;
    }
    io.Send(&exec, sizeof(exec));
    io.Hold();
  });
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_NO_FATAL_FAILURE(w.Receive(&executable, sizeof(executable)));
  v1::ProcessSnapshot s = Snap(w.pid());
  EXPECT_EQ(s.memory().anonymous_executable_size(), executable);
}

}  // namespace
}  // namespace vigil::node
