#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/selector.h"
#include "node/procfs/snapshotter.h"

namespace vigil::node {

/// Everything vigil-node's `run` needs, filled by main.cc from flags. Libraries take this
/// struct (or the part they need); they never read flags themselves.
struct NodeConfig {
  // --- Verifier connection ---
  /// The verifier's mutual-TLS listener (Attestation service).
  std::string verifier_address = "127.0.0.1:7443";
  /// `run`: further verifiers, tried in turn after verifier_address when a stream to one
  /// fails or ends (round robin; AttestClientOptions::fallback_addresses).
  std::vector<std::string> fallback_verifier_addresses;
  /// HTTP/2 keepalive on the verifier connection: ping every keepalive_time_ms, give up on
  /// the connection after keepalive_timeout_ms without an answer.
  uint32_t keepalive_time_ms = 10000;
  uint32_t keepalive_timeout_ms = 10000;
  /// The verifier's enrollment listener (server-authenticated TLS only).
  std::string enroll_address = "127.0.0.1:7444";
  /// PEM of the Vigil CA that signed the verifier's server certificate.
  std::string ca_cert_path;
  /// The node's client certificate and key. Empty means <state_dir>/node.crt and node.key,
  /// written by enrollment.
  std::string cert_path;
  std::string key_path;
  /// Where the node keeps its AK context, certificate and spool across restarts.
  std::string state_dir = "/var/lib/vigil-node";
  /// Upper bound on any gRPC message in either direction.
  int max_message_bytes = 4 << 20;
  /// Report interval when the verifier's challenge names none (it normally does).
  uint32_t report_interval_ms = 10000;
  /// Shortest gap between two reports triggered by events (reports never come faster).
  uint32_t min_report_gap_ms = 1000;
  /// The spool (docs/node.md, "Spool"): where observations wait while the verifier is
  /// unreachable ("" means <state_dir>/spool), its size bound, and its batch window.
  std::string spool_dir;
  uint64_t spool_max_bytes = 256ull << 20;
  uint32_t spool_batch_ms = 5000;
  /// `run`: host:port of a plain-HTTP listener serving Prometheus metrics at /metrics
  /// (docs/node.md, "Metrics"); empty: off. Port 0 picks one (logged).
  std::string metrics_address;
  /// Renew the node certificate on the Attest stream once less than this fraction of its
  /// lifetime is left (same key; 0 turns renewal off).
  double cert_renew_below_fraction = 1.0 / 3.0;

  // --- TPM ---
  /// tpm2-tss TCTI: "device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321", or "none" to run
  /// without a TPM (the verifier then refuses the evidence as unquoted).
  std::string tcti = "device:/dev/tpmrm0";
  /// The PCR the node extends with its measurements. 16 and 23 are resettable and refused
  /// unless allow_resettable_pcr (tests only).
  uint32_t measurement_pcr = 15;
  bool allow_resettable_pcr = false;
  /// Boot PCRs quoted beside the measurement PCR.
  std::vector<uint32_t> boot_pcrs = {0, 1, 2, 3, 4, 5, 6, 7};
  /// "ecc" (P-256, default) or "rsa" (2048).
  std::string ak_algorithm = "ecc";
  /// TCG Canonical Event Log (JSON) of the node's extends; survives restarts within a boot.
  std::string measurement_log_path = "/run/vigil/measurements.json";

  // --- Observation ---
  std::vector<Selector> selectors;
  /// Open files reported as configuration or secrets; the first matching glob wins.
  std::vector<SensitivePath> sensitive_paths;
  /// Syscalls the seccomp inspector evaluates for every monitored process.
  std::vector<std::string> seccomp_syscalls = {
      "ptrace",      "process_vm_readv", "process_vm_writev", "bpf",
      "init_module", "finit_module",     "unshare",           "setns",
      "mount"};
  /// Policy bundle (YAML) whose digest is measured; empty when none.
  std::string policy_path;
  /// Load the BPF probes (off only for debugging without BPF).
  bool enable_probes = true;
  /// Also attach the syscall entry tracepoints (see ProbeOptions::syscall_entry_hooks).
  bool syscall_entry_hooks = false;
};

}  // namespace vigil::node
