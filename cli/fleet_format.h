#pragma once

// How vigilctl renders the Fleet API's results: status names and colours, failing rules,
// short node ids, and the proto3 JSON every --json output uses.

#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "cli/table.h"
#include "google/protobuf/message.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::cli {

/// "AFFIRMING", "WARNING", "CONTRAINDICATED", "REJECTED", "UNVERIFIED", "NONE" (verified
/// evidence no rule speaks about), or "UNAPPRAISED" (TRUST_STATUS_UNSPECIFIED: no result yet).
std::string StatusName(v1::TrustStatus status);

/// Green for affirming, yellow for warning, red for contraindicated and rejected.
Color StatusColor(v1::TrustStatus status);

/// A status named on the command line: "affirming", "WARNING", "TRUST_REJECTED", ...
absl::StatusOr<v1::TrustStatus> ParseStatus(absl::string_view name);

/// The reasons of a verdict by name ("POLICY_VIOLATION").
std::vector<std::string> ReasonNames(const v1::Verdict& verdict);

/// The first 12 characters of a node id (enough to tell a fleet's nodes apart).
std::string ShortId(const std::string& id);

/// A failing rule outcome (warning, contraindicated, rejected or unverified).
bool IsFailing(const v1::RuleOutcome& rule);

/// The failing rules of a workload, each once, as "rule-id [first-control]" in rule order
/// ("seccomp-denies-ptrace [NIST-800-53r5:AC-6(10)]"); "-" when none fails.
std::string FailingRulesSummary(const v1::WorkloadVerdict& workload);

/// The message as proto3 JSON with the .proto field names (node_id, not nodeId), enum names,
/// and every field printed, zero values included; on one line unless `pretty`.
std::string ProtoJson(const google::protobuf::Message& message, bool pretty);

}  // namespace vigil::cli
