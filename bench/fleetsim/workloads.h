#pragma once

// What the simulated nodes run and measure: a small mix of realistic workloads (some meeting
// the fleet's policy, some not), the policy itself, and the start sequence a vigil-node
// measures, with the reference values a verifier needs to accept it.

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/v1/runtime.pb.h"

namespace vigil::fleetsim {

/// What a vigil-node measures as its policy record when it has no policy bundle (the digest
/// is SHA-256 of this text; node/agent/measurer.cc).
inline constexpr char kNoPolicyDigestInput[] = "vigil: no policy bundle";

/// One measurement of the start sequence.
struct StartMeasurement {
  std::string event_type;
  std::string content;
  std::string digest;  // 32 bytes
};

/// node-start, vigil-node-binary, bpf-object, bpf-program-tags: what a vigil-node measures
/// before its policy record, with the simulator's fixed digests.
const std::vector<StartMeasurement>& StartSequence();

/// The reference values (YAML, the verifier's --reference-values) of StartSequence and of
/// the no-policy-bundle record.
std::string ReferenceValuesYaml();

/// The fleet's RuntimePolicy (YAML, the verifier's --policy): every process under
/// /opt/fleetsim/ must hold no administrative capability, run with no_new_privs (warning)
/// and never ptrace another process.
std::string PolicyYaml();

/// The report templates, built once and shared by every node.
class WorkloadMix {
 public:
  /// `noncompliant_percent` of the nodes (0-100) run a workload that breaks the policy.
  explicit WorkloadMix(uint32_t noncompliant_percent);

  /// Whether node `index` runs a compliant workload.
  bool Compliant(size_t index) const;

  /// The serialized RuntimeReport of node `index`'s report number `sequence`: its template
  /// with the node's identity, the sequence, the time, `policy_digest` and `events` benign
  /// runtime events (process starts, connects, mmaps).
  std::string Report(size_t index, const std::string& node_id, uint64_t sequence,
                     const std::string& policy_digest, uint32_t events) const;
  /// A detection sentinel's report: a compliant workload's, or, when `violating`, the
  /// debugging agent's that carries a succeeded ptrace of its neighbour (contraindicated).
  std::string SentinelReport(size_t index, bool violating, const std::string& node_id,
                             uint64_t sequence, const std::string& policy_digest,
                             uint32_t events) const;

 private:
  const v1::RuntimeReport& TemplateOf(size_t index) const;
  std::string Render(const v1::RuntimeReport& tmpl, size_t index, const std::string& node_id,
                     uint64_t sequence, const std::string& policy_digest, uint32_t events) const;

  uint32_t noncompliant_percent_;
  std::vector<v1::RuntimeReport> compliant_;
  std::vector<v1::RuntimeReport> noncompliant_;
  v1::RuntimeReport debugger_;
};

}  // namespace vigil::fleetsim
