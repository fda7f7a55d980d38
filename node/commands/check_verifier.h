#pragma once

// `vigil-node check --verifier`: the check acts as a one-shot node on this machine and puts
// its report on the verifier's record (docs/check.md, "On record: --verifier").

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/policy/policy.h"
#include "node/agent/config.h"
#include "node/agent/evidence_sealer.h"
#include "node/agent/report_builder.h"
#include "node/agent/state_lock.h"
#include "node/commands/check_report.h"
#include "node/probes/bpf_event_source.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// The SHA-256 (hex) of the bundle of `policy` alone (policy::BuildBundle): one policy's
/// digest, over its YAML document byte for byte.
std::string PolicyDigest(const policy::Policy& policy);

/// How long the exchange with the verifier may take, connection to acknowledgement.
inline constexpr absl::Duration kCheckVerifierTimeout = absl::Seconds(60);

/// The node side of one check put on record: the state directory's lock, the TPM (opened,
/// enrolled when the state directory holds no identity, the start measured as `run` measures
/// it) and one Attest stream that answers one challenge with the check's report.
class CheckAttestation {
 public:
  /// Keeps `lock` (the state directory's, StateDirLock::Acquire) for its life, opens the
  /// TPM, enrolls when the state directory holds no identity and measures node-start and
  /// the binary. An error: the TPM or the enrollment failed.
  static absl::StatusOr<std::unique_ptr<CheckAttestation>> Open(const NodeConfig& config,
                                                                std::unique_ptr<StateDirLock> lock);

  /// The rest of the start sequence once the probes run (MeasureStartSequence): the BPF
  /// object, its program tags and "no policy" (the verifier's bundle is measured when it
  /// comes).
  absl::Status MeasureStart(const BpfEventSource& probes);

  /// Connects to the verifier, applies and measures the policy bundles it sends before its
  /// first challenge (PolicyApplier, on `matcher` and `snapshotter`, `probes`), answers that
  /// challenge with `report` (node fields and the running bundle's digest set here), quoted,
  /// and waits for the acknowledgement. Never fails: the result says how it ended.
  VerifierResult Attest(v1::RuntimeReport report, ProcessMatcher* matcher, Snapshotter* snapshotter,
                        BpfEventSource* probes);

 private:
  CheckAttestation() = default;

  NodeConfig config_;
  std::unique_ptr<StateDirLock> lock_;
  std::unique_ptr<EvidenceSealer> sealer_;
};

}  // namespace vigil::node
