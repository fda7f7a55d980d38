#pragma once

// Real Vigil processes for end-to-end tests: a child process handle that always stops and
// reaps its process, and a whole fabric (swtpm, PKI, vigil-verifier, a workload and
// vigil-node) started from the built binaries on free loopback ports.
//
//   auto fabric = Fabric::Start({});            // verifier + workload, no node yet
//   ASSERT_TRUE(fabric.ok()) << fabric.status();
//   ASSERT_TRUE((*fabric)->StartNode().ok());
//   auto node_id = (*fabric)->AwaitVerdict(v1::TRUST_AFFIRMING);

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/reserved_port.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/temp_dir.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil::testing {

/// A child process started with posix_spawn, stdout and stderr appended to a log file.
/// The destructor stops it (SIGTERM, then SIGKILL) and reaps it.
class ChildProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(const std::vector<std::string>& argv,
                                                             const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  /// Whether the process has not exited yet (reaps it if it has).
  bool Running();
  /// SIGTERM, up to 20 s for it to exit, then SIGKILL; returns the wait status (or -1).
  int Stop();

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  int wait_status_ = -1;
};

/// Whether something accepts TCP connections on 127.0.0.1:`port`. Poll this before the
/// first gRPC call: a channel that found the port closed backs off for seconds.
bool AcceptsConnections(int port);

/// A name only this run uses: `prefix` (at most 7 bytes) and 8 random digits, short enough
/// to be a process's whole comm.
std::string UniqueComm(const std::string& prefix);

/// Copies the program `from` to `to`, executable by its owner only: processes run from the
/// copy have its file name as their comm, so a selector can pick them out.
absl::Status CopyProgram(const std::string& from, const std::string& to);

/// Runs `argv` to completion, returns its stdout; an error if it exits non-zero.
absl::StatusOr<std::string> RunForOutput(const std::vector<std::string>& argv);

/// swtpm + PKI + vigil-verifier (QuoteAppraiser, SQLite store) + a workload process with a
/// distinctive comm; vigil-node started and stopped on demand. Everything is stopped in
/// the destructor; the directory with the logs is a TestTempDir, kept when the test failed.
class Fabric {
 public:
  struct Options {
    /// Leave the vigil-node binary's digest out of the verifier's reference values.
    bool omit_node_binary_reference = false;
    /// Extra vigil-verifier flags, e.g. {"--policy", path}.
    std::vector<std::string> verifier_args;
    /// Also start the demo agents (deploy/demo), which the node then selects too.
    bool demo_agents = false;
    /// Extra `vigil-node run` flags, e.g. {"--select", "comm=other"}.
    std::vector<std::string> node_args;
    /// A policy bundle file the node runs with (`--policy`): its digest is in the reports,
    /// measured, and published among the node's reference values.
    std::string node_policy;
  };
  static absl::StatusOr<std::unique_ptr<Fabric>> Start(Options options);
  ~Fabric();

  /// Starts `vigil-node run` against the verifier, selecting the workload by comm, with
  /// `extra_args` after Options::node_args.
  absl::Status StartNode(const std::vector<std::string>& extra_args = {});
  /// StartNode under `wrapper`: a command line that ends by running the rest, e.g. setpriv(1).
  absl::Status StartNodeUnder(const std::vector<std::string>& wrapper,
                              const std::vector<std::string>& extra_args = {});
  /// Waits (up to 60 s) for the node to exit by itself; its wait status, or an error when it
  /// still runs.
  absl::StatusOr<int> AwaitNodeExit();
  /// SIGTERM to the node; an error unless it exits 0.
  absl::Status StopNode();

  /// SIGTERM to the verifier (an outage); an error unless it exits 0.
  absl::Status StopVerifier();
  /// Starts the verifier again with the same flags, database and port, and waits until its
  /// Fleet API answers.
  absl::Status StartVerifier();

  /// Polls the Fleet API (up to 60 s) until a node's latest verdict has `status`; returns
  /// that node's id. The error names the last verdict seen.
  absl::StatusOr<std::string> AwaitVerdict(v1::TrustStatus status,
                                           int64_t newer_than_unix_nano = 0);
  /// The same against another verifier's Fleet API (e.g. standby_fleet()).
  absl::StatusOr<std::string> AwaitVerdictOn(v1::Fleet::Stub& fleet, v1::TrustStatus status,
                                             int64_t newer_than_unix_nano = 0);

  /// A second vigil-verifier with the same PKI, reference values and flags on its own port
  /// (standby_address(), reserved from Start on) and on a consistent copy of the first one's
  /// --db taken now, so the nodes enrolled so far are enrolled there too. Returns once its
  /// Fleet API answers.
  absl::Status StartStandbyVerifier();
  const std::string& standby_address() const { return standby_address_; }
  /// A Fleet client of the standby verifier (after StartStandbyVerifier).
  v1::Fleet::Stub& standby_fleet() { return *standby_fleet_; }
  /// The first verifier's pid, e.g. to SIGKILL it.
  pid_t verifier_pid() const { return verifier_ ? verifier_->pid() : 0; }
  /// Fleet GetLatestEvidence for `node_id`.
  absl::StatusOr<v1::GetLatestEvidenceResponse> LatestEvidence(const std::string& node_id);

  const TestPki& pki() const { return *pki_; }
  const std::string& verifier_address() const { return verifier_address_; }
  /// The verifier's enrollment listener, and the swtpm's TCTI, as `vigil-node run` takes them.
  const std::string& enroll_address() const { return enroll_address_; }
  std::string tcti() const;
  /// The running `vigil-node run`'s pid (0 when none was started).
  pid_t node_pid() const { return node_ ? node_->pid() : 0; }
  /// The node's state directory (node.crt, node.key, measurements.json).
  const std::string& state_dir() const { return state_dir_; }
  /// The verifier's --db file.
  std::string db_path() const { return dir_ + "/db"; }
  const std::string& workload_comm() const { return workload_comm_; }
  pid_t workload_pid() const { return workload_->pid(); }
  /// The demo agents' pids (0 unless Options::demo_agents).
  pid_t hardened_agent_pid() const { return hardened_ ? hardened_->pid() : 0; }
  pid_t naive_agent_pid() const { return naive_ ? naive_->pid() : 0; }
  /// A Fleet client with the fixture's operator certificate.
  v1::Fleet::Stub& fleet() { return *fleet_; }
  /// The node's whole log so far.
  std::string NodeLog() const;
  /// The verifier's whole log so far (every run of it).
  std::string VerifierLog() const;
  /// Text of the node's and the verifier's logs, for failure messages.
  std::string Logs() const;

 private:
  Fabric() = default;
  // Waits until `verifier` listens on `port` and its Fleet API answers; a Fleet client.
  absl::StatusOr<std::unique_ptr<v1::Fleet::Stub>> AwaitFleet(ChildProcess& verifier, int port);

  std::unique_ptr<SwtpmFixture> tpm_;
  std::unique_ptr<TestPki> pki_;
  TestTempDir tmp_;
  std::string dir_;
  std::string state_dir_;
  ReservedPort verifier_port_;
  ReservedPort enroll_port_;
  std::string verifier_address_;
  std::string enroll_address_;
  std::string workload_comm_;
  std::unique_ptr<ChildProcess> workload_;
  std::unique_ptr<ChildProcess> hardened_;
  std::unique_ptr<ChildProcess> naive_;
  bool demo_agents_ = false;
  std::vector<std::string> node_args_;
  std::vector<std::string> verifier_argv_;
  std::unique_ptr<ChildProcess> verifier_;
  std::unique_ptr<ChildProcess> node_;
  std::unique_ptr<v1::Fleet::Stub> fleet_;
  // `vigil-verifier` flags both verifiers share (PKI, reference values, test's extras).
  std::vector<std::string> shared_verifier_args_;
  ReservedPort standby_port_;
  std::string standby_address_;
  std::unique_ptr<ChildProcess> standby_;
  std::unique_ptr<v1::Fleet::Stub> standby_fleet_;
};

}  // namespace vigil::testing
