#include "node/procfs/snapshotter.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/digest.h"
#include "node/procfs/procfs.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

constexpr size_t kPage = 4096;

// What the child reports back once its state is set up.
struct ChildReport {
  uintptr_t locked_rwx = 0;
  uintptr_t unlocked_rwx = 0;
  uint16_t port = 0;
  int secret_fd = -1;
  int grandchild = 0;
  int root_ro_ok = 0;  // the read-only remount of / in a private mount namespace succeeded
  int seccomp_ok = 0;
};

int64_t NowNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Runs in the forked child: builds the ground truth the test then reads back from procfs.
[[noreturn]] void HardenedChild(int report_fd, int hold_fd, const std::string& secret_path) {
  ChildReport r;
  prctl(PR_SET_NAME, "vigil-snapkid", 0, 0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  static char secret_buf[16 * kPage];
  memset(secret_buf, 1, sizeof(secret_buf));
  // Through syscall(2): AddressSanitizer's mlock interceptors do nothing (docs/fuzzing.md).
  if (syscall(SYS_mlock, secret_buf, sizeof(secret_buf)) != 0) _exit(10);
  void* locked = mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* unlocked = mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE | PROT_EXEC,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (locked == MAP_FAILED || unlocked == MAP_FAILED || syscall(SYS_mlock, locked, 2 * kPage) != 0)
    _exit(11);
  r.locked_rwx = reinterpret_cast<uintptr_t>(locked);
  r.unlocked_rwx = reinterpret_cast<uintptr_t>(unlocked);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(s, 4) != 0 || getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    _exit(12);
  }
  r.port = ntohs(addr.sin_port);
  r.secret_fd = open(secret_path.c_str(), O_RDWR | O_CLOEXEC);
  if (r.secret_fd < 0) _exit(13);
  // The remount comes after the open: the secret lives under the root made read-only.
  if (unshare(CLONE_NEWNS) == 0 &&
      mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
      mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) == 0) {
    r.root_ro_ok = 1;
  }
  r.grandchild = fork();
  if (r.grandchild == 0) {
    char c;
    while (read(hold_fd, &c, 1) > 0) {
    }
    _exit(0);
  }
  for (int cap : {CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH}) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) _exit(14);
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(15);
  // ptrace -> ERRNO(EPERM), everything else allowed (x86_64 only; the arch is checked).
  sock_filter prog[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog fprog{static_cast<unsigned short>(sizeof(prog) / sizeof(prog[0])), prog};
  r.seccomp_ok = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0;
  if (write(report_fd, &r, sizeof(r)) != sizeof(r)) _exit(16);
  char c;
  while (read(hold_fd, &c, 1) > 0) {
  }
  _exit(0);
}

class SnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ::vigil::testing::TestTempDir::Create("snapshot");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    dir_ = tmp_.path();
    secret_path_ = dir_ + "/agent.key";
    FILE* f = fopen(secret_path_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("not really a key\n", f);
    fclose(f);
  }
  void TearDown() override {
    if (hold_write_ >= 0) close(hold_write_);
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
  }

  void StartChild() {
    int report[2], hold[2];
    ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
    before_fork_ = NowNanos();
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      close(report[0]);
      close(hold[1]);
      HardenedChild(report[1], hold[0], secret_path_);
    }
    close(report[1]);
    close(hold[0]);
    hold_write_ = hold[1];
    if (read(report[0], &report_, sizeof(report_)) != static_cast<ssize_t>(sizeof(report_))) {
      int status = 0;
      waitpid(child_, &status, 0);
      child_ = -1;
      FAIL() << "the child failed to set up its state, exit status " << WEXITSTATUS(status);
    }
    close(report[0]);
  }

  ::vigil::testing::TestTempDir tmp_;
  std::string dir_, secret_path_;
  pid_t child_ = -1;
  int hold_write_ = -1;
  int64_t before_fork_ = 0;
  ChildReport report_;
  FileHashCache hashes_;
};

TEST_F(SnapshotterTest, ReportsTheHardeningTheProcessSetUp) {
  ASSERT_NO_FATAL_FAILURE(StartChild());
  SnapshotOptions opts;
  opts.seccomp_syscalls = {"ptrace", "getpid"};
  opts.sensitive_paths = {{"/nowhere/*", "config"}, {dir_ + "/*.key", "secret"}};
  Snapshotter snap(opts, &hashes_);
  std::vector<std::string> gaps;
  auto s = snap.Snapshot(child_, &gaps);
  ASSERT_TRUE(s.ok()) << s.status();
  for (const auto& g : gaps) ADD_FAILURE() << "unexpected gap: " << g;

  EXPECT_EQ(s->pid(), child_);
  EXPECT_EQ(s->ppid(), getpid());
  EXPECT_EQ(s->comm(), "vigil-snapkid");
  auto own_exe = procfs::ReadLink("/proc/self/exe");
  ASSERT_TRUE(own_exe.ok());
  EXPECT_EQ(s->exe_path(), *own_exe);
  auto digest = Sha256File(*own_exe);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(s->exe_sha256(), HexEncode(*digest));
  ASSERT_FALSE(s->cmdline().empty());
  EXPECT_EQ(s->cmdline(0), ::testing::internal::GetArgvs()[0]);
  EXPECT_GE(s->started_unix_nano(), before_fork_ - 1000000000);
  EXPECT_LE(s->started_unix_nano(), NowNanos() + 1000000000);

  // Capabilities: the bounding set lost exactly the two dropped; effective is untouched.
  constexpr uint64_t kDropped = (1ull << CAP_SYS_PTRACE) | (1ull << CAP_DAC_READ_SEARCH);
  auto own = procfs::ParseStatus(*procfs::ReadFile("/proc/self/status"));
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(s->capabilities().bounding(), own->cap_bounding & ~kDropped);
  EXPECT_EQ(s->capabilities().effective(), own->cap_effective);
  EXPECT_EQ(s->capabilities().ambient(), 0u);
  EXPECT_TRUE(s->seccomp().no_new_privs());
  if (report_.seccomp_ok) {
    EXPECT_EQ(s->seccomp().mode(), 2u);
    EXPECT_EQ(s->seccomp().filter_count(), 1u);
    // The snapshotter hands the named syscalls to the seccomp inspector.
    EXPECT_TRUE(s->seccomp().filters_inspected()) << s->seccomp().inspection_error();
    // The x86_64 verdicts (the inspector may add other ABIs' after them).
    const v1::SyscallVerdict* ptrace = nullptr;
    const v1::SyscallVerdict* getpid_verdict = nullptr;
    for (const auto& v : s->seccomp().verdicts()) {
      if (v.arch() != "x86_64") continue;
      if (v.syscall() == "ptrace") ptrace = &v;
      if (v.syscall() == "getpid") getpid_verdict = &v;
    }
    ASSERT_NE(ptrace, nullptr);
    ASSERT_NE(getpid_verdict, nullptr);
    EXPECT_EQ(ptrace->action(), v1::SECCOMP_ACTION_ERRNO);
    EXPECT_EQ(ptrace->data(), 1u);
    EXPECT_EQ(getpid_verdict->action(), v1::SECCOMP_ACTION_ALLOW);
  }
  EXPECT_EQ(s->credentials().uid_effective(), geteuid());
  ASSERT_EQ(s->credentials().uid_map_size(), 1);
  EXPECT_EQ(s->credentials().uid_map(0).count(), 4294967295u);

  // Locked memory: the 64 KiB secret buffer and the locked 8 KiB rwx region.
  EXPECT_GE(s->vm_locked_kib(), 64u + 8u);
  const v1::MemoryRegion* locked = nullptr;
  const v1::MemoryRegion* unlocked = nullptr;
  for (const auto& r : s->memory().anonymous_executable()) {
    if (r.start() == report_.locked_rwx) locked = &r;
    if (r.start() == report_.unlocked_rwx) unlocked = &r;
  }
  ASSERT_NE(locked, nullptr);
  ASSERT_NE(unlocked, nullptr);
  EXPECT_TRUE(locked->writable());
  EXPECT_EQ(locked->permissions(), "rwxp");
  EXPECT_EQ(locked->size_kib(), 8u);
  EXPECT_EQ(locked->locked_kib(), 8u);
  EXPECT_EQ(unlocked->size_kib(), 12u);
  EXPECT_EQ(unlocked->locked_kib(), 0u);

  // The test binary itself is mapped executable, with its hash.
  bool saw_exe = false;
  for (const auto& f : s->memory().executable_files()) {
    EXPECT_EQ(f.sha256().size(), 64u) << f.path();
    if (f.path() == *own_exe) saw_exe = f.sha256() == HexEncode(*digest);
  }
  EXPECT_TRUE(saw_exe);

  // The listening socket on 127.0.0.1:port.
  bool saw_listener = false;
  for (const auto& sock : s->sockets()) {
    saw_listener |= sock.protocol() == "tcp" && sock.state() == "listen" &&
                    sock.local_address() == "127.0.0.1" && sock.local_port() == report_.port;
  }
  EXPECT_TRUE(saw_listener);

  ASSERT_EQ(s->sensitive_files_size(), 1);
  EXPECT_EQ(s->sensitive_files(0).fd(), report_.secret_fd);
  EXPECT_EQ(s->sensitive_files(0).path(), secret_path_);
  EXPECT_EQ(s->sensitive_files(0).classification(), "secret");
  EXPECT_EQ(s->sensitive_files(0).flags() & O_ACCMODE, static_cast<uint32_t>(O_RDWR));

  ASSERT_EQ(s->children_size(), 1);
  EXPECT_EQ(s->children(0), report_.grandchild);

  auto own_mnt = procfs::ParseNamespaceLink(*procfs::ReadLink("/proc/self/ns/mnt"));
  ASSERT_TRUE(own_mnt.ok());
  ASSERT_TRUE(s->namespaces().contains("mnt"));
  ASSERT_TRUE(s->namespaces().contains("pid"));
  ASSERT_TRUE(s->has_root_read_only());
  if (report_.root_ro_ok) {
    EXPECT_NE(s->namespaces().at("mnt"), *own_mnt);
    EXPECT_TRUE(s->root_read_only());
  }
  // Our own root is writable (the test runs in a writable /tmp).
  std::vector<std::string> own_gaps;
  auto self = snap.Snapshot(getpid(), &own_gaps);
  ASSERT_TRUE(self.ok());
  EXPECT_FALSE(self->root_read_only());
}

TEST_F(SnapshotterTest, ReportsTheNamespacesSharedWithTheNode) {
  // A child with its own network and IPC namespaces (as a pod without hostNetwork and
  // hostIPC has) shares neither with the node (here: this process); it shares the rest.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    char ok = unshare(CLONE_NEWNET | CLONE_NEWIPC) == 0 ? 1 : 0;
    if (write(ready[1], &ok, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  Snapshotter snap(SnapshotOptions{}, &hashes_);
  std::vector<std::string> gaps;
  auto s = snap.Snapshot(pid, &gaps);
  auto self = snap.Snapshot(getpid(), &gaps);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(ok) << "unshare(CLONE_NEWNET | CLONE_NEWIPC) failed: the test needs root";
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(self.ok()) << self.status();
  for (const auto& g : gaps) ADD_FAILURE() << "unexpected gap: " << g;

  std::vector<std::string> ours;  // every namespace this kernel has
  for (const char* ns : {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}) {
    if (procfs::ReadLink(std::string("/proc/self/ns/") + ns).ok()) ours.push_back(ns);
  }
  ASSERT_TRUE(self->has_node_namespaces());
  EXPECT_EQ(std::vector<std::string>(self->node_namespaces().shared().begin(),
                                     self->node_namespaces().shared().end()),
            ours);
  std::vector<std::string> child_expected;
  for (const std::string& ns : ours) {
    if (ns != "net" && ns != "ipc") child_expected.push_back(ns);
  }
  ASSERT_TRUE(s->has_node_namespaces());
  EXPECT_EQ(std::vector<std::string>(s->node_namespaces().shared().begin(),
                                     s->node_namespaces().shared().end()),
            child_expected);
}

TEST_F(SnapshotterTest, ReportsAGoneProcessAsNotFoundWithoutGaps) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  Snapshotter snap(SnapshotOptions{}, &hashes_);
  std::vector<std::string> gaps;
  auto s = snap.Snapshot(pid, &gaps);
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_TRUE(gaps.empty());
}

TEST_F(SnapshotterTest, ReportsUnreadableFilesAsGapsNamingThePath) {
  // A fake procfs where the process's maps cannot be read: the snapshot still succeeds and
  // says what it could not see.
  std::string fake = dir_ + "/proc";
  std::filesystem::create_directories(fake + "/77");
  auto write = [&](const std::string& name, const std::string& text) {
    FILE* f = fopen((fake + "/77/" + name).c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs(text.c_str(), f);
    fclose(f);
  };
  write("stat", "77 (fake) S 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n");
  write("status",
        "Name:\tfake\nPPid:\t1\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"
        "CapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\nCapAmb:\t0\n"
        "NoNewPrivs:\t1\nSeccomp:\t0\n");
  write("smaps", "this is not smaps\n");
  SnapshotOptions opts;
  opts.proc_root = fake;
  Snapshotter snap(opts, &hashes_);
  std::vector<std::string> gaps;
  auto s = snap.Snapshot(77, &gaps);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->seccomp().no_new_privs());
  EXPECT_EQ(s->comm(), "fake");
  bool saw_exe_gap = false, saw_smaps_gap = false;
  for (const auto& g : gaps) {
    EXPECT_EQ(g.rfind("pid 77: ", 0), 0u) << g;
    saw_exe_gap |= g.find(fake + "/77/exe") != std::string::npos;
    saw_smaps_gap |= g.find("smaps") != std::string::npos;
  }
  EXPECT_TRUE(saw_exe_gap);
  EXPECT_TRUE(saw_smaps_gap);
}

TEST_F(SnapshotterTest, RefusesAKernelThread) {
  // PF_KTHREAD (0x00200000) in the stat flags, as for kthreadd.
  std::string fake = dir_ + "/proc";
  std::filesystem::create_directories(fake + "/2");
  FILE* f = fopen((fake + "/2/stat").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n", f);
  fclose(f);
  SnapshotOptions opts;
  opts.proc_root = fake;
  Snapshotter snap(opts, &hashes_);
  std::vector<std::string> gaps;
  auto s = snap.Snapshot(2, &gaps);
  EXPECT_TRUE(absl::IsFailedPrecondition(s.status())) << s.status();
  EXPECT_EQ(s.status().message(),
            "kthreadd is a kernel thread: it has no executable, memory map or files to snapshot");
  EXPECT_TRUE(gaps.empty());
}

TEST(FileHashCacheTest, HashesOnceUntilTheFileChanges) {
  char tmpl[] = "/tmp/vigil-hash-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "abc", 3), 3);
  close(fd);
  FileHashCache cache;
  auto first = cache.HashHex(tmpl);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, HexEncode(Sha256("abc")));
  EXPECT_EQ(*cache.HashHex(tmpl), *first);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.hits(), 1u);
  FILE* f = fopen(tmpl, "a");
  ASSERT_NE(f, nullptr);
  fputs("d", f);
  fclose(f);
  EXPECT_EQ(*cache.HashHex(tmpl), HexEncode(Sha256("abcd")));
  EXPECT_EQ(cache.misses(), 2u);
  unlink(tmpl);
  EXPECT_TRUE(absl::IsNotFound(cache.HashHex(tmpl).status()));
  EXPECT_FALSE(cache.HashHex("/proc").ok());  // not a regular file
}

TEST(FileHashCacheTest, BypassesTheCacheAndChecksTheIdentityWhenAsked) {
  char tmpl[] = "/tmp/vigil-hash-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "abc", 3), 3);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  close(fd);
  FileHashCache cache;
  FileHashRequest fresh;
  fresh.bypass_cache = true;
  EXPECT_EQ(*cache.HashHex(tmpl, fresh), HexEncode(Sha256("abc")));
  EXPECT_EQ(*cache.HashHex(tmpl, fresh), HexEncode(Sha256("abc")));
  EXPECT_EQ(cache.hits(), 0u);  // neither looked up nor stored
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_EQ(*cache.HashHex(tmpl), HexEncode(Sha256("abc")));
  EXPECT_EQ(cache.misses(), 3u);

  FileHashRequest same;
  same.identity = {st.st_dev, st.st_ino};
  EXPECT_TRUE(cache.HashHex(tmpl, same).ok());
  FileHashRequest other;
  other.identity = {st.st_dev, st.st_ino + 1};
  auto refused = cache.HashHex(tmpl, other);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  unlink(tmpl);
}

}  // namespace
}  // namespace vigil::node
