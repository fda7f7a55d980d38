#include "common/policy/controls.h"

#include <map>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace vigil::policy {
namespace {

constexpr const char* kNistFamilies[] = {"AC", "AT", "AU", "CA", "CM", "CP", "IA",
                                         "IR", "MA", "MP", "PE", "PL", "PM", "PS",
                                         "PT", "RA", "SA", "SC", "SI", "SR"};

// ISO/IEC 27001:2022 Annex A controls and the 2013 Annex A controls each one replaces
// (ISO/IEC 27002:2022 Annex B); "" for controls new in 2022.
const std::map<std::string, std::string>& IsoTable() {
  static const auto* table = new std::map<std::string, std::string>{
      {"A.5.1", "A.5.1.1 A.5.1.2"},
      {"A.5.2", "A.6.1.1"},
      {"A.5.3", "A.6.1.2"},
      {"A.5.4", "A.7.2.1"},
      {"A.5.5", "A.6.1.3"},
      {"A.5.6", "A.6.1.4"},
      {"A.5.7", ""},
      {"A.5.8", "A.6.1.5 A.14.1.1"},
      {"A.5.9", "A.8.1.1 A.8.1.2"},
      {"A.5.10", "A.8.1.3 A.8.2.3"},
      {"A.5.11", "A.8.1.4"},
      {"A.5.12", "A.8.2.1"},
      {"A.5.13", "A.8.2.2"},
      {"A.5.14", "A.13.2.1 A.13.2.2 A.13.2.3"},
      {"A.5.15", "A.9.1.1 A.9.1.2"},
      {"A.5.16", "A.9.2.1"},
      {"A.5.17", "A.9.2.4 A.9.3.1 A.9.4.3"},
      {"A.5.18", "A.9.2.2 A.9.2.5 A.9.2.6"},
      {"A.5.19", "A.15.1.1"},
      {"A.5.20", "A.15.1.2"},
      {"A.5.21", "A.15.1.3"},
      {"A.5.22", "A.15.2.1 A.15.2.2"},
      {"A.5.23", ""},
      {"A.5.24", "A.16.1.1"},
      {"A.5.25", "A.16.1.4"},
      {"A.5.26", "A.16.1.5"},
      {"A.5.27", "A.16.1.6"},
      {"A.5.28", "A.16.1.7"},
      {"A.5.29", "A.17.1.1 A.17.1.2 A.17.1.3"},
      {"A.5.30", ""},
      {"A.5.31", "A.18.1.1 A.18.1.5"},
      {"A.5.32", "A.18.1.2"},
      {"A.5.33", "A.18.1.3"},
      {"A.5.34", "A.18.1.4"},
      {"A.5.35", "A.18.2.1"},
      {"A.5.36", "A.18.2.2 A.18.2.3"},
      {"A.5.37", "A.12.1.1"},
      {"A.6.1", "A.7.1.1"},
      {"A.6.2", "A.7.1.2"},
      {"A.6.3", "A.7.2.2"},
      {"A.6.4", "A.7.2.3"},
      {"A.6.5", "A.7.3.1"},
      {"A.6.6", "A.13.2.4"},
      {"A.6.7", "A.6.2.2"},
      {"A.6.8", "A.16.1.2 A.16.1.3"},
      {"A.7.1", "A.11.1.1"},
      {"A.7.2", "A.11.1.2 A.11.1.6"},
      {"A.7.3", "A.11.1.3"},
      {"A.7.4", ""},
      {"A.7.5", "A.11.1.4"},
      {"A.7.6", "A.11.1.5"},
      {"A.7.7", "A.11.2.9"},
      {"A.7.8", "A.11.2.1"},
      {"A.7.9", "A.11.2.6"},
      {"A.7.10", "A.8.3.1 A.8.3.2 A.8.3.3 A.11.2.5"},
      {"A.7.11", "A.11.2.2"},
      {"A.7.12", "A.11.2.3"},
      {"A.7.13", "A.11.2.4"},
      {"A.7.14", "A.11.2.7"},
      {"A.8.1", "A.6.2.1 A.11.2.8"},
      {"A.8.2", "A.9.2.3"},
      {"A.8.3", "A.9.4.1"},
      {"A.8.4", "A.9.4.5"},
      {"A.8.5", "A.9.4.2"},
      {"A.8.6", "A.12.1.3"},
      {"A.8.7", "A.12.2.1"},
      {"A.8.8", "A.12.6.1 A.18.2.3"},
      {"A.8.9", ""},
      {"A.8.10", ""},
      {"A.8.11", ""},
      {"A.8.12", ""},
      {"A.8.13", "A.12.3.1"},
      {"A.8.14", "A.17.2.1"},
      {"A.8.15", "A.12.4.1 A.12.4.2 A.12.4.3"},
      {"A.8.16", ""},
      {"A.8.17", "A.12.4.4"},
      {"A.8.18", "A.9.4.4"},
      {"A.8.19", "A.12.5.1 A.12.6.2"},
      {"A.8.20", "A.13.1.1"},
      {"A.8.21", "A.13.1.2"},
      {"A.8.22", "A.13.1.3"},
      {"A.8.23", ""},
      {"A.8.24", "A.10.1.1 A.10.1.2"},
      {"A.8.25", "A.14.2.1"},
      {"A.8.26", "A.14.1.2 A.14.1.3"},
      {"A.8.27", "A.14.2.5"},
      {"A.8.28", ""},
      {"A.8.29", "A.14.2.8 A.14.2.9"},
      {"A.8.30", "A.14.2.7"},
      {"A.8.31", "A.12.1.4 A.14.2.6"},
      {"A.8.32", "A.12.1.2 A.14.2.2 A.14.2.3 A.14.2.4"},
      {"A.8.33", "A.14.3.1"},
      {"A.8.34", "A.12.7.1"},
  };
  return *table;
}

}  // namespace

absl::StatusOr<std::string> NistControl(absl::string_view id) {
  static const std::regex kForm("([A-Z]{2})-([1-9][0-9]?)(\\(([1-9][0-9]?)\\))?");
  const std::string s(id);
  std::smatch m;
  bool known_family = false;
  if (std::regex_match(s, m, kForm)) {
    for (const char* family : kNistFamilies) known_family = known_family || m[1] == family;
  }
  if (!known_family) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", id,
        "' is not a NIST SP 800-53 rev5 control (FAMILY-N or FAMILY-N(M), e.g. AC-6(10))"));
  }
  return absl::StrCat("NIST-800-53r5:", s);
}

absl::StatusOr<std::vector<std::string>> IsoControls(absl::string_view id) {
  auto it = IsoTable().find(std::string(id));
  if (it == IsoTable().end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", id, "' is not an ISO/IEC 27001:2022 Annex A control (A.5.1 to A.8.34, e.g. A.8.2)"));
  }
  std::vector<std::string> out = {absl::StrCat("ISO27001:2022:", it->first)};
  for (absl::string_view old : absl::StrSplit(it->second, ' ', absl::SkipEmpty())) {
    out.push_back(absl::StrCat("ISO27001:2013:", old));
  }
  return out;
}

absl::StatusOr<std::string> Soc2Control(absl::string_view id) {
  // CC1-CC9 (common criteria), A1 availability, C1 confidentiality, PI1 processing
  // integrity, P1-P8 privacy.
  static const std::regex kForm("(CC[1-9]|A1|C1|PI1|P[1-8])\\.[1-9]");
  const std::string s(id);
  if (!std::regex_match(s, kForm)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", id, "' is not a SOC 2 Trust Services Criteria id (e.g. CC6.1, CC7.2, A1.2)"));
  }
  return absl::StrCat("SOC2:", s);
}

}  // namespace vigil::policy
