#include "node/scope/scope_tracker.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using ::vigil::testing::TestTempDir;

constexpr int64_t kT0 = 1'700'000'000'000'000'000;

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  out << text;
}

// A fake /proc: per pid, exe, cwd and fd/<n> symlinks and a cmdline file.
class FakeProc {
 public:
  explicit FakeProc(std::string root) : root_(std::move(root)) {}
  void Process(int pid, const std::string& exe, const std::vector<std::string>& argv,
               const std::string& cwd = "/") {
    const std::string dir = absl::StrCat(root_, "/", pid);
    std::filesystem::create_directories(dir + "/fd");
    std::filesystem::create_symlink(exe, dir + "/exe");
    std::filesystem::create_symlink(cwd, dir + "/cwd");
    std::string cmdline;
    for (const std::string& a : argv) cmdline += a + std::string(1, '\0');
    Write(dir + "/cmdline", cmdline);
  }
  void Fd(int pid, int fd, const std::string& target) {
    std::filesystem::create_symlink(target, absl::StrCat(root_, "/", pid, "/fd/", fd));
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

v1::ProcessSnapshot Snap(int pid, int ppid, const std::string& exe,
                         std::vector<std::string> matched_by, bool host_mnt = true) {
  v1::ProcessSnapshot s;
  s.set_pid(pid);
  s.set_ppid(ppid);
  s.set_exe_path(exe);
  s.set_exe_sha256(absl::StrCat("sha-of-", exe));
  s.add_cmdline(exe);
  s.set_cgroup("/system.slice/agent.service");
  s.set_started_unix_nano(kT0);
  for (auto& m : matched_by) s.add_matched_by(m);
  if (host_mnt) {
    s.mutable_node_namespaces()->add_shared("mnt");
  } else {
    s.mutable_node_namespaces()->add_shared("net");
  }
  return s;
}

v1::RuntimeEvent Event(v1::EventKind kind, int pid, int64_t t, const std::string& path = "") {
  v1::RuntimeEvent e;
  e.set_kind(kind);
  e.set_pid(pid);
  e.set_tid(pid);
  e.set_time_unix_nano(t);
  e.set_path(path);
  return e;
}

v1::RuntimeEvent Fork(int parent, int child, int64_t t) {
  v1::RuntimeEvent e = Event(v1::EVENT_KIND_PROCESS_FORK, parent, t);
  e.set_target_pid(child);
  return e;
}

v1::RuntimeEvent Open(int pid, int64_t t, const std::string& path, uint64_t flags, uint32_t mode,
                      int32_t dirfd = AT_FDCWD) {
  v1::RuntimeEvent e = Event(v1::EVENT_KIND_OPENAT, pid, t, path);
  e.add_args(static_cast<uint64_t>(static_cast<int64_t>(dirfd)));
  e.add_args(0);
  e.add_args(flags);
  e.add_args(0);
  e.add_args(flags);
  e.add_args(mode);
  return e;
}

class ScopeTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TestTempDir::Create("scope-tracker");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::move(*dir);
    proc_ = std::make_unique<FakeProc>(dir_.path() + "/proc");
    std::filesystem::create_directories(proc_->root());
  }

  std::unique_ptr<ScopeTracker> Tracker(ScopeLimits limits = {}, DpkgDatabase* dpkg = nullptr) {
    auto t = std::make_unique<ScopeTracker>(limits, &hashes_, dpkg, proc_->root());
    t->set_probes(true);
    return t;
  }

  static void Snapshots(ScopeTracker* t, std::vector<v1::ProcessSnapshot> snaps, int64_t now) {
    v1::RuntimeReport r;
    for (auto& s : snaps) *r.add_processes() = std::move(s);
    t->ObserveSnapshots(r.processes(), now);
  }

  static v1::RuntimeReport Report(ScopeTracker* t, std::vector<std::string>* gaps = nullptr) {
    v1::RuntimeReport r;
    std::vector<std::string> g;
    t->AppendScopes(&r, gaps ? gaps : &g);
    return r;
  }

  TestTempDir dir_;
  std::unique_ptr<FakeProc> proc_;
  FileHashCache hashes_;
};

TEST_F(ScopeTrackerTest, FollowsForkAndExecWithLineageDigestAndInterpreter) {
  auto t = Tracker();
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  proc_->Process(101, "/usr/bin/dash", {"sh", "-c", "echo hi"});
  t->ObserveEvent(Fork(100, 101, kT0 + 10));
  t->ObserveEvent(Event(v1::EVENT_KIND_PROCESS_EXEC, 101, kT0 + 20, "/bin/sh"));
  t->ObserveEvent(Event(v1::EVENT_KIND_PROCESS_EXIT, 101, kT0 + 30));

  v1::RuntimeReport r = Report(t.get());
  ASSERT_EQ(r.scopes_size(), 1);
  const v1::WorkloadScope& s = r.scopes(0);
  EXPECT_EQ(s.root_exe_path(), "/opt/agent/agent");
  EXPECT_EQ(s.root_exe_sha256(), "sha-of-/opt/agent/agent");
  EXPECT_EQ(s.root_pid(), 100);
  EXPECT_EQ(s.cgroup(), "/system.slice/agent.service");
  EXPECT_THAT(s.matched_by(), ElementsAre("agent"));
  ASSERT_EQ(s.processes_size(), 2);
  const v1::ScopeProcess& sh = s.processes(1);
  EXPECT_EQ(sh.pid(), 101);
  EXPECT_EQ(sh.ppid(), 100);
  EXPECT_EQ(sh.exe_path(), "/usr/bin/dash") << "the resolved executable, not /bin/sh";
  EXPECT_THAT(sh.exec_lineage(), ElementsAre("/opt/agent/agent", "/usr/bin/dash"));
  EXPECT_THAT(sh.cmdline(), ElementsAre("sh", "-c", "echo hi"));
  EXPECT_EQ(sh.started_unix_nano(), kT0 + 10);
  EXPECT_EQ(sh.exited_unix_nano(), kT0 + 30);
  EXPECT_EQ(s.processes(0).exited_unix_nano(), 0) << "the root still runs";

  ASSERT_EQ(s.executables_size(), 2);
  const v1::ScopeExecutable& dash = s.executables(1);
  EXPECT_EQ(dash.path(), "/usr/bin/dash");
  EXPECT_EQ(dash.sha256(), "f5adb8bf0100ed0f8c7782ca5f92814e9229525a4b4e0d401cf3bea09ac960a6");
  EXPECT_EQ(dash.exec_count(), 1u);
  EXPECT_EQ(dash.first_seen_unix_nano(), kT0 + 20);
  EXPECT_EQ(s.executables(0).exec_count(), 1u) << "the root's run, from its first snapshot";

  ASSERT_EQ(s.interpreters_size(), 1);
  EXPECT_EQ(s.interpreters(0).kind(), "sh");
  EXPECT_EQ(s.interpreters(0).executable(), "/usr/bin/dash");
  EXPECT_EQ(s.interpreters(0).recognised_by(), "executable");
  EXPECT_THAT(s.interpreters(0).scripts(), ElementsAre("-c"));
}

TEST_F(ScopeTrackerTest, ASnapshotReadBeforeAnExitDoesNotReviveTheProcess) {
  auto t = Tracker();
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  proc_->Process(101, "/usr/bin/dash", {"sh", "-c", "true"});
  t->ObserveEvent(Fork(100, 101, kT0 + 10));
  t->ObserveEvent(Event(v1::EVENT_KIND_PROCESS_EXEC, 101, kT0 + 20, "/bin/sh"));
  t->ObserveEvent(Event(v1::EVENT_KIND_PROCESS_EXIT, 101, kT0 + 30));
  // The report's scan saw 101 alive; its snapshots are applied after the exit event.
  v1::ProcessSnapshot late = Snap(101, 100, "/usr/bin/dash", {"inherited:100"});
  late.set_started_unix_nano(kT0 + 10);
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"}), late}, kT0 + 40);
  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  ASSERT_EQ(s.processes_size(), 2);
  EXPECT_EQ(s.processes(1).exited_unix_nano(), kT0 + 30);
  EXPECT_EQ(s.executables(1).exec_count(), 1u);
}

// A report's snapshot can read a forked child between its fork and its exec (a loaded
// machine): it still runs its parent's image, which is no exec of its own.
TEST_F(ScopeTrackerTest, AChildSnapshottedBeforeItsExecHasOneLineageStep) {
  auto t = Tracker();
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  t->ObserveEvent(Fork(100, 101, kT0 + 10));
  Snapshots(t.get(),
            {Snap(100, 1, "/opt/agent/agent", {"agent"}),
             Snap(101, 100, "/opt/agent/agent", {"inherited:100"})},
            kT0 + 15);
  proc_->Process(101, "/usr/bin/dash", {"sh", "-c", "echo hi"});
  t->ObserveEvent(Event(v1::EVENT_KIND_PROCESS_EXEC, 101, kT0 + 20, "/bin/sh"));
  Snapshots(t.get(),
            {Snap(100, 1, "/opt/agent/agent", {"agent"}),
             Snap(101, 100, "/usr/bin/dash", {"inherited:100"})},
            kT0 + 30);
  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  ASSERT_EQ(s.processes_size(), 2);
  EXPECT_THAT(s.processes(1).exec_lineage(), ElementsAre("/opt/agent/agent", "/usr/bin/dash"));
  ASSERT_EQ(s.executables_size(), 2);
  EXPECT_EQ(s.executables(0).exec_count(), 1u) << "the root's run only";
  EXPECT_EQ(s.executables(1).exec_count(), 1u);
}

TEST_F(ScopeTrackerTest, AForkThatKeepsItsParentsImageIsNotARun) {
  auto t = Tracker();
  t->set_probes(false);
  Snapshots(t.get(),
            {Snap(100, 1, "/opt/agent/agent", {"agent"}),
             Snap(101, 100, "/opt/agent/agent", {"inherited:100"})},
            kT0);
  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  ASSERT_EQ(s.processes_size(), 2);
  ASSERT_EQ(s.executables_size(), 1);
  EXPECT_EQ(s.executables(0).exec_count(), 1u);
  EXPECT_THAT(s.processes(1).exec_lineage(), ElementsAre("/opt/agent/agent"));
}

TEST_F(ScopeTrackerTest, ExecOfAProcessGoneAlreadyKeepsItsName) {
  auto t = Tracker();
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  t->ObserveEvent(Fork(100, 102, kT0 + 10));
  t->ObserveEvent(Event(v1::EVENT_KIND_PROCESS_EXEC, 102, kT0 + 20, "/usr/bin/env"));
  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  ASSERT_EQ(s.executables_size(), 2);
  EXPECT_EQ(s.executables(1).path(), "/usr/bin/env");
  EXPECT_EQ(s.executables(1).sha256(), "") << "not readable: no digest rather than a wrong one";
}

TEST_F(ScopeTrackerTest, GroupsWritesByDirectoryAndRecognisesSqlite) {
  auto t = Tracker();
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  const int rw = O_RDWR | O_CREAT;
  t->ObserveEvent(Open(100, kT0 + 1, "/var/lib/agent/state.db", rw, 0100644));
  t->ObserveEvent(Open(100, kT0 + 2, "/var/lib/agent/state.db-wal", rw, 0100644));
  t->ObserveEvent(Open(100, kT0 + 3, "/var/lib/agent/state.db-shm", rw, 0100644));
  t->ObserveEvent(Open(100, kT0 + 4, "/var/lib/agent/state.db-wal", rw, 0100644));
  t->ObserveEvent(Open(100, kT0 + 5, "/var/lib/agent/cache/old-journal", O_WRONLY, 0100644));
  t->ObserveEvent(Event(v1::EVENT_KIND_UNLINK, 100, kT0 + 6, "/var/lib/agent/cache/old-journal"));
  t->ObserveEvent(Event(v1::EVENT_KIND_MKDIRAT, 100, kT0 + 7, "/var/lib/agent/cache/sub"));
  auto rename = Event(v1::EVENT_KIND_RENAMEAT2, 100, kT0 + 8, "/var/lib/agent/config.json");
  t->ObserveEvent(rename);
  // Read-only opens of ordinary files are not writes.
  t->ObserveEvent(Open(100, kT0 + 9, "/var/lib/agent/state.db", O_RDONLY, 0100644));

  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  ASSERT_EQ(s.storage_size(), 2);
  const v1::ScopeStorage& state = s.storage(0);
  EXPECT_EQ(state.directory(), "/var/lib/agent");
  EXPECT_THAT(state.files(),
              ElementsAre("state.db", "state.db-wal", "state.db-shm", "config.json"));
  EXPECT_EQ(state.write_count(), 5u);
  ASSERT_EQ(state.sqlite_databases_size(), 1);
  EXPECT_EQ(state.sqlite_databases(0).name(), "state.db");
  EXPECT_THAT(state.sqlite_databases(0).companions(), ElementsAre("-shm", "-wal"));
  EXPECT_EQ(state.first_seen_unix_nano(), kT0 + 1);
  EXPECT_EQ(state.last_seen_unix_nano(), kT0 + 8);
  const v1::ScopeStorage& cache = s.storage(1);
  EXPECT_EQ(cache.directory(), "/var/lib/agent/cache");
  EXPECT_THAT(cache.files(), ElementsAre("old-journal", "sub/"));
  ASSERT_EQ(cache.sqlite_databases_size(), 1);
  EXPECT_EQ(cache.sqlite_databases(0).name(), "old");
  EXPECT_THAT(cache.sqlite_databases(0).companions(), ElementsAre("-journal"));
}

TEST_F(ScopeTrackerTest, RelativePathsAreResolvedAgainstTheProcess) {
  auto t = Tracker();
  proc_->Process(100, "/opt/agent/agent", {"agent"}, "/srv/work");
  proc_->Fd(100, 7, "/srv/dirfd");
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  t->ObserveEvent(Open(100, kT0 + 1, "out.txt", O_WRONLY | O_CREAT, 0100644));
  t->ObserveEvent(Open(100, kT0 + 2, "at.txt", O_WRONLY | O_CREAT, 0100644, 7));
  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  ASSERT_EQ(s.storage_size(), 2);
  EXPECT_EQ(s.storage(0).directory(), "/srv/dirfd");
  EXPECT_EQ(s.storage(1).directory(), "/srv/work");
}

TEST_F(ScopeTrackerTest, ClassifiesConfigAndSecretsReadWithModes) {
  auto t = Tracker();
  t->SetSensitivePaths({{"/srv/agent/api-token", "secret"}});
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  t->ObserveEvent(Open(100, kT0 + 1, "/srv/agent/api-token", O_RDONLY, 0100644));
  t->ObserveEvent(Open(100, kT0 + 2, "/var/lib/agent/blob", O_RDONLY, 0100600));
  t->ObserveEvent(Open(100, kT0 + 3, "/etc/agent/agent.conf", O_RDONLY, 0100644));
  t->ObserveEvent(Open(100, kT0 + 4, "/etc/agent/agent.conf", O_RDONLY, 0100644));
  t->ObserveEvent(Open(100, kT0 + 5, "/srv/data/plain.bin", O_RDONLY, 0100644));
  t->ObserveEvent(Open(100, kT0 + 6, "/home/a/tls/server.pem", O_RDONLY, 0100644));

  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  ASSERT_EQ(s.files_read_size(), 4) << "plain.bin is neither";
  const v1::ScopeFileRead& conf = s.files_read(0);
  EXPECT_EQ(conf.path(), "/etc/agent/agent.conf");
  EXPECT_EQ(conf.classification(), "config");
  EXPECT_EQ(conf.reason(), "pattern:/etc/*");
  EXPECT_EQ(conf.mode(), 0644u);
  EXPECT_EQ(conf.count(), 2u);
  EXPECT_EQ(conf.first_seen_unix_nano(), kT0 + 3);
  EXPECT_EQ(conf.last_seen_unix_nano(), kT0 + 4);
  EXPECT_EQ(s.files_read(1).path(), "/home/a/tls/server.pem");
  EXPECT_EQ(s.files_read(1).reason(), "pattern:*.pem");
  EXPECT_EQ(s.files_read(2).path(), "/srv/agent/api-token");
  EXPECT_EQ(s.files_read(2).reason(), "policy:/srv/agent/api-token");
  EXPECT_EQ(s.files_read(3).path(), "/var/lib/agent/blob");
  EXPECT_EQ(s.files_read(3).classification(), "secret");
  EXPECT_EQ(s.files_read(3).reason(), "mode:0600");
  EXPECT_EQ(s.files_read(3).mode(), 0600u);
}

TEST_F(ScopeTrackerTest, SnapshotsGiveLibrariesEndpointsAndOpenSensitiveFiles) {
  auto t = Tracker();
  t->SetSensitivePaths({{"*/agent.key", "secret"}});
  const std::string key = dir_.path() + "/agent.key";
  Write(key, "k");
  std::filesystem::permissions(key, std::filesystem::perms::owner_read);
  proc_->Process(100, "/opt/agent/agent", {"agent"});
  proc_->Fd(100, 5, key);
  v1::ProcessSnapshot root = Snap(100, 1, "/opt/agent/agent", {"agent"});
  auto* exe_map = root.mutable_memory()->add_executable_files();
  exe_map->set_path("/opt/agent/agent");
  auto* lib = root.mutable_memory()->add_executable_files();
  lib->set_path("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0");
  lib->set_sha256("abc");
  auto sock = [&](const char* proto, const char* state, const char* la, int lp, const char* ra,
                  int rp, int inode) {
    v1::Socket* so = root.add_sockets();
    so->set_protocol(proto);
    so->set_state(state);
    so->set_local_address(la);
    so->set_local_port(lp);
    so->set_remote_address(ra);
    so->set_remote_port(rp);
    so->set_inode(inode);
  };
  sock("tcp", "listen", "0.0.0.0", 8080, "0.0.0.0", 0, 11);
  sock("tcp", "established", "10.0.0.2", 8080, "10.0.0.9", 41000, 12);  // accepted: inbound
  sock("tcp6", "established", "::1", 50000, "::1", 443, 13);
  sock("unix", "connected", "", 0, "/run/dbus/system_bus_socket", 0, 14);
  v1::OpenFile* f = root.add_sensitive_files();
  f->set_fd(5);
  f->set_path(key);
  f->set_classification("secret");
  Snapshots(t.get(), {root}, kT0);
  Snapshots(t.get(), {root}, kT0 + 100);  // the same sockets again: counted once

  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  ASSERT_EQ(s.libraries_size(), 1) << "the program itself is an executable, not a library";
  EXPECT_EQ(s.libraries(0).sha256(), "abc");
  EXPECT_EQ(s.libraries(0).first_seen_unix_nano(), kT0);
  EXPECT_EQ(s.libraries(0).last_seen_unix_nano(), kT0 + 100);
  ASSERT_EQ(s.interpreters_size(), 1);
  EXPECT_EQ(s.interpreters(0).kind(), "python");
  EXPECT_EQ(s.interpreters(0).executable(), "/opt/agent/agent");
  EXPECT_EQ(s.interpreters(0).recognised_by(),
            "library:/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0");
  ASSERT_EQ(s.endpoints_size(), 3);
  EXPECT_EQ(s.endpoints(0).direction(), "listen");
  EXPECT_EQ(s.endpoints(0).port(), 8080u);
  EXPECT_EQ(s.endpoints(0).count(), 1u);
  EXPECT_EQ(s.endpoints(1).direction(), "outbound");
  EXPECT_EQ(s.endpoints(1).address(), "/run/dbus/system_bus_socket");
  EXPECT_EQ(s.endpoints(1).protocol(), "unix");
  EXPECT_EQ(s.endpoints(2).address(), "::1");
  EXPECT_EQ(s.endpoints(2).port(), 443u);
  EXPECT_EQ(s.endpoints(2).protocol(), "tcp6");
  EXPECT_EQ(s.endpoints(2).count(), 1u);
  ASSERT_EQ(s.files_read_size(), 1);
  EXPECT_EQ(s.files_read(0).reason(), "policy:*/agent.key");
  EXPECT_EQ(s.files_read(0).mode(), 0400u);
}

TEST_F(ScopeTrackerTest, ConnectEventsAreOutboundEndpoints) {
  auto t = Tracker();
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  auto connect = [&](const char* addr, int port, int64_t ret, int64_t at) {
    v1::RuntimeEvent e = Event(v1::EVENT_KIND_CONNECT, 100, at);
    e.set_address(addr);
    e.set_port(port);
    e.set_return_value(ret);
    t->ObserveEvent(e);
  };
  connect("93.184.216.34", 443, 0, kT0 + 1);
  connect("93.184.216.34", 443, -115 /* EINPROGRESS */, kT0 + 2);
  connect("10.9.9.9", 22, -111 /* refused: not in scope */, kT0 + 3);
  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  ASSERT_EQ(s.endpoints_size(), 1);
  EXPECT_EQ(s.endpoints(0).protocol(), "inet");
  EXPECT_EQ(s.endpoints(0).count(), 2u);
  EXPECT_EQ(s.endpoints(0).first_seen_unix_nano(), kT0 + 1);
  EXPECT_EQ(s.endpoints(0).last_seen_unix_nano(), kT0 + 2);
}

TEST_F(ScopeTrackerTest, BoundsCountWhatIsLeftOut) {
  ScopeLimits limits;
  limits.max_storage_dirs = 2;
  limits.max_files_per_dir = 1;
  limits.max_files_read = 1;
  limits.max_processes = 2;
  auto t = Tracker(limits);
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  for (int i = 0; i < 3; ++i) {
    t->ObserveEvent(Open(100, kT0 + i, absl::StrCat("/d", i, "/f"), O_WRONLY, 0100644));
  }
  t->ObserveEvent(Open(100, kT0 + 5, "/d0/g", O_WRONLY, 0100644));
  t->ObserveEvent(Open(100, kT0 + 6, "/x/a.pem", O_RDONLY, 0100644));
  t->ObserveEvent(Open(100, kT0 + 7, "/x/b.pem", O_RDONLY, 0100644));
  // Processes: the root and one child fit; a second child evicts the exited one.
  for (int child : {201, 202, 203}) {
    t->ObserveEvent(Fork(100, child, kT0 + child));
    if (child == 201) t->ObserveEvent(Event(v1::EVENT_KIND_PROCESS_EXIT, 201, kT0 + 250));
  }
  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  EXPECT_EQ(s.storage_size(), 2);
  EXPECT_EQ(s.storage(0).files_size(), 1);
  EXPECT_EQ(s.storage(0).write_count(), 2u) << "writes are still counted";
  EXPECT_EQ(s.truncated().at("storage"), 2u) << "one directory and one file name";
  EXPECT_EQ(s.files_read_size(), 1);
  EXPECT_EQ(s.truncated().at("files_read"), 1u);
  ASSERT_EQ(s.processes_size(), 2);
  EXPECT_EQ(s.processes(0).pid(), 100);
  EXPECT_EQ(s.processes(1).pid(), 202);
  EXPECT_EQ(s.truncated().at("processes"), 2u) << "201 evicted, 203 refused";
}

TEST_F(ScopeTrackerTest, WorkloadBoundIsAGap) {
  ScopeLimits limits;
  limits.max_workloads = 1;
  auto t = Tracker(limits);
  Snapshots(t.get(), {Snap(100, 1, "/opt/a", {"a"}), Snap(200, 1, "/opt/b", {"b"})}, kT0);
  std::vector<std::string> gaps;
  v1::RuntimeReport r = Report(t.get(), &gaps);
  EXPECT_EQ(r.scopes_size(), 1);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_NE(gaps[0].find("1 workload(s) not tracked"), std::string::npos) << gaps[0];
}

TEST_F(ScopeTrackerTest, RootRestartContinuesTheSameScope) {
  auto t = Tracker();
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  t->ObserveEvent(Open(100, kT0 + 1, "/var/lib/agent/a", O_WRONLY, 0100644));
  t->ObserveEvent(Event(v1::EVENT_KIND_PROCESS_EXIT, 100, kT0 + 2));
  EXPECT_EQ(Report(t.get()).scopes(0).root_pid(), 0) << "not running";
  Snapshots(t.get(), {Snap(300, 1, "/opt/agent/agent", {"agent"})}, kT0 + 1000);
  t->ObserveEvent(Open(300, kT0 + 1001, "/var/lib/agent/b", O_WRONLY, 0100644));

  v1::RuntimeReport r = Report(t.get());
  ASSERT_EQ(r.scopes_size(), 1);
  const v1::WorkloadScope& s = r.scopes(0);
  EXPECT_EQ(s.root_pid(), 300);
  ASSERT_EQ(s.processes_size(), 2);
  EXPECT_EQ(s.processes(0).exited_unix_nano(), kT0 + 2);
  EXPECT_EQ(s.processes(1).pid(), 300);
  EXPECT_THAT(s.storage(0).files(), ElementsAre("a", "b"));
  EXPECT_EQ(s.executables(0).exec_count(), 2u);
  EXPECT_EQ(s.first_seen_unix_nano(), kT0);
  EXPECT_EQ(s.last_seen_unix_nano(), kT0 + 1001);
}

TEST_F(ScopeTrackerTest, EventsBeforeTheFirstSnapshotWaitForIt) {
  auto t = Tracker();
  t->ObserveEvent(Open(400, kT0 + 1, "/var/lib/early/x", O_WRONLY, 0100644));
  t->ObserveEvent(Open(999, kT0 + 2, "/never/attributed", O_WRONLY, 0100644));
  EXPECT_EQ(Report(t.get()).scopes_size(), 0);
  Snapshots(t.get(), {Snap(400, 1, "/opt/early", {"early"})}, kT0 + 5);
  v1::RuntimeReport r = Report(t.get());
  ASSERT_EQ(r.scopes_size(), 1);
  ASSERT_EQ(r.scopes(0).storage_size(), 1);
  EXPECT_EQ(r.scopes(0).storage(0).directory(), "/var/lib/early");
  Snapshots(t.get(), {Snap(400, 1, "/opt/early", {"early"})}, kT0 + 6);
  std::vector<std::string> gaps;
  Report(t.get(), &gaps);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_NE(gaps[0].find("1 event(s)"), std::string::npos) << gaps[0];
}

TEST_F(ScopeTrackerTest, InheritedProcessesJoinTheirRootsWorkload) {
  auto t = Tracker();
  t->set_probes(false);
  v1::ProcessSnapshot child = Snap(101, 100, "/usr/bin/python3.11", {"inherited:100"});
  child.clear_cmdline();
  child.add_cmdline("python3");
  child.add_cmdline("/opt/agent/tool.py");
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"}), child}, kT0);
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0 + 50);
  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  ASSERT_EQ(s.processes_size(), 2);
  EXPECT_THAT(s.processes(1).exec_lineage(),
              ElementsAre("/opt/agent/agent", "/usr/bin/python3.11"));
  EXPECT_EQ(s.processes(1).exited_unix_nano(), kT0 + 50) << "gone from the snapshots";
  ASSERT_EQ(s.interpreters_size(), 1);
  EXPECT_THAT(s.interpreters(0).scripts(), ElementsAre("/opt/agent/tool.py"));
  EXPECT_THAT(s.gaps(), ::testing::Contains(::testing::HasSubstr("no probes")));
}

TEST_F(ScopeTrackerTest, PackagesOnlyInTheNodesMountNamespace) {
  const std::string db = dir_.path() + "/dpkg";
  std::filesystem::create_directories(db + "/info");
  Write(db + "/status",
        "Package: agent\nStatus: install ok installed\nArchitecture: amd64\n"
        "Version: 7\n");
  Write(db + "/info/agent.list", "/usr/bin/agent\n");
  DpkgDatabase dpkg(db);
  v1::ProcessSnapshot c = Snap(200, 1, "/usr/bin/agent", {"container"}, false);
  c.set_cgroup("/kubepods/pod1");
  auto t2 = Tracker({}, &dpkg);
  Snapshots(t2.get(), {Snap(100, 1, "/usr/bin/agent", {"host"}), c}, kT0);
  v1::RuntimeReport r = Report(t2.get());
  ASSERT_EQ(r.scopes_size(), 2);
  const v1::WorkloadScope& container = r.scopes(0);  // "/kubepods..." sorts first
  const v1::WorkloadScope& host = r.scopes(1);
  ASSERT_EQ(host.executables_size(), 1);
  EXPECT_EQ(host.executables(0).package().name(), "agent");
  EXPECT_EQ(host.executables(0).package().version(), "7");
  ASSERT_EQ(container.executables_size(), 1);
  EXPECT_FALSE(container.executables(0).has_package());
  EXPECT_THAT(container.gaps(), ::testing::Contains(::testing::HasSubstr("mount namespace")));
}

TEST_F(ScopeTrackerTest, HostileStringsAreData) {
  auto t = Tracker();
  Snapshots(t.get(), {Snap(100, 1, "/opt/agent/agent", {"agent"})}, kT0);
  t->ObserveEvent(Open(100, kT0, "", O_WRONLY, 0100644));
  t->ObserveEvent(Open(100, kT0, "/", O_WRONLY, 0100644));
  t->ObserveEvent(Open(100, kT0, "noslash-and-no-proc", O_WRONLY, 0100644));
  t->ObserveEvent(Open(100, kT0, "/a//b///", O_WRONLY, 0100644));
  t->ObserveEvent(Open(100, kT0, std::string(10000, '/'), O_WRONLY, 0100644));
  t->ObserveEvent(Open(100, kT0, "/x/-wal", O_WRONLY, 0100644));
  v1::RuntimeEvent bogus = Event(v1::EVENT_KIND_OPENAT, 100, kT0, "/short-args");
  t->ObserveEvent(bogus);  // no args at all: a read of unknown mode, neither config nor secret
  const v1::WorkloadScope s = Report(t.get()).scopes(0);
  for (const auto& st : s.storage()) EXPECT_LE(st.directory().size(), 1024u);
  EXPECT_THAT(s.files_read(), IsEmpty());
}

}  // namespace
}  // namespace vigil::node
