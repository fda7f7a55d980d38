#include "tests/testing/fabric_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/cleanup/cleanup.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/verifier_fixture.h"

extern char** environ;

namespace vigil::testing {
namespace {

// Only keeps a broken fabric from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kProgressBound = absl::Seconds(60);

std::string Program(const std::string& relative) {
  return absl::StrCat(vigil::testing::BuildDir(), "/", relative);
}

std::vector<char*> ArgvPointers(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const std::string& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

std::string ReadOrEmpty(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFileToString(path);
  return s.ok() ? *s : std::string();
}

// Copies the SQLite database at `from` to `to` with SQLite's online backup, which reads one
// consistent snapshot (WAL included) while another process keeps writing.
absl::Status CopySqliteDatabase(const std::string& from, const std::string& to) {
  sqlite3* src = nullptr;
  sqlite3* dst = nullptr;
  absl::Cleanup close = [&] {
    sqlite3_close(src);
    sqlite3_close(dst);
  };
  if (sqlite3_open_v2(from.c_str(), &src, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK ||
      sqlite3_open(to.c_str(), &dst) != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("cannot open ", from, " or ", to));
  }
  sqlite3_backup* backup = sqlite3_backup_init(dst, "main", src, "main");
  if (backup == nullptr) return absl::InternalError(sqlite3_errmsg(dst));
  int rc = SQLITE_OK;
  do {
    rc = sqlite3_backup_step(backup, -1);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) absl::SleepFor(absl::Milliseconds(20));
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return absl::InternalError(absl::StrCat("backup of ", from, ": ", rc));
  return absl::OkStatus();
}

}  // namespace

bool AcceptsConnections(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  absl::Cleanup close_fd = [fd] { close(fd); };
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  absl::Cleanup destroy = [&] { posix_spawn_file_actions_destroy(&actions); };
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args = ArgvPointers(argv);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("posix_spawn ", argv[0], ": ", strerror(rc)));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() { Stop(); }

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  if (r == pid_) wait_status_ = status;
  pid_ = -1;
  return false;
}

int ChildProcess::Stop() {
  if (!Running()) return wait_status_;
  kill(pid_, SIGTERM);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (Running()) {
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      int status = 0;
      if (waitpid(pid_, &status, 0) == pid_) wait_status_ = status;
      pid_ = -1;
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return wait_status_;
}

std::string UniqueComm(const std::string& prefix) {
  absl::BitGen gen;
  return absl::StrCat(prefix, absl::Uniform<uint32_t>(gen, 10000000, 99999999));
}

absl::Status CopyProgram(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy_file(from, to, ec);
  if (!ec) std::filesystem::permissions(to, std::filesystem::perms::owner_all, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("copying ", from, " to ", to, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> RunForOutput(const std::vector<std::string>& argv) {
  char path[] = "/tmp/vigil-run-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return absl::InternalError("mkstemp failed");
  close(fd);
  absl::Cleanup remove = [&] { unlink(path); };
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  absl::Cleanup destroy = [&] { posix_spawn_file_actions_destroy(&actions); };
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, path, O_WRONLY | O_TRUNC, 0);
  std::vector<char*> args = ArgvPointers(argv);
  pid_t pid = -1;
  if (int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ); rc != 0) {
    return absl::InternalError(absl::StrCat("posix_spawn ", argv[0], ": ", strerror(rc)));
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return absl::InternalError("waitpid failed");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " failed, wait status ", status));
  }
  return ReadFileToString(path);
}

absl::StatusOr<std::unique_ptr<Fabric>> Fabric::Start(Options options) {
  std::unique_ptr<Fabric> f(new Fabric());
  absl::StatusOr<TestTempDir> dir = TestTempDir::Create("fabric");
  if (!dir.ok()) return dir.status();
  f->tmp_ = *std::move(dir);
  f->dir_ = f->tmp_.path();
  f->state_dir_ = f->dir_ + "/state";
  std::filesystem::create_directories(f->state_dir_);

  absl::StatusOr<std::unique_ptr<SwtpmFixture>> tpm = SwtpmFixture::Start();
  if (!tpm.ok()) return tpm.status();
  f->tpm_ = std::move(*tpm);
  absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
  if (!pki.ok()) return pki.status();
  f->pki_ = std::move(*pki);

  // Reference values as the node publishes them (typed YAML).
  const std::string rv_path = f->dir_ + "/rv.yaml";
  std::vector<std::string> rv_argv = {Program("node/vigil-node"), "reference-values", "--out",
                                      rv_path};
  f->node_args_ = options.node_args;
  if (!options.node_policy.empty()) {
    for (std::vector<std::string>* argv : {&rv_argv, &f->node_args_}) {
      argv->push_back("--policy");
      argv->push_back(options.node_policy);
    }
  }
  absl::StatusOr<std::string> rv = RunForOutput(rv_argv);
  if (!rv.ok()) return rv.status();
  if (options.omit_node_binary_reference) {
    YAML::Node root = YAML::LoadFile(rv_path);
    YAML::Node kept(YAML::NodeType::Sequence);
    for (const YAML::Node& v : root["reference_values"]) {
      if (v["type"].as<std::string>() != "vigil-node-binary") kept.push_back(v);
    }
    root["reference_values"] = kept;
    YAML::Emitter out;
    out << root;
    std::ofstream(rv_path, std::ios::trunc) << out.c_str() << "\n";
  }

  // The workload: a copy of sleep(1) under a name only this fabric uses, so its comm is
  // distinctive.
  f->workload_comm_ = UniqueComm("vfab");
  const std::string workload_exe = f->dir_ + "/" + f->workload_comm_;
  RETURN_IF_ERROR(CopyProgram("/usr/bin/sleep", workload_exe));
  absl::StatusOr<std::unique_ptr<ChildProcess>> workload =
      ChildProcess::Spawn({workload_exe, "infinity"}, f->dir_ + "/workload.log");
  if (!workload.ok()) return workload.status();
  f->workload_ = std::move(*workload);

  if (options.demo_agents) {
    f->demo_agents_ = true;
    absl::StatusOr<std::unique_ptr<ChildProcess>> hardened = ChildProcess::Spawn(
        {Program("deploy/demo/vigil-demo-hardened-agent")}, f->dir_ + "/hardened-agent.log");
    if (!hardened.ok()) return hardened.status();
    f->hardened_ = std::move(*hardened);
    absl::StatusOr<std::unique_ptr<ChildProcess>> naive = ChildProcess::Spawn(
        {Program("deploy/demo/vigil-demo-naive-agent")}, f->dir_ + "/naive-agent.log");
    if (!naive.ok()) return naive.status();
    f->naive_ = std::move(*naive);
  }

  // Ports no other process can take between now and the verifier's bind.
  absl::StatusOr<ReservedPort> port = ReservedPort::Create();
  if (!port.ok()) return port.status();
  f->verifier_port_ = *std::move(port);
  absl::StatusOr<ReservedPort> enroll_port = ReservedPort::Create();
  if (!enroll_port.ok()) return enroll_port.status();
  f->enroll_port_ = *std::move(enroll_port);
  f->verifier_address_ = f->verifier_port_.address();
  f->enroll_address_ = f->enroll_port_.address();
  absl::StatusOr<ReservedPort> standby_port = ReservedPort::Create();
  if (!standby_port.ok()) return standby_port.status();
  f->standby_port_ = *std::move(standby_port);
  f->standby_address_ = f->standby_port_.address();
  f->shared_verifier_args_ = {
      "--pki-dir",          f->pki_->dir(), "--ek-ca-bundle",    f->tpm_->ek_ca_path(),
      "--reference-values", rv_path,        "--report-interval", "1s"};
  f->shared_verifier_args_.insert(f->shared_verifier_args_.end(), options.verifier_args.begin(),
                                  options.verifier_args.end());
  std::vector<std::string> verifier_argv = {Program("verifier/vigil-verifier"),
                                            "--listen",
                                            f->verifier_address_,
                                            "--enroll-listen",
                                            f->enroll_address_,
                                            "--db",
                                            f->db_path()};
  verifier_argv.insert(verifier_argv.end(), f->shared_verifier_args_.begin(),
                       f->shared_verifier_args_.end());
  f->verifier_argv_ = std::move(verifier_argv);
  RETURN_IF_ERROR(f->StartVerifier());
  return f;
}

absl::Status Fabric::StartVerifier() {
  if (verifier_ != nullptr && verifier_->Running()) {
    return absl::FailedPreconditionError("verifier runs");
  }
  ASSIGN_OR_RETURN(verifier_, ChildProcess::Spawn(verifier_argv_, dir_ + "/verifier.log"));
  ASSIGN_OR_RETURN(fleet_, AwaitFleet(*verifier_, verifier_port_.port()));
  return absl::OkStatus();
}

absl::Status Fabric::StopVerifier() {
  if (verifier_ == nullptr) return absl::FailedPreconditionError("no verifier started");
  int status = verifier_->Stop();
  verifier_.reset();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("vigil-verifier wait status ", status, "\n", Logs()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<v1::Fleet::Stub>> Fabric::AwaitFleet(ChildProcess& verifier,
                                                                    int port) {
  // Wait for the listener with plain TCP connects first: a gRPC channel that found it closed
  // backs off for seconds before trying again.
  absl::Time deadline = absl::Now() + kProgressBound;
  while (!AcceptsConnections(port)) {
    if (!verifier.Running() || absl::Now() > deadline) {
      return absl::UnavailableError(absl::StrCat("verifier never listened\n", Logs()));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  auto fleet = v1::Fleet::NewStub(MakeChannel(
      absl::StrCat("127.0.0.1:", port), ClientCredentials(pki_->ca_cert_pem(), pki_->client())));
  // Ready once the Fleet API answers.
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    v1::ListNodesResponse response;
    grpc::Status s = fleet->ListNodes(&ctx, v1::ListNodesRequest(), &response);
    if (s.ok()) return fleet;
    if (!verifier.Running() || absl::Now() > deadline) {
      return absl::UnavailableError(
          absl::StrCat("verifier never answered: ", s.error_message(), "\n", Logs()));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::Status Fabric::StartStandbyVerifier() {
  if (standby_ != nullptr) return absl::FailedPreconditionError("the standby runs");
  const std::string db = dir_ + "/standby.db";
  RETURN_IF_ERROR(CopySqliteDatabase(db_path(), db));
  // Its own result-signing keys: two processes must not rotate one key directory.
  std::vector<std::string> argv = {
      Program("verifier/vigil-verifier"), "--listen", standby_address_, "--db", db, "--ear-key-dir",
      dir_ + "/standby-ear-keys"};
  argv.insert(argv.end(), shared_verifier_args_.begin(), shared_verifier_args_.end());
  ASSIGN_OR_RETURN(standby_, ChildProcess::Spawn(argv, dir_ + "/standby-verifier.log"));
  ASSIGN_OR_RETURN(standby_fleet_, AwaitFleet(*standby_, standby_port_.port()));
  return absl::OkStatus();
}

Fabric::~Fabric() {
  node_.reset();
  standby_.reset();
  verifier_.reset();
  naive_.reset();
  hardened_.reset();
  workload_.reset();
  tpm_.reset();
}

absl::Status Fabric::StartNode(const std::vector<std::string>& extra_args) {
  return StartNodeUnder({}, extra_args);
}

absl::Status Fabric::StartNodeUnder(const std::vector<std::string>& wrapper,
                                    const std::vector<std::string>& extra_args) {
  if (node_ != nullptr && node_->Running()) return absl::FailedPreconditionError("node runs");
  std::vector<std::string> argv = wrapper;
  std::vector<std::string> node_argv = {Program("node/vigil-node"),
                                        "run",
                                        "--verifier",
                                        verifier_address_,
                                        "--enroll-address",
                                        enroll_address_,
                                        "--ca-cert",
                                        pki_->dir() + "/ca.crt",
                                        "--state-dir",
                                        state_dir_,
                                        "--tcti",
                                        tpm_->tcti(),
                                        "--measurement-log",
                                        state_dir_ + "/measurements.json",
                                        "--select",
                                        absl::StrCat("comm=", workload_comm_)};
  argv.insert(argv.end(), node_argv.begin(), node_argv.end());
  if (demo_agents_) {
    for (const ChildProcess* agent : {hardened_.get(), naive_.get()}) {
      argv.push_back("--select");
      argv.push_back(absl::StrCat("pid=", agent->pid()));
    }
  }
  argv.insert(argv.end(), node_args_.begin(), node_args_.end());
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> node =
      ChildProcess::Spawn(argv, dir_ + "/node.log");
  if (!node.ok()) return node.status();
  node_ = std::move(*node);
  return absl::OkStatus();
}

absl::StatusOr<int> Fabric::AwaitNodeExit() {
  if (node_ == nullptr) return absl::FailedPreconditionError("no node started");
  for (absl::Time deadline = absl::Now() + absl::Seconds(60); node_->Running();) {
    if (absl::Now() > deadline) return absl::DeadlineExceededError("vigil-node still runs");
    absl::SleepFor(absl::Milliseconds(50));
  }
  int status = node_->Stop();  // already exited: its wait status
  node_.reset();
  return status;
}

absl::Status Fabric::StopNode() {
  if (node_ == nullptr) return absl::FailedPreconditionError("no node started");
  int status = node_->Stop();
  node_.reset();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("vigil-node wait status ", status, "\n", Logs()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Fabric::AwaitVerdict(v1::TrustStatus status,
                                                 int64_t newer_than_unix_nano) {
  return AwaitVerdictOn(*fleet_, status, newer_than_unix_nano);
}

absl::StatusOr<std::string> Fabric::AwaitVerdictOn(v1::Fleet::Stub& fleet, v1::TrustStatus status,
                                                   int64_t newer_than_unix_nano) {
  absl::Time deadline = absl::Now() + kProgressBound;
  std::string last = "no node listed";
  while (absl::Now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::ListNodesResponse response;
    grpc::Status s = fleet.ListNodes(&ctx, v1::ListNodesRequest(), &response);
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("ListNodes: ", s.error_message()));
    for (const v1::NodeSummary& n : response.nodes()) {
      const v1::Verdict& v = n.latest_verdict();
      last = absl::StrCat(n.node_id().substr(0, 12), " ", v1::TrustStatus_Name(v.status()), " ",
                          v.detail());
      if (v.status() == status && v.appraised_unix_nano() > newer_than_unix_nano) {
        return n.node_id();
      }
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no ", v1::TrustStatus_Name(status), " verdict; last: ", last, "\n", Logs()));
}

absl::StatusOr<v1::GetLatestEvidenceResponse> Fabric::LatestEvidence(const std::string& node_id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetLatestEvidenceRequest request;
  request.set_node_id(node_id);
  v1::GetLatestEvidenceResponse response;
  grpc::Status s = fleet_->GetLatestEvidence(&ctx, request, &response);
  if (!s.ok())
    return absl::UnavailableError(absl::StrCat("GetLatestEvidence: ", s.error_message()));
  return response;
}

std::string Fabric::tcti() const { return tpm_->tcti(); }

std::string Fabric::NodeLog() const { return ReadOrEmpty(dir_ + "/node.log"); }

std::string Fabric::VerifierLog() const { return ReadOrEmpty(dir_ + "/verifier.log"); }

std::string Fabric::Logs() const {
  auto tail = [](std::string text) {
    constexpr size_t kMax = 6000;
    return text.size() > kMax ? text.substr(text.size() - kMax) : text;
  };
  return absl::StrCat("--- node log ---\n", tail(ReadOrEmpty(dir_ + "/node.log")),
                      "--- verifier log ---\n", tail(ReadOrEmpty(dir_ + "/verifier.log")));
}

}  // namespace vigil::testing
