#include "tests/testing/postgres_server.h"

#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <pqxx/pqxx>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tests/testing/program_run.h"

namespace vigil::testing {
namespace {

constexpr char kUser[] = "vigil";
constexpr char kBinDir[] = "/usr/lib/postgresql/15/bin";

// A TCP port on 127.0.0.1 nothing listens on now (PostgreSQL cannot take port 0).
absl::StatusOr<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("bind to port 0 failed");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

PostgresServer* g_shared = nullptr;

void StopShared() {
  if (g_shared == nullptr) return;
  delete g_shared;
  g_shared = nullptr;
}

}  // namespace

absl::StatusOr<PostgresServer*> PostgresServer::Shared() {
  static absl::StatusOr<PostgresServer*>* started = [] {
    auto* result = new absl::StatusOr<PostgresServer*>(absl::UnknownError("not started"));
    std::unique_ptr<PostgresServer> server(new PostgresServer());
    if (absl::Status st = server->Init(); !st.ok()) {
      *result = st;
      return result;
    }
    g_shared = server.release();
    std::atexit(StopShared);
    *result = g_shared;
    return result;
  }();
  return *started;
}

absl::Status PostgresServer::RunAsOwner(const std::vector<std::string>& argv,
                                        const std::string& what) {
  std::vector<std::string> full;
  if (geteuid() == 0) {
    full = {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"};
  }
  full.insert(full.end(), argv.begin(), argv.end());
  const std::string out_dir = dir_ + "/run";
  std::filesystem::create_directories(out_dir);
  ProgramRun run = RunProgram(full, out_dir);
  if (run.exit_code != 0) {
    return absl::InternalError(absl::StrCat(what, " exited ", run.exit_code, ": ", run.err, run.out,
                                            ReadWholeFile(dir_ + "/server.log")));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::Init() {
  bin_ = kBinDir;
  if (!std::filesystem::exists(bin_ + "/initdb")) {
    return absl::FailedPreconditionError(
        absl::StrCat(bin_, "/initdb not found: install postgresql-15 (deploy/setup.sh)"));
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl =
      absl::StrCat(tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp", "/vigil-pg-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  dir_ = tmpl;
  std::fprintf(stderr, "PostgreSQL test server in %s\n", dir_.c_str());
  if (geteuid() == 0) {
    passwd* nobody = getpwnam("nobody");
    if (nobody == nullptr) return absl::FailedPreconditionError("no user nobody");
    if (chown(dir_.c_str(), nobody->pw_uid, nobody->pw_gid) != 0) {
      return absl::InternalError("chown of the server directory failed");
    }
  }
  RETURN_IF_ERROR(RunAsOwner({bin_ + "/initdb", "-D", dir_ + "/data", "-U", kUser, "--auth=trust",
                              "-E", "UTF8", "--no-sync"},
                             "initdb"));
  // A port someone else took between FreePort and the start makes the start fail: try again.
  absl::Status st;
  for (int attempt = 0; attempt < 5; ++attempt) {
    ASSIGN_OR_RETURN(port_, FreePort());
    st = Start();
    if (st.ok()) return st;
  }
  return st;
}

absl::Status PostgresServer::Start() {
  RETURN_IF_ERROR(RunAsOwner(
      {bin_ + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "-t", "60", "-o",
       absl::StrCat("-p ", port_, " -k ", dir_,
                    " -c listen_addresses=127.0.0.1 -c max_connections=200"),
       "start"},
      "pg_ctl start"));
  running_ = true;
  return absl::OkStatus();
}

absl::Status PostgresServer::Stop() {
  RETURN_IF_ERROR(RunAsOwner({bin_ + "/pg_ctl", "-D", dir_ + "/data", "-m", "fast", "-w", "stop"},
                             "pg_ctl stop"));
  running_ = false;
  return absl::OkStatus();
}

PostgresServer::~PostgresServer() {
  if (running_) (void)Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase(const std::string& tag) {
  const std::string name = absl::StrCat(tag, "_", getpid(), "_", ++next_database_);
  RETURN_IF_ERROR(Exec(absl::StrCat("postgresql://", kUser, "@127.0.0.1:", port_, "/postgres"),
                       absl::StrCat("CREATE DATABASE \"", name, "\"")));
  return absl::StrCat("postgresql://", kUser, "@127.0.0.1:", port_, "/", name);
}

absl::Status PostgresServer::Exec(const std::string& url, const std::string& sql) {
  try {
    pqxx::connection c(url);
    pqxx::nontransaction tx(c);
    tx.exec(sql);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(sql, ": ", e.what()));
  }
}

absl::StatusOr<int64_t> PostgresServer::QueryInt(const std::string& url, const std::string& sql) {
  try {
    pqxx::connection c(url);
    pqxx::nontransaction tx(c);
    return tx.exec(sql)[0][0].as<int64_t>();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(sql, ": ", e.what()));
  }
}

}  // namespace vigil::testing
