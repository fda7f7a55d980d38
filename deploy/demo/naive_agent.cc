// naive-agent: a demo workload with none of the runtime controls, doing what a compromised
// or careless agent does:
//   - forks a sibling process ("naive-sibling") that holds a token in memory;
//   - attaches to the sibling with ptrace (PTRACE_ATTACH, wait for the stop, detach);
//   - reads the sibling's token with process_vm_readv;
//   - maps anonymous memory writable and executable at once (not locked) and runs code
//     from it;
//   - creates a user namespace (unshare(CLONE_NEWUSER) in a short-lived child).
//   - reaches outside its own code (its runtime scope, docs/demo.md): shells out to an
//     interpreter that runs a packaged program (`/bin/sh -c` running /usr/bin/curl on a
//     file:// URL, or /usr/bin/getent when curl is not installed), writes a row into a
//     SQLite database in WAL mode (opened for each write, so its -wal and -shm files are
//     created each time) and reads a secrets file (mode 0600) it created, all under its state
//     directory ($VIGIL_DEMO_STATE_DIR/naive-agent, by default
//     /var/lib/vigil-demo/naive-agent).
// It prints one line saying what worked and a second line about its scope, then repeats
// the ptrace, process_vm_readv, user-namespace and scope steps every three seconds until
// SIGTERM or SIGINT; then it kills and reaps the sibling and exits 0.

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

// The sibling writes its token here after fork; the agent reads the same address (fork
// keeps the layout) out of the sibling's memory.
char g_token[64];

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "naive-agent: %s: %s\n", what, strerror(errno));
  std::exit(1);
}

std::string Result(bool ok, int err) { return ok ? "ok" : std::string("failed:") + strerror(err); }

// The sibling: names itself, dies with the agent, announces readiness, then sleeps.
pid_t StartSibling() {
  int ready[2];
  if (pipe(ready) != 0) Die("pipe");
  const pid_t agent = getpid();
  pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    close(ready[0]);
    prctl(PR_SET_NAME, "naive-sibling", 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != agent) _exit(0);
    std::snprintf(g_token, sizeof(g_token), "sibling %d token", getpid());
    char c = 'r';
    (void)!write(ready[1], &c, 1);
    close(ready[1]);
    for (;;) pause();
  }
  close(ready[1]);
  char c;
  if (read(ready[0], &c, 1) != 1) Die("sibling did not start");
  close(ready[0]);
  return pid;
}

std::string PtraceSibling(pid_t sibling) {
  if (ptrace(PTRACE_ATTACH, sibling, nullptr, nullptr) != 0) return Result(false, errno);
  int status = 0;
  while (waitpid(sibling, &status, __WALL) < 0) {
    if (errno != EINTR) return Result(false, errno);
  }
  // The sibling stopped with SIGSTOP from the attach; detach without re-sending it.
  bool ok = ptrace(PTRACE_DETACH, sibling, nullptr, nullptr) == 0;
  return Result(ok, errno);
}

std::string ReadSiblingMemory(pid_t sibling, std::string* token) {
  char buf[sizeof(g_token)] = {};
  iovec local{buf, sizeof(buf)};
  iovec remote{g_token, sizeof(g_token)};
  ssize_t n = process_vm_readv(sibling, &local, 1, &remote, 1, 0);
  if (n < 0) return Result(false, errno);
  *token = std::string(buf, strnlen(buf, sizeof(buf)));
  return Result(true, 0);
}

std::string CreateUserNamespace() {
  pid_t pid = fork();
  if (pid < 0) return Result(false, errno);
  if (pid == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : (errno & 0x7f));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Result(false, errno);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Result(true, 0);
  return Result(false, WIFEXITED(status) ? WEXITSTATUS(status) : ECHILD);
}

// Where the agent keeps its state: $VIGIL_DEMO_STATE_DIR/naive-agent, by default
// /var/lib/vigil-demo/naive-agent.
std::string StateDir() {
  const char* base = std::getenv("VIGIL_DEMO_STATE_DIR");
  return std::string(base != nullptr && *base != '\0' ? base : "/var/lib/vigil-demo") +
         "/naive-agent";
}

// Runs `argv` (a path and its arguments) and waits for it; "ok" when it exits 0.
std::string Run(const std::vector<const char*>& argv) {
  pid_t pid = fork();
  if (pid < 0) return Result(false, errno);
  if (pid == 0) {
    std::vector<char*> args;
    for (const char* a : argv) args.push_back(const_cast<char*>(a));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Result(false, errno);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Result(true, 0);
  return "failed:status " + std::to_string(status);
}

// A shell running a packaged program: curl fetching a local file, or getent.
std::string ShellOut(const std::string& state) {
  const std::string out = state + "/fetched.txt";
  if (access("/usr/bin/curl", X_OK) == 0) {
    return Run({"/bin/sh", "-c", "/usr/bin/curl -s -o \"$1\" file:///etc/hostname", "naive-shell",
                out.c_str()});
  }
  return Run(
      {"/bin/sh", "-c", "/usr/bin/getent hosts localhost > \"$1\"", "naive-shell", out.c_str()});
}

// The agent's SQLite database in WAL mode: opened for every write (SQLite creates the -wal
// and -shm files then, and removes them at the last close), so a node that starts after the
// agent still sees them written.
sqlite3* OpenDatabase(const std::string& state) {
  sqlite3* db = nullptr;
  if (sqlite3_open((state + "/agent.db").c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 1000);  // another instance may write at the same time
  if (sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS runs(at INTEGER, "
                   "pid INTEGER)",
                   nullptr, nullptr, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return nullptr;
  }
  return db;
}

std::string RecordRun(const std::string& state) {
  sqlite3* db = OpenDatabase(state);
  if (db == nullptr) return "failed:cannot open the database";
  const std::string sql = "INSERT INTO runs VALUES(" + std::to_string(time(nullptr)) + ", " +
                          std::to_string(getpid()) + ")";
  std::string result = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK
                           ? "ok"
                           : std::string("failed:") + sqlite3_errmsg(db);
  sqlite3_close(db);
  return result;
}

// The secrets file: written once (mode 0600), read at every step.
std::string WriteSecret(const std::string& state) {
  int fd = open((state + "/api-token").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Result(false, errno);
  fchmod(fd, 0600);
  const char token[] = "naive-agent-demo-token\n";
  bool ok = write(fd, token, sizeof(token) - 1) == static_cast<ssize_t>(sizeof(token) - 1);
  int err = errno;
  close(fd);
  return Result(ok, err);
}

std::string ReadSecret(const std::string& state) {
  int fd = open((state + "/api-token").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Result(false, errno);
  char buf[128];
  bool ok = read(fd, buf, sizeof(buf)) >= 0;
  int err = errno;
  close(fd);
  return Result(ok, err);
}

// x86_64: mov eax, 42; ret
constexpr uint8_t kJitCode[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};

}  // namespace

int main() {
  if (prctl(PR_SET_NAME, "naive-agent", 0, 0, 0) != 0) Die("prctl(PR_SET_NAME)");
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop, nullptr) != 0) Die("sigprocmask");

  const pid_t sibling = StartSibling();

  std::string ptrace_result = PtraceSibling(sibling);
  std::string token;
  std::string readv_result = ReadSiblingMemory(sibling, &token);

  void* rwx =
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (rwx == MAP_FAILED) Die("mmap(rwx)");
  memcpy(rwx, kJitCode, sizeof(kJitCode));
  const int jit_value = reinterpret_cast<int (*)()>(rwx)();

  std::string userns_result = CreateUserNamespace();

  const std::string state = StateDir();
  std::error_code ec;
  std::filesystem::create_directories(state, ec);
  std::string secret_written = WriteSecret(state);
  std::string shell_result = ShellOut(state);
  std::string sqlite_result = RecordRun(state);
  std::string secret_read = ReadSecret(state);

  std::printf(
      "naive-agent pid=%d sibling_pid=%d rwx=%p+4096: ptrace=%s process_vm_readv=%s "
      "(read \"%s\") rwx_exec=%s userns=%s; no seccomp, full capabilities, no "
      "no_new_privs, nothing locked\n",
      getpid(), sibling, rwx, ptrace_result.c_str(), readv_result.c_str(), token.c_str(),
      jit_value == 42 ? "ok" : "failed", userns_result.c_str());
  std::printf(
      "naive-agent scope: state=%s shell(/bin/sh -c %s)=%s sqlite_wal(agent.db)=%s "
      "secret_written(api-token 0600)=%s secret_read=%s\n",
      state.c_str(), access("/usr/bin/curl", X_OK) == 0 ? "/usr/bin/curl" : "/usr/bin/getent",
      shell_result.c_str(), sqlite_result.c_str(), secret_written.c_str(), secret_read.c_str());
  std::fflush(stdout);

  const timespec three_seconds{3, 0};
  for (;;) {
    int sig = sigtimedwait(&stop, nullptr, &three_seconds);
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig < 0 && errno != EAGAIN && errno != EINTR) Die("sigtimedwait");
    PtraceSibling(sibling);
    ReadSiblingMemory(sibling, &token);
    CreateUserNamespace();
    ShellOut(state);
    RecordRun(state);
    ReadSecret(state);
  }

  kill(sibling, SIGKILL);
  while (waitpid(sibling, nullptr, 0) < 0 && errno == EINTR) {
  }
  munmap(rwx, 4096);
  return 0;
}
