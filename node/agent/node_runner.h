#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "common/http/http_listener.h"
#include "common/metrics/metrics.h"
#include "node/agent/attest_client.h"
#include "node/agent/config.h"
#include "node/agent/evidence_sealer.h"
#include "node/agent/measurer.h"
#include "node/agent/node_metrics.h"
#include "node/agent/policy_applier.h"
#include "node/agent/report_builder.h"
#include "node/agent/spool_link.h"
#include "node/agent/state_lock.h"
#include "node/probes/event_source.h"
#include "node/procfs/file_hash_cache.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "node/scope/dpkg_db.h"
#include "node/scope/scope_tracker.h"

namespace vigil::node {

/// The node's version string, reported in every RuntimeReport.
inline constexpr char kNodeVersion[] = "vigil-node 0.1.0";

/// The sealer `run` uses: evidence without a quote when config.tcti is "none"; otherwise the
/// TPM sealer, which enrolls the node if needed and measures this start.
absl::StatusOr<std::unique_ptr<EvidenceSealer>> MakeSealer(const NodeConfig& config);

/// The measurements of a start after TpmEvidenceSealer::Open made the first ones (node-start,
/// the binary), in the order the verifier requires: the BPF object and the kernel's tags of
/// its programs when `probes` runs (non-null), then the policy bundle at `policy_path` or,
/// for "", its absence. `vigil-node run` and `vigil-node check --verifier` both start so.
absl::Status MeasureStartSequence(Measurer& measurer, const EventSource* probes,
                                  const std::string& policy_path);

/// The kernel's tags of the loaded programs as the node measures them: "name:tag" pairs,
/// sorted by program name, joined by commas.
std::string ProgramTagsString(const v1::ProbeStatus& status);

/// One known-good measurement: what `vigil-node reference-values` writes and what a
/// verifier's --reference-values file holds. The verifier accepts the digest only for a
/// record of the same event type.
struct ReferenceValue {
  std::string type;  // a measurement-log event type (common/measurement_log.h)
  Sha256Digest digest;
  std::string description;
};

/// The measurements this node binary extends into its PCR on a normal start with `config`,
/// in the order of the start sequence: node-start, the binary, when probes are enabled the
/// BPF object and the kernel's tags of its programs (loading the probes to read them), the
/// policy bundle (or its absence); then the tpm-restart record that opens a new log epoch
/// after a TPM Restart.
absl::StatusOr<std::vector<ReferenceValue>> ComputeReferenceValues(const NodeConfig& config);

/// The verifier's --reference-values file (YAML) for `values`:
/// `reference_values: [{type, digest, description}, ...]`, with a comment header.
std::string RenderReferenceValues(const std::vector<ReferenceValue>& values);

/// The BPF probes, selecting what `config.selectors` select plus `seed_pids` (processes
/// already running). Null when config.enable_probes is false.
absl::StatusOr<std::unique_ptr<EventSource>> MakeEventSource(const NodeConfig& config,
                                                             const std::vector<int>& seed_pids);

/// The node id named by a certificate's SAN URI spiffe://<td>/vigil/node/<node_id>.
absl::StatusOr<std::string> NodeIdFromCertificate(const std::string& cert_path);

/// The spool directory `run` uses: the configured one, or spool/ in the state directory.
std::string EffectiveSpoolDir(const NodeConfig& config);

/// The certificate and key paths `run` uses: the configured ones, or node.crt / node.key in
/// the state directory (where enrollment writes them).
std::string EffectiveCertPath(const NodeConfig& config);
std::string EffectiveKeyPath(const NodeConfig& config);

/// The fields every report of this node carries: this machine's (ReadLocalNodeInfo), the
/// node id of its certificate (EffectiveCertPath), the node version, the digest of
/// config.policy_path (none when empty) and the IMA status of the node binary.
absl::StatusOr<NodeInfo> ReadNodeInfo(const NodeConfig& config);

/// What `run` asks of its privileged process when it runs split (node/privsep).
struct NodeProcessHooks {
  /// Reads other processes' seccomp filters; empty: this process reads them.
  SeccompFilterReader filter_reader;
  /// The node's own security state, put in every report; empty: reports carry none.
  std::function<v1::NodeSelfState()> self_state;
  /// The node's other processes, never monitored (their state is in self_state).
  std::vector<int> own_pids;
};

/// The `vigil-node run` daemon: every object wired from one NodeConfig, in one place.
class NodeRunner {
 public:
  /// Checks the configuration, takes the state directory's lock (StateDirLock) and builds
  /// everything (loads the probes, opens the TPM).
  static absl::StatusOr<std::unique_ptr<NodeRunner>> Create(const NodeConfig& config,
                                                            NodeProcessHooks hooks = {});

  /// Streams reports to the verifier until Stop(); OK after a clean stop.
  absl::Status Run();

  /// Thread-safe: ends the stream cleanly and makes Run() return.
  void Stop();

 private:
  NodeRunner() = default;

  NodeConfig config_;
  /// Counted from the start, served when config.metrics_address is set; declared before
  /// what they count.
  metrics::Registry metrics_registry_;
  NodeMetrics metrics_{&metrics_registry_};
  /// Held for the runner's life (StateDirLock): no check disturbs this node's PCR and log.
  std::unique_ptr<StateDirLock> lock_;
  FileHashCache hashes_;
  std::unique_ptr<ProcessMatcher> matcher_;
  std::unique_ptr<Snapshotter> snapshotter_;
  // Before events_: the probes' consumer thread feeds the tracker until events_ is gone.
  std::unique_ptr<DpkgDatabase> dpkg_;
  std::unique_ptr<ScopeTracker> scope_;
  std::unique_ptr<EventSource> events_;
  std::unique_ptr<EvidenceSealer> sealer_;
  std::unique_ptr<ReportBuilder> builder_;
  std::unique_ptr<PolicyApplier> policies_;
  std::unique_ptr<spool::Spool> spool_;
  std::unique_ptr<SpoolLink> spool_link_;
  std::unique_ptr<AttestClient> client_;
  /// Declared last: stops serving before anything it reads is destroyed.
  std::unique_ptr<HttpListener> metrics_listener_;
};

}  // namespace vigil::node
