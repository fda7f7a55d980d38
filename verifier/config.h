#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/keepalive.h"
#include "verifier/stream_admission.h"

namespace vigil::verifier {

/// Default cap on enrollment-listener messages. Enrollment messages carry an EK certificate,
/// two TPM public areas, a CSR or an issued certificate chain: a few KiB (see
/// docs/pki-and-tls.md); the cap leaves more than ten times that.
inline constexpr size_t kDefaultEnrollMaxMessageBytes = 64 << 10;

/// Everything vigil-verifier needs, filled by main.cc from flags. Libraries take this struct
/// (or the part they need); they never read flags themselves.
struct VerifierConfig {
  // --- Listeners ---
  /// The mutual-TLS listener (Attestation and every other authenticated service).
  std::string listen_address = "127.0.0.1:7443";
  /// The server-authenticated enrollment listener; empty means none.
  std::string enroll_listen_address;

  // --- PKI ---
  /// PEM of the Vigil CA that client certificates must chain to.
  std::string ca_cert_path;
  /// The verifier's server certificate (chain) and key.
  std::string cert_path;
  std::string key_path;
  /// Client certificates must carry spiffe://<trust_domain>/vigil/{node,client}/...
  std::string trust_domain;
  /// How often the certificate, key and CA files are re-read; a renewed certificate written
  /// to disk is served from the next handshake on, without a restart.
  absl::Duration tls_refresh_interval = absl::Minutes(1);
  /// A `vigilctl pki init` directory: when set, fills the four fields above from
  /// ca.crt, verifier.crt, verifier.key and trust-domain (explicit values win).
  std::string pki_dir;

  // --- Attestation stream ---
  /// How often the verifier asks each node for a report when nothing happens.
  absl::Duration report_interval = absl::Seconds(5);
  /// How long a challenge's nonce stays valid.
  absl::Duration nonce_ttl = absl::Seconds(60);
  /// PCRs the verifier asks nodes to quote: boot PCRs 0-7 and the measurement PCR 15.
  std::vector<uint32_t> pcr_selection = {0, 1, 2, 3, 4, 5, 6, 7, 15};

  // --- Limits and lifecycle ---
  /// Upper bound on any gRPC message in either direction on the mutual-TLS listener.
  size_t max_message_bytes = 4 << 20;
  /// Upper bound on any gRPC message on the enrollment listener (no client certificate).
  size_t enroll_max_message_bytes = kDefaultEnrollMaxMessageBytes;
  /// Enrollments begun and not yet completed: in total, and per EK (docs/enrollment.md).
  size_t max_pending_enrollments = 1024;
  size_t max_pending_enrollments_per_ek = 4;
  /// Threads appraising evidence; 0 means one per core.
  size_t appraisal_threads = 0;
  /// Evidence waiting for an appraisal thread, across all streams; when it is full a stream
  /// with new evidence is ended RESOURCE_EXHAUSTED and its node reconnects later.
  size_t appraisal_queue = 1024;
  /// Attest streams in total and per node, and each node's rate of stream opens, evidence
  /// and renewal requests (docs/verifier.md, "Limits").
  StreamLimits stream_limits;
  /// HTTP/2 keepalive on both listeners: a node whose connection stops answering pings is
  /// disconnected after keepalive.time + keepalive.timeout at most.
  ServerKeepaliveOptions keepalive;
  /// On SIGTERM/SIGINT, how long in-flight calls get to finish before they are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(5);

  // --- Storage and logging ---
  /// SQLite result store; empty keeps results only in logs.
  std::string db_path;
  /// PostgreSQL connection URL shared by replicas (instead of db_path); never logged.
  std::string store_url;
  /// Verdicts and status changes older than this are deleted (zero: kept).
  absl::Duration retention_max_age = absl::ZeroDuration();
  /// Verdicts kept per node (0: no limit). A node's latest verdict is always kept.
  size_t retention_max_verdicts_per_node = 0;
  /// How long the store's writer lets verdict writes gather before one commit takes them.
  absl::Duration commit_window = absl::Milliseconds(3);
  // --- TPM trust: enrollment and quote appraisal ---
  /// PEM bundle of the CAs that sign TPM EK certificates; empty for none.
  std::string ek_ca_bundle_path;
  /// Enroll any EK (trust on first use). Labs and demos only.
  bool ek_tofu = false;
  /// PEM CA of simulated TPMs' EK certificates (vigil-fleetsim); empty: none accepted. Their
  /// nodes' verdicts say tpm_simulated and make no hardware claim. Benchmarks only.
  std::string accept_simulated_tpm_ca_path;
  /// Typed known-good measurement digests (YAML, `vigil-node reference-values --out`); empty:
  /// every measurement is unknown.
  std::string reference_values_path;
  /// Boot PCR (0-7) values per node class (YAML); empty: boot PCRs are not compared and the
  /// boot chain is not affirmed.
  std::string boot_reference_values_path;
  /// Lifetime of node certificates issued at enrollment.
  absl::Duration node_cert_lifetime = absl::Hours(24);
  /// The PCR nodes extend their measurements into.
  uint32_t measurement_pcr = 15;
  /// Accept a resettable measurement PCR (16, 23): tests only.
  bool allow_resettable_pcr = false;
  /// Nodes must report their own security state and meet the built-in rule vigil.node.self.
  bool require_node_self_protection = false;

  // --- Policies and results ---
  /// RuntimePolicy YAML files or directories loaded at start (merged with the stored
  /// policies: see LoadStartupPolicies).
  std::vector<std::string> policy_paths;
  /// Directory of the EAR signing keys (mode 0700); empty: <directory of --db>/ear-keys when
  /// there is a --db, otherwise verdicts are not signed.
  std::string ear_key_dir;
  /// A signing key older than this at start is rotated first.
  absl::Duration ear_key_max_age = absl::Hours(24 * 30);
  /// How long a retired key stays in the JWKS.
  absl::Duration ear_key_grace = absl::Hours(24 * 7);
  /// Webhook URLs that get every status change.
  std::vector<std::string> webhook_urls;
  /// File holding the HMAC-SHA256 key the webhooks are signed with; empty: unsigned.
  std::string webhook_secret_path;
  /// PEM CA bundle https webhook targets must chain to; empty: the system's.
  std::string webhook_ca_path;

  // --- Operations ---
  /// Plain-HTTP listener serving Prometheus metrics at /metrics; empty means none.
  std::string metrics_address;

  // --- Kubernetes admission webhook (docs/admission.md) ---
  /// HTTPS listener serving AdmissionReview v1 at /validate; empty means none.
  std::string admission_listen_address;
  /// Its certificate chain and key (PEM); empty: the verifier's own (--cert/--key).
  std::string admission_cert_path;
  std::string admission_key_path;
  /// When set, callers (the API server) must present a client certificate from this CA.
  std::string admission_client_ca_path;
  /// Results older than this are stale (deny); zero: the Fleet API's default (60 s).
  absl::Duration admission_max_age = absl::ZeroDuration();
  /// The pod label naming an agent pod's Vigil workload.
  std::string admission_workload_label = "vigil.dev/workload";

  // --- Web console (docs/console.md) ---
  /// HTTPS listener serving the read-only web console; empty means none.
  std::string console_listen_address;
  /// Its certificate chain and key (PEM); empty: the verifier's own (--cert/--key).
  std::string console_cert_path;
  std::string console_key_path;
  /// How long a session opened with a sign-in token lasts.
  absl::Duration console_session_lifetime = absl::Hours(8);
  /// Live event streams at once.
  size_t console_max_streams = 16;

  /// spdlog level name: trace, debug, info, warn, error, critical, off.
  std::string log_level = "info";
};

}  // namespace vigil::verifier
