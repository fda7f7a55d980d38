#pragma once

// OSCAL 1.1 assessment-results for stored verdicts: one result for the time range, with an
// observation per appraised node report and per workload in it, and a finding per control
// the rules evidence. See docs/results.md for the mapping.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// A stored verdict and the host name the node had when it was appraised.
struct StoredVerdict {
  v1::Verdict verdict;
  std::string hostname;
};

struct OscalExportOptions {
  /// The range the verdicts were selected for: since inclusive, until exclusive.
  absl::Time since;
  absl::Time until;
  /// metadata.last-modified.
  absl::Time generated_at;
  std::string title = "Vigil continuous attestation assessment results";
  /// metadata.version: the producing verifier's version.
  std::string version = "1";
  /// import-ap.href: the assessment plan these results answer.
  std::string import_ap_href = "#vigil-assessment-plan";
};

/// A control id as a RuleOutcome names it, split into framework and id.
struct ControlRef {
  /// "NIST-800-53r5", "ISO27001:2022", "ISO27001:2013", "SOC2", or what precedes the last
  /// ':' for other frameworks.
  std::string framework;
  /// As written after the framework: "AC-6(10)", "A.8.2", "CC6.1".
  std::string id;
  /// The OSCAL control-id for NIST SP 800-53 rev5 ids ("ac-6.10"); empty otherwise.
  std::string oscal_control_id;
};

/// Splits "<framework>:<id>" and maps NIST SP 800-53 ids to OSCAL's form: "AC-6(10)" ->
/// "ac-6.10", "SI-4" -> "si-4". Fails for text that is not "<framework>:<id>".
absl::StatusOr<ControlRef> ParseControl(std::string_view control);

/// `t` as an OSCAL datetime (RFC 3339, UTC).
std::string Rfc3339(absl::Time t);

/// Appends a prop {name, ns: Vigil's namespace, value} to the OSCAL props array `props`.
/// Values are trimmed; a blank one is left out (OSCAL forbids it).
void AddProp(nlohmann::json& props, const char* name, std::string value,
             const std::string& prop_class = "");

/// An RFC 4122 version 5 (SHA-1, name-based) UUID of `name` in Vigil's OSCAL namespace.
std::string NameUuid(std::string_view name);

/// The assessment-results document for `verdicts` (those outside [since, until) are left
/// out). The same verdicts and options give the same document, UUIDs included.
nlohmann::json ExportAssessmentResults(const std::vector<StoredVerdict>& verdicts,
                                       const OscalExportOptions& options);

}  // namespace vigil::verifier
