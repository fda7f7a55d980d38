#pragma once

// `vigilctl audit compare`: what Kubernetes manifests declare against what Vigil nodes
// observed at runtime, per control. The runtime facts are the ProcessSnapshots of each node's
// latest evidence (Fleet GetLatestEvidence), the workloads those of its verdict.

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/audit_pairing.h"
#include "cli/nodes_command.h"
#include "nlohmann/json.hpp"

namespace vigil::cli {

/// How a declared setting and the runtime compare.
enum class Agreement {
  kAgree,
  kDisagree,
  /// The snapshot does not carry the fact (e.g. the filters were not inspected).
  kUnknown,
  /// The manifest declares nothing this check can hold the runtime to.
  kNotDeclared,
};
const char* AgreementName(Agreement a);

/// One control-level comparison of a paired container.
struct ComparisonCheck {
  /// "capabilities", "seccomp", "read-only-root", "no-new-privs", "privileged",
  /// "host-namespaces".
  std::string check;
  /// The rule kind whose controls it evidences (docs/policy.md).
  std::string kind;
  Agreement agreement = Agreement::kNotDeclared;
  std::string declared;
  std::string observed;
  std::string message;
  std::vector<std::string> controls;
};

/// A paired container and its comparisons (none when nothing paired).
struct Comparison {
  Pairing pairing;
  std::vector<ComparisonCheck> checks;
};

/// Compares each pairing, check by check, over every paired process (one disagreeing
/// process makes the check disagree).
std::vector<Comparison> CompareAll(const std::vector<Pairing>& pairings);

/// The node a comparison's processes were reported by, as its latest evidence names it.
struct ObservedNode {
  std::string node_id;
  std::string hostname;
  std::string evidence_sha256;
  std::string policy_digest;
  uint64_t report_sequence = 0;
};

/// OSCAL 1.1 assessment-results of `comparisons`, written by the verifier's OSCAL writer:
/// each paired container is a workload of its node with one rule outcome per check
/// (affirming when spec and runtime agree, contraindicated when they disagree, none when
/// unknown), and each control a finding.
nlohmann::json ComparisonOscal(const std::vector<Comparison>& comparisons,
                               const std::vector<ObservedNode>& nodes, absl::Time now);

struct CompareOptions {
  FleetConnectionOptions connection;
  std::vector<std::string> manifests;
  std::vector<std::string> pairs;
  /// Only this node's evidence ("" for every node the verifier lists).
  std::string node_id;
  bool json = false;
  std::string junit_path;
  std::string oscal_path;
};

/// Fetches the evidence, pairs, compares and reports. Exit 0 when every paired check agrees,
/// 1 when one disagrees or nothing paired (or the verifier refused a call), 2 for usage
/// errors (as `audit manifests`, a bad --pair, unreadable credentials, unwritable outputs).
int RunAuditCompare(const CompareOptions& options, std::ostream& out, std::ostream& err);

}  // namespace vigil::cli
