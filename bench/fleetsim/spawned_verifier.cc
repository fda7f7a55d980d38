#include "bench/fleetsim/spawned_verifier.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/fleetsim/workloads.h"
#include "common/status_macros.h"

namespace vigil::fleetsim {
namespace {

constexpr char kTrustDomain[] = "fleetsim.test";

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats(pid_t pid) {
  ProcessStats out;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return absl::NotFoundError(absl::StrCat("no process ", pid));
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const size_t close_paren = line.rfind(')');
  if (close_paren == std::string::npos) return absl::InternalError("unreadable /proc stat");
  std::vector<std::string> fields = absl::StrSplit(line.substr(close_paren + 2), ' ');
  // utime and stime are fields 14 and 15 of stat(5); here indices 11 and 12.
  if (fields.size() < 13) return absl::InternalError("short /proc stat");
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  out.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  while (std::getline(status, line)) {
    uint64_t kib = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %lu kB", &kib) == 1) out.rss_bytes = kib * 1024;
    if (std::sscanf(line.c_str(), "VmHWM: %lu kB", &kib) == 1) out.peak_rss_bytes = kib * 1024;
  }
  return out;
}

uint64_t RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

absl::StatusOr<CaMaterial> WriteSimulationFiles(const std::string& dir) {
  const std::string cert_path = dir + "/sim-ek-ca.crt";
  const std::string key_path = dir + "/sim-ek-ca.key";
  CaMaterial ca;
  absl::StatusOr<std::string> cert_pem = ReadFileToString(cert_path);
  absl::StatusOr<std::string> key_pem = ReadFileToString(key_path);
  if (cert_pem.ok() && key_pem.ok()) {
    ASSIGN_OR_RETURN(ca.cert, CertificateFromPem(*cert_pem));
    ASSIGN_OR_RETURN(ca.key, PrivateKeyFromPem(*key_pem));
    ca.cert_pem = *cert_pem;
  } else {
    ASSIGN_OR_RETURN(ca, CreateCa("simulated-tpm.fleetsim.test", absl::Hours(24 * 365)));
    ASSIGN_OR_RETURN(std::string key, PrivateKeyToPem(ca.key.get()));
    RETURN_IF_ERROR(WritePrivateFile(key_path, key, /*overwrite=*/true));
    RETURN_IF_ERROR(WritePublicFile(cert_path, ca.cert_pem, /*overwrite=*/true));
  }
  RETURN_IF_ERROR(
      WritePublicFile(dir + "/reference-values.yaml", ReferenceValuesYaml(), /*overwrite=*/true));
  RETURN_IF_ERROR(WritePublicFile(dir + "/policy.yaml", PolicyYaml(), /*overwrite=*/true));
  return ca;
}

absl::StatusOr<std::unique_ptr<SpawnedVerifier>> SpawnedVerifier::Start(const Options& options) {
  std::unique_ptr<SpawnedVerifier> v(new SpawnedVerifier());
  v->keep_dir_ = options.keep_dir;
  char tmpl[] = "/tmp/vigil-fleetsim-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  v->dir_ = tmpl;
  const std::string pki = v->dir_ + "/pki";
  std::filesystem::create_directory(pki);
  ASSIGN_OR_RETURN(CaMaterial ca, CreateCa(kTrustDomain, absl::Hours(48)));
  ASSIGN_OR_RETURN(std::string ca_key, PrivateKeyToPem(ca.key.get()));
  ASSIGN_OR_RETURN(CertAndKey server,
                   IssueServerCertificate(ca, "vigil-verifier", {"127.0.0.1", "localhost"},
                                          Validity::FromNow(absl::Hours(24))));
  ASSIGN_OR_RETURN(v->operator_,
                   IssueClientCertificate(
                       ca, absl::StrCat("spiffe://", kTrustDomain, "/vigil/operator/fleetsim"),
                       Validity::FromNow(absl::Hours(24))));
  RETURN_IF_ERROR(WritePublicFile(pki + "/ca.crt", ca.cert_pem, false));
  RETURN_IF_ERROR(WritePrivateFile(pki + "/ca.key", ca_key, false));
  RETURN_IF_ERROR(WritePublicFile(pki + "/verifier.crt", server.cert_pem + ca.cert_pem, false));
  RETURN_IF_ERROR(WritePrivateFile(pki + "/verifier.key", server.key_pem, false));
  RETURN_IF_ERROR(WritePublicFile(pki + "/trust-domain", kTrustDomain, false));
  v->ca_pem_ = ca.cert_pem;
  ASSIGN_OR_RETURN(v->ek_ca_, WriteSimulationFiles(v->dir_));
  ASSIGN_OR_RETURN(v->attest_port_, testing::ReservedPort::Create());
  ASSIGN_OR_RETURN(v->enroll_port_, testing::ReservedPort::Create());

  std::vector<std::string> args = {options.binary,
                                   "--pki-dir",
                                   pki,
                                   "--listen",
                                   v->attest_address(),
                                   "--enroll-listen",
                                   v->enroll_address(),
                                   "--db",
                                   v->dir_ + "/verifier.db",
                                   "--accept-simulated-tpm",
                                   v->dir_ + "/sim-ek-ca.crt",
                                   "--reference-values",
                                   v->dir_ + "/reference-values.yaml",
                                   "--policy",
                                   v->dir_ + "/policy.yaml",
                                   "--report-interval",
                                   options.report_interval,
                                   "--log-level",
                                   options.log_level};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log_path = v->dir_ + "/verifier.log";
  const pid_t simulator = getpid();
  v->pid_ = fork();
  if (v->pid_ < 0) return absl::InternalError("fork failed");
  if (v->pid_ == 0) {
    // The verifier ends with the simulator even when the simulator is killed (Ctrl-C, a
    // timeout): left running, it would take the cores the next run measures.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != simulator) _exit(127);
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    if (null >= 0) dup2(null, 0);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!Accepts(v->attest_port_.port()) || !Accepts(v->enroll_port_.port())) {
    if (!v->Running()) {
      std::ifstream log(log_path);
      std::stringstream text;
      text << log.rdbuf();
      return absl::InternalError(
          absl::StrCat("vigil-verifier exited at start; its log:\n", text.str()));
    }
    if (absl::Now() > deadline) return absl::DeadlineExceededError("vigil-verifier did not start");
    absl::SleepFor(absl::Milliseconds(50));
  }
  return v;
}

bool SpawnedVerifier::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

SpawnedVerifier::~SpawnedVerifier() {
  if (Running()) {
    kill(pid_, SIGTERM);
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
    if (Running()) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  if (!dir_.empty() && !keep_dir_) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

}  // namespace vigil::fleetsim
