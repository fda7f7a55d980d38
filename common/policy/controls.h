#pragma once

// The control frameworks a rule can name, and how they are written in RuleOutcome.controls:
// "NIST-800-53r5:AC-6(10)", "ISO27001:2022:A.8.2" followed by the 2013 number(s) it
// replaces ("ISO27001:2013:A.9.2.3"), "SOC2:CC6.1".

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vigil::policy {

/// Checks a NIST SP 800-53 rev5 control id ("AC-6", "AC-6(10)": one of the twenty
/// families) and returns its RuleOutcome form.
absl::StatusOr<std::string> NistControl(absl::string_view id);

/// Checks an ISO/IEC 27001:2022 Annex A control ("A.5.1" to "A.5.37", "A.6.1" to "A.6.8",
/// "A.7.1" to "A.7.14", "A.8.1" to "A.8.34") and returns its RuleOutcome forms: the 2022
/// number, then each ISO/IEC 27001:2013 Annex A number it replaces (none for controls new
/// in 2022).
absl::StatusOr<std::vector<std::string>> IsoControls(absl::string_view id);

/// Checks a SOC 2 Trust Services Criteria id ("CC6.1", "A1.2", "C1.1", "PI1.3", "P4.1")
/// and returns its RuleOutcome form.
absl::StatusOr<std::string> Soc2Control(absl::string_view id);

}  // namespace vigil::policy
