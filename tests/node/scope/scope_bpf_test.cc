// The workload scope with the real BPF probes: a monitored process runs a shell, writes a
// SQLite database in WAL mode and reads a 0600 file and a configuration file; the report's
// WorkloadScope shows all of it, with digests and dpkg owners.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/selector.h"
#include "node/agent/report_builder.h"
#include "node/probes/bpf_event_source.h"
#include "node/procfs/file_hash_cache.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "node/scope/dpkg_db.h"
#include "node/scope/scope_tracker.h"
#include "tests/testing/scope_items.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::vigil::testing::ExecutableAt;
using ::vigil::testing::FileReadEndingWith;
using ::vigil::testing::ScopeOf;
using ::vigil::testing::StorageEndingWith;
using ::vigil::testing::TestTempDir;

constexpr size_t kPayload = 16 << 20;

void Write(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path, std::ios::trunc) << text;
  chmod(path.c_str(), mode);
}

// One end of a pipe each way, to step the child.
struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { EXPECT_EQ(pipe(fd), 0); }
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
  void Signal() { (void)!write(fd[1], "x", 1); }
  bool Wait() {
    char c;
    return read(fd[0], &c, 1) == 1;
  }
};

class ScopeBpfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TestTempDir::Create("scope-bpf");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::move(*dir);
    std::filesystem::create_directories(dir_.path() + "/state");
    Write(secret(), "s3cr3t", 0600);
    Write(config(), "mode: test\n", 0644);
  }
  std::string secret() const { return dir_.path() + "/token-store.bin"; }
  std::string config() const { return dir_.path() + "/agent.yaml"; }
  std::string db() const { return dir_.path() + "/state/agent.db"; }

  // The workload: waits for `go`, starts a shell that writes a file and then waits on its
  // stdin, writes a SQLite WAL database (kept open so -wal and -shm stay), reads the two
  // files, signals `done` and waits for `quit`.
  int StartWorkload(Pipe& go, Pipe& done, Pipe& quit, Pipe& shell_stdin) {
    const std::string shell_cmd =
        absl::StrCat("echo scope > ", dir_.path(), "/shell-out.txt; read line");
    const std::string db_path = db(), secret_path = secret(), config_path = config();
    pid_t pid = fork();
    if (pid != 0) return pid;
    if (!go.Wait()) _exit(90);
    pid_t sh = fork();
    if (sh == 0) {
      dup2(shell_stdin.fd[0], 0);
      execl("/bin/sh", "sh", "-c", shell_cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    sqlite3* handle = nullptr;
    if (sqlite3_open(db_path.c_str(), &handle) != SQLITE_OK) _exit(91);
    if (sqlite3_exec(handle, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES(1);",
                     nullptr, nullptr, nullptr) != SQLITE_OK) {
      _exit(92);
    }
    for (const std::string& p : {secret_path, config_path}) {
      int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) _exit(93);
      char buf[64];
      (void)!read(fd, buf, sizeof(buf));
      close(fd);
    }
    done.Signal();
    quit.Wait();
    sqlite3_close(handle);
    int status = 0;
    waitpid(sh, &status, 0);
    _exit(0);
  }

  TestTempDir dir_;
};

TEST_F(ScopeBpfTest, ReportShowsShellSqliteWalAndFilesRead) {
  Pipe go, done, quit, shell_stdin;
  const int pid = StartWorkload(go, done, quit, shell_stdin);
  ASSERT_GT(pid, 0);
  auto reap = [&] {
    quit.Signal();
    shell_stdin.Signal();
    (void)!write(shell_stdin.fd[1], "\n", 1);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  };

  Selector selector;
  selector.name = "scope-bpf-test";
  selector.pid = pid;
  ProcessMatcher matcher({selector});
  FileHashCache hashes;
  Snapshotter snapshotter(SnapshotOptions{}, &hashes);
  // Before the probes: their consumer thread calls into the tracker until they stop.
  DpkgDatabase dpkg;
  ScopeTracker tracker(ScopeLimits{}, &hashes, &dpkg);
  ProbeOptions options;
  options.seed_pids = {pid};
  options.file_events = true;
  auto source = BpfEventSource::Start(options);
  if (!source.ok()) {
    reap();
    FAIL() << source.status();
  }
  (*source)->SetObserver([&tracker](const v1::RuntimeEvent& e) { tracker.ObserveEvent(e); });
  ReportBuilder builder(NodeInfo{}, &matcher, &snapshotter, source->get());
  builder.set_scope_tracker(&tracker, /*feed_events=*/false);
  v1::RuntimeReport first = builder.Build(kPayload);  // the root is known from here on
  ASSERT_NE(ScopeOf(first, pid), nullptr);

  go.Signal();
  ASSERT_TRUE(done.Wait()) << "the workload failed";
  const std::string wal_dir = dir_.path() + "/state";
  auto complete = [&](const v1::RuntimeReport& r) {
    const v1::WorkloadScope* s = ScopeOf(r, pid);
    if (s == nullptr) return false;
    const v1::ScopeStorage* st = StorageEndingWith(*s, wal_dir);
    return st != nullptr && st->sqlite_databases_size() > 0 &&
           st->sqlite_databases(0).companions_size() >= 2 &&
           FileReadEndingWith(*s, secret()) != nullptr &&
           FileReadEndingWith(*s, config()) != nullptr &&
           ExecutableAt(*s, "/usr/bin/dash") != nullptr &&
           StorageEndingWith(*s, dir_.path()) != nullptr;
  };
  // Events arrive asynchronously: report until the scope has caught up (a generous safety
  // limit; the assertions below say what was missing).
  v1::RuntimeReport r;
  const absl::Time limit = absl::Now() + absl::Seconds(20);
  do {
    (*source)->WaitForEvents(absl::Milliseconds(100));
    r = builder.Build(kPayload);
  } while (!complete(r) && absl::Now() < limit);
  const int status = reap();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  const v1::WorkloadScope* s = ScopeOf(r, pid);
  ASSERT_NE(s, nullptr);
  EXPECT_THAT(s->matched_by(), ElementsAre("scope-bpf-test"));
  EXPECT_THAT(s->gaps(), ::testing::IsEmpty());
  for (const v1::RuntimeEvent& e : r.events()) EXPECT_FALSE(IsFileEvent(e)) << e.DebugString();

  // The shell: its resolved executable with its digest and package, as an interpreter with
  // its inline script, and as a process whose lineage starts at the root.
  const v1::ScopeExecutable* dash = ExecutableAt(*s, "/usr/bin/dash");
  ASSERT_NE(dash, nullptr);
  auto dash_sha = hashes.HashHex("/usr/bin/dash");
  ASSERT_TRUE(dash_sha.ok());
  EXPECT_EQ(dash->sha256(), *dash_sha);
  EXPECT_EQ(dash->package().name(), "dash");
  EXPECT_FALSE(dash->package().version().empty());
  EXPECT_EQ(dash->exec_count(), 1u);
  bool shell_interpreter = false;
  for (const v1::ScopeInterpreter& i : s->interpreters()) {
    if (i.kind() == "sh" && i.executable() == "/usr/bin/dash") {
      shell_interpreter = true;
      EXPECT_THAT(i.scripts(), ElementsAre("-c"));
      EXPECT_EQ(i.package().name(), "dash");
    }
  }
  EXPECT_TRUE(shell_interpreter);
  bool shell_process = false;
  for (const v1::ScopeProcess& p : s->processes()) {
    if (p.exe_path() != "/usr/bin/dash") continue;
    shell_process = true;
    EXPECT_EQ(p.ppid(), pid);
    ASSERT_EQ(p.exec_lineage_size(), 2);
    EXPECT_EQ(p.exec_lineage(0), s->root_exe_path());
    EXPECT_THAT(p.cmdline(), Contains("-c"));
  }
  EXPECT_TRUE(shell_process);

  // The SQLite database with its WAL companions, and the shell's own write.
  const v1::ScopeStorage* state = StorageEndingWith(*s, wal_dir);
  ASSERT_NE(state, nullptr);
  EXPECT_THAT(std::vector<std::string>(state->files().begin(), state->files().end()),
              IsSupersetOf({"agent.db", "agent.db-wal", "agent.db-shm"}));
  ASSERT_EQ(state->sqlite_databases_size(), 1);
  EXPECT_EQ(state->sqlite_databases(0).name(), "agent.db");
  EXPECT_THAT(state->sqlite_databases(0).companions(), IsSupersetOf({"-shm", "-wal"}));
  EXPECT_GT(state->first_seen_unix_nano(), 0);
  const v1::ScopeStorage* top = StorageEndingWith(*s, dir_.path());
  ASSERT_NE(top, nullptr);
  EXPECT_THAT(top->files(), Contains("shell-out.txt"));

  // The files read: the 0600 one by its mode, the configuration by its name.
  const v1::ScopeFileRead* secret_read = FileReadEndingWith(*s, secret());
  ASSERT_NE(secret_read, nullptr);
  EXPECT_EQ(secret_read->classification(), "secret");
  EXPECT_EQ(secret_read->reason(), "mode:0600");
  EXPECT_EQ(secret_read->mode(), 0600u);
  EXPECT_GE(secret_read->count(), 1u);
  const v1::ScopeFileRead* config_read = FileReadEndingWith(*s, config());
  ASSERT_NE(config_read, nullptr);
  EXPECT_EQ(config_read->classification(), "config");
  EXPECT_EQ(config_read->mode(), 0644u);

  // Libraries from the snapshots, with their owners: the C library is libc6's.
  bool libc = false;
  for (const v1::ScopeLibrary& l : s->libraries()) {
    if (l.path().find("/libc.so.6") == std::string::npos) continue;
    libc = true;
    EXPECT_EQ(l.package().name(), "libc6");
    EXPECT_EQ(l.sha256().size(), 64u);
  }
  EXPECT_TRUE(libc);
  EXPECT_TRUE(s->truncated().empty());
}

// File events do not wake the consumer; a workload that does nothing else still has its
// writes in the scope (read at the consumer's poll timeout).
TEST_F(ScopeBpfTest, QuietWritesArriveWithoutAWakeup) {
  Pipe go, quit;
  const std::string path = dir_.path() + "/state/quiet.txt";
  const pid_t pid = fork();
  if (pid == 0) {
    if (!go.Wait()) _exit(90);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) _exit(91);
    close(fd);
    quit.Wait();  // alive, and silent, until the test is done
    _exit(0);
  }
  ASSERT_GT(pid, 0);
  FileHashCache hashes;
  ScopeTracker tracker(ScopeLimits{}, &hashes, nullptr);  // outlives the probes below
  tracker.set_probes(true);
  ProbeOptions options;
  options.seed_pids = {pid};
  options.file_events = true;
  auto source = BpfEventSource::Start(options);
  ASSERT_TRUE(source.ok()) << source.status();
  (*source)->SetObserver([&tracker](const v1::RuntimeEvent& e) { tracker.ObserveEvent(e); });
  v1::ProcessSnapshot root;
  root.set_pid(pid);
  root.set_exe_path("/quiet");
  root.add_matched_by("quiet");
  v1::RuntimeReport r;
  *r.add_processes() = root;
  tracker.ObserveSnapshots(r.processes(), absl::GetCurrentTimeNanos());
  go.Signal();
  const v1::ScopeStorage* written = nullptr;
  v1::RuntimeReport out;
  for (absl::Time limit = absl::Now() + absl::Seconds(20); absl::Now() < limit;
       absl::SleepFor(absl::Milliseconds(50))) {
    out.clear_scopes();
    std::vector<std::string> gaps;
    tracker.AppendScopes(&out, &gaps);
    written =
        out.scopes_size() == 1 ? StorageEndingWith(out.scopes(0), dir_.path() + "/state") : nullptr;
    if (written != nullptr) break;
  }
  quit.Signal();
  waitpid(pid, nullptr, 0);
  ASSERT_NE(written, nullptr);
  EXPECT_THAT(written->files(), ElementsAre("quiet.txt"));
}

TEST_F(ScopeBpfTest, WithoutProbesTheScopeComesFromSnapshotsAndSaysSo) {
  Pipe go, done, quit, shell_stdin;
  const int pid = StartWorkload(go, done, quit, shell_stdin);
  ASSERT_GT(pid, 0);
  go.Signal();
  ASSERT_TRUE(done.Wait());
  Selector selector;
  selector.name = "scope-no-probes";
  selector.pid = pid;
  ProcessMatcher matcher({selector});
  FileHashCache hashes;
  Snapshotter snapshotter(SnapshotOptions{}, &hashes);
  DpkgDatabase dpkg;
  ScopeTracker tracker(ScopeLimits{}, &hashes, &dpkg);
  ReportBuilder builder(NodeInfo{}, &matcher, &snapshotter, /*events=*/nullptr);
  builder.set_scope_tracker(&tracker, /*feed_events=*/true);
  v1::RuntimeReport r = builder.Build(kPayload);
  quit.Signal();
  (void)!write(shell_stdin.fd[1], "\n", 1);
  int status = 0;
  waitpid(pid, &status, 0);

  const v1::WorkloadScope* s = ScopeOf(r, pid);
  ASSERT_NE(s, nullptr);
  EXPECT_THAT(s->gaps(), Contains(HasSubstr("no probes")));
  // The shell still runs: the snapshots see it, with its digest and owner.
  const v1::ScopeExecutable* dash = ExecutableAt(*s, "/usr/bin/dash");
  ASSERT_NE(dash, nullptr);
  EXPECT_EQ(dash->package().name(), "dash");
  EXPECT_EQ(dash->sha256().size(), 64u);
  EXPECT_FALSE(s->libraries().empty());
  EXPECT_TRUE(s->files_read().empty()) << "reads are seen by the probes only";
}

}  // namespace
}  // namespace vigil::node
