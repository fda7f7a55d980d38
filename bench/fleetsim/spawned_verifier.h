#pragma once

// A real vigil-verifier for one benchmark run: a temporary directory with a fresh PKI (the
// Vigil CA, the verifier's certificate, an operator certificate for the Fleet API), the
// simulated-TPM EK CA, the reference values of the simulated nodes' start sequence, their
// policy and a SQLite store; the verifier started on reserved loopback ports with
// --accept-simulated-tpm. Also reads a process's CPU time and memory from /proc.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/pki.h"
#include "tests/testing/reserved_port.h"

namespace vigil::fleetsim {

/// CPU time and memory of a process, from /proc/<pid>/stat and /proc/<pid>/status.
struct ProcessStats {
  double cpu_seconds = 0;
  uint64_t rss_bytes = 0;
  uint64_t peak_rss_bytes = 0;
};
absl::StatusOr<ProcessStats> ReadProcessStats(pid_t pid);

/// Raises this process's RLIMIT_NOFILE soft limit to its hard limit (children inherit it);
/// returns the new soft limit.
uint64_t RaiseFileLimit();

/// The simulated-TPM EK CA and the files a verifier needs to accept the simulated nodes,
/// written to `dir`: sim-ek-ca.crt (and .key), reference-values.yaml, policy.yaml. An
/// existing sim-ek-ca.crt/.key pair is loaded instead of replaced.
absl::StatusOr<CaMaterial> WriteSimulationFiles(const std::string& dir);

class SpawnedVerifier {
 public:
  struct Options {
    std::string binary;
    /// Sent in every Challenge (--report-interval).
    std::string report_interval = "5s";
    /// --log-level: warn by default (at info the verifier logs a line per accepted report).
    std::string log_level = "warn";
    /// Further flags for the verifier (e.g. --max-streams).
    std::vector<std::string> extra_args;
    /// Keep the temporary directory (its path is printed).
    bool keep_dir = false;
  };

  static absl::StatusOr<std::unique_ptr<SpawnedVerifier>> Start(const Options& options);
  /// Stops the verifier (SIGTERM, then SIGKILL) and removes the directory.
  ~SpawnedVerifier();

  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  std::string attest_address() const { return attest_port_.address(); }
  std::string enroll_address() const { return enroll_port_.address(); }
  const std::string& ca_pem() const { return ca_pem_; }
  const CaMaterial& ek_ca() const { return ek_ca_; }
  /// An operator certificate and key for the Fleet API.
  const CertAndKey& operator_identity() const { return operator_; }
  /// Whether the verifier is still running.
  bool Running();

 private:
  SpawnedVerifier() = default;

  std::string dir_;
  bool keep_dir_ = false;
  pid_t pid_ = -1;
  testing::ReservedPort attest_port_;
  testing::ReservedPort enroll_port_;
  std::string ca_pem_;
  CaMaterial ek_ca_;
  CertAndKey operator_;
};

}  // namespace vigil::fleetsim
