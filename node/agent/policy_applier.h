#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "node/agent/measurer.h"
#include "node/agent/report_builder.h"
#include "node/probes/bpf_event_source.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::node {

/// What a policy bundle changes on the node. Not owned; each must outlive the applier.
struct PolicyTargets {
  ProcessMatcher* matcher = nullptr;
  Snapshotter* snapshotter = nullptr;
  ReportBuilder* builder = nullptr;
  /// The kernel-side selection; null when the probes do not run.
  BpfEventSource* probes = nullptr;
  /// Where the bundle's digest is measured; null when the node runs without a TPM.
  Measurer* measurer = nullptr;
};

/// Applies the policy bundles the verifier sends on the Attest stream (docs/node.md,
/// "Policy bundles"). The selectors, seccomp syscalls and sensitive file patterns the
/// targets hold when the applier is made are the node's own (its flags); a bundle's
/// directives (policy::DirectivesOf) are added to them, replacing the previous bundle's.
/// Not thread-safe: the thread that builds reports calls it between reports.
class PolicyApplier {
 public:
  /// `running_sha256`: the hex digest of the bundle the node started with (its --policy
  /// file) or "" for none; the builder reports it until a bundle replaces it.
  PolicyApplier(PolicyTargets targets, std::string running_sha256);

  /// Applies `bundle`. The bundle the node runs already is not applied or measured again
  /// (OK). A bundle whose sha256 is not the digest of its content, or that does not parse,
  /// is refused (INVALID_ARGUMENT) and the node keeps the one it runs, unmeasured.
  /// Otherwise: measures SHA-256(content) as a "policy-bundle" record (PCR extend and log
  /// entry), makes the matcher, probes and snapshotter observe what the bundle names (and
  /// starts monitoring the running processes it newly selects), and reports its digest in
  /// every later RuntimeReport. A failed measurement is returned and nothing is applied.
  absl::Status Apply(const v1::PolicyBundle& bundle);

  /// The hex digest of the bundle the node runs ("" for none).
  const std::string& running_sha256() const { return running_sha256_; }
  uint64_t applied() const { return applied_; }
  uint64_t refused() const { return refused_; }

 private:
  PolicyTargets targets_;
  std::vector<Selector> own_selectors_;
  std::vector<std::string> own_syscalls_;
  std::vector<SensitivePath> own_sensitive_paths_;
  std::string running_sha256_;
  uint64_t applied_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace vigil::node
