#include "tests/testing/swtpm_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/status_macros.h"

extern char** environ;

namespace vigil::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kLocalCaDir[] = "/var/lib/swtpm-localca";
constexpr char kStateFile[] = "tpm2-00.permall";

// A build directory for the shared manufactured state (not a test's own directory).
absl::StatusOr<std::string> MakeCacheBuildDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/", prefix, "-XXXXXX");
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", templ, ": ", strerror(errno)));
  }
  return std::string(buf.data());
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Spawns argv with stdout and stderr appended to log_path. Returns the child's pid.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  absl::Cleanup destroy = [&] { posix_spawn_file_actions_destroy(&actions); };
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("spawn ", argv[0], ": ", strerror(rc)));
  }
  return pid;
}

// Runs argv to completion; fails with the tail of its output when it exits non-zero.
absl::Status Run(const std::vector<std::string>& argv, const std::string& log_path) {
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, log_path));
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return absl::InternalError(absl::StrCat("waitpid: ", strerror(errno)));
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return absl::OkStatus();
  std::string log = ReadFileOrEmpty(log_path);
  if (log.size() > 2000) log = log.substr(log.size() - 2000);
  return absl::InternalError(
      absl::StrCat(argv[0], " failed (wait status ", wstatus, "); output:\n", log));
}

// Manufactures a TPM state (EK certificates signed by the local CA) into dir.
absl::Status Manufacture(const std::string& dir) {
  return Run({"swtpm_setup", "--tpm2", "--create-ek-cert", "--create-platform-cert", "--tpm-state",
              dir, "--config", "/etc/swtpm_setup.conf", "--overwrite", "--pcr-banks", "sha256"},
             dir + "/swtpm_setup.log");
}

// Returns a directory holding a manufactured tpm2-00.permall, shared by every fixture on
// this machine that was manufactured with the current local CA. Built in a temporary
// directory and renamed into place, so concurrent tests never see a half-written state.
absl::StatusOr<std::string> CachedManufacturedState() {
  std::string issuer = ReadFileOrEmpty(absl::StrCat(kLocalCaDir, "/issuercert.pem"));
  const char* tmp = std::getenv("TMPDIR");
  std::string cache_root =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/vigil-swtpm-cache");
  if (!issuer.empty()) {
    std::string cached = absl::StrCat(cache_root, "/", HexEncode(Sha256(issuer)).substr(0, 16));
    if (fs::exists(absl::StrCat(cached, "/", kStateFile))) return cached;
  }
  // Manufacturing creates the local CA on a fresh machine; key the cache on it afterwards.
  std::error_code ec;
  fs::create_directories(cache_root, ec);
  ASSIGN_OR_RETURN(std::string build, MakeCacheBuildDir("vigil-swtpm-cache/build"));
  absl::Cleanup remove_build = [&] { fs::remove_all(build, ec); };
  RETURN_IF_ERROR(Manufacture(build));
  issuer = ReadFileOrEmpty(absl::StrCat(kLocalCaDir, "/issuercert.pem"));
  if (issuer.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("swtpm_setup left no issuer certificate in ", kLocalCaDir));
  }
  std::string cached = absl::StrCat(cache_root, "/", HexEncode(Sha256(issuer)).substr(0, 16));
  // Another process may have won the race; either way `cached` is complete afterwards.
  if (rename(build.c_str(), cached.c_str()) != 0 && !fs::exists(cached)) {
    return absl::InternalError(absl::StrCat("rename ", build, ": ", strerror(errno)));
  }
  return cached;
}

// Two free consecutive loopback ports P, P+1: binds P through port 0, then checks P+1.
absl::StatusOr<int> PickPortPair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int s1 = socket(AF_INET, SOCK_STREAM, 0);
    int s2 = socket(AF_INET, SOCK_STREAM, 0);
    absl::Cleanup close_both = [&] {
      if (s1 >= 0) close(s1);
      if (s2 >= 0) close(s2);
    };
    if (s1 < 0 || s2 < 0) return absl::InternalError("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(s1, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) continue;
    socklen_t len = sizeof(addr);
    getsockname(s1, reinterpret_cast<sockaddr*>(&addr), &len);
    int port = ntohs(addr.sin_port);
    if (port >= 65535) continue;
    addr.sin_port = htons(port + 1);
    if (bind(s2, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) continue;
    return port;
  }
  return absl::UnavailableError("no two consecutive free loopback ports");
}

// The inode of the socket listening on 127.0.0.1:`port` (from /proc/net/tcp), 0 if none.
uint64_t ListeningSocketInode(int port) {
  std::ifstream in("/proc/net/tcp");
  char local[32];
  snprintf(local, sizeof(local), "%08X:%04X", htonl(INADDR_LOOPBACK), port);
  constexpr char kListen[] = "0A";
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local_address, remote_address, state, queues, timer, retransmits, uid,
        timeouts;
    uint64_t inode = 0;
    if (fields >> slot >> local_address >> remote_address >> state >> queues >> timer >>
            retransmits >> uid >> timeouts >> inode &&
        local_address == local && state == kListen) {
      return inode;
    }
  }
  return 0;
}

// Whether process `pid` holds the socket with inode `inode`.
bool HoldsSocket(pid_t pid, uint64_t inode) {
  if (inode == 0) return false;
  const std::string want = absl::StrCat("socket:[", inode, "]");
  std::error_code ec;
  for (const fs::directory_entry& fd :
       fs::directory_iterator(absl::StrCat("/proc/", pid, "/fd"), ec)) {
    std::error_code link_ec;
    if (fs::read_symlink(fd.path(), link_ec).string() == want) return true;
  }
  return false;
}

// Whether swtpm itself listens on both ports (not some other process that took one of them
// between PickPortPair and swtpm's bind).
bool SwtpmListens(pid_t pid, int port) {
  return HoldsSocket(pid, ListeningSocketInode(port)) &&
         HoldsSocket(pid, ListeningSocketInode(port + 1));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SwtpmFixture>> SwtpmFixture::Start(Options options) {
  std::unique_ptr<SwtpmFixture> f(new SwtpmFixture());
  ASSIGN_OR_RETURN(f->root_, TestTempDir::Create("swtpm"));
  f->root_dir_ = f->root_.path();
  f->state_dir_ = f->root_dir_ + "/state";
  f->scratch_dir_ = f->root_dir_ + "/scratch";
  std::error_code ec;
  fs::create_directories(f->state_dir_, ec);
  fs::create_directories(f->scratch_dir_, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", f->root_dir_, ": ", ec.message()));

  if (options.fresh_tpm) {
    RETURN_IF_ERROR(Manufacture(f->state_dir_));
  } else {
    ASSIGN_OR_RETURN(std::string cached, CachedManufacturedState());
    fs::copy_file(absl::StrCat(cached, "/", kStateFile),
                  absl::StrCat(f->state_dir_, "/", kStateFile), ec);
    if (ec) return absl::InternalError(absl::StrCat("copy TPM state: ", ec.message()));
  }

  std::string bundle =
      ReadFileOrEmpty(absl::StrCat(kLocalCaDir, "/swtpm-localca-rootca-cert.pem")) +
      ReadFileOrEmpty(absl::StrCat(kLocalCaDir, "/issuercert.pem"));
  if (bundle.empty()) return absl::FailedPreconditionError("swtpm local CA certificates missing");
  f->ek_ca_path_ = f->root_dir_ + "/ek-ca-bundle.pem";
  std::ofstream(f->ek_ca_path_, std::ios::binary) << bundle;

  RETURN_IF_ERROR(f->Launch());
  return f;
}

absl::Status SwtpmFixture::Launch() {
  absl::Status last = absl::UnavailableError("swtpm did not start");
  for (int attempt = 0; attempt < 10; ++attempt) {
    ASSIGN_OR_RETURN(port_, PickPortPair());
    std::vector<std::string> argv = {
        "swtpm",
        "socket",
        "--tpm2",
        "--server",
        absl::StrCat("type=tcp,port=", port_, ",bindaddr=127.0.0.1"),
        "--ctrl",
        absl::StrCat("type=tcp,port=", port_ + 1, ",bindaddr=127.0.0.1"),
        "--tpmstate",
        absl::StrCat("dir=", state_dir_),
        "--flags",
        "not-need-init,startup-clear",
    };
    ASSIGN_OR_RETURN(pid_, Spawn(argv, root_dir_ + "/swtpm.log"));
    // Readiness (not a test assertion): swtpm's own sockets listen on both ports, or it
    // exits, e.g. when another process took a port between PickPortPair and its bind; then
    // the next pair is tried. The bound only keeps a broken swtpm from hanging the suite.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      int wstatus = 0;
      if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        pid_ = -1;
        last = absl::UnavailableError(absl::StrCat(
            "swtpm exited (status ", wstatus, "): ", ReadFileOrEmpty(root_dir_ + "/swtpm.log")));
        break;
      }
      if (SwtpmListens(pid_, port_)) return absl::OkStatus();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid_ > 0) {
      Stop();
      last = absl::DeadlineExceededError("swtpm did not listen within 60 s");
    }
  }
  return last;
}

void SwtpmFixture::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int wstatus = 0;
  for (int i = 0; i < 500; ++i) {
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &wstatus, 0);
  pid_ = -1;
}

absl::Status SwtpmFixture::Restart() {
  Stop();
  return Launch();
}

SwtpmFixture::~SwtpmFixture() { Stop(); }

std::string SwtpmFixture::tcti() const { return absl::StrCat("swtpm:host=127.0.0.1,port=", port_); }

}  // namespace vigil::testing
