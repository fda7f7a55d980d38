#include "cli/fleet_format.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"

namespace vigil::cli {

std::string StatusName(v1::TrustStatus status) {
  if (status == v1::TRUST_STATUS_UNSPECIFIED) return "UNAPPRAISED";
  const std::string& name = v1::TrustStatus_Name(status);
  if (name.empty()) return absl::StrCat("STATUS_", static_cast<int>(status));
  // "TRUST_AFFIRMING" -> "AFFIRMING".
  return name.substr(name.find('_') + 1);
}

Color StatusColor(v1::TrustStatus status) {
  switch (status) {
    case v1::TRUST_AFFIRMING:
      return Color::kGreen;
    case v1::TRUST_WARNING:
      return Color::kYellow;
    case v1::TRUST_CONTRAINDICATED:
    case v1::TRUST_REJECTED:
      return Color::kRed;
    default:
      return Color::kNone;
  }
}

absl::StatusOr<v1::TrustStatus> ParseStatus(absl::string_view name) {
  std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(name));
  if (upper.rfind("TRUST_", 0) != 0) upper = "TRUST_" + upper;
  v1::TrustStatus status;
  if (upper != "TRUST_STATUS_UNSPECIFIED" && v1::TrustStatus_Parse(upper, &status)) {
    return status;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown status \"", name,
                   "\" (affirming, warning, contraindicated, rejected, unverified, none)"));
}

std::vector<std::string> ReasonNames(const v1::Verdict& verdict) {
  std::vector<std::string> names;
  for (int r : verdict.reasons()) {
    const std::string& name = v1::AppraisalReason_Name(static_cast<v1::AppraisalReason>(r));
    names.push_back(name.empty() ? absl::StrCat("REASON_", r) : name);
  }
  return names;
}

std::string ShortId(const std::string& id) { return id.size() > 12 ? id.substr(0, 12) : id; }

bool IsFailing(const v1::RuleOutcome& rule) {
  switch (rule.status()) {
    case v1::TRUST_WARNING:
    case v1::TRUST_CONTRAINDICATED:
    case v1::TRUST_REJECTED:
    case v1::TRUST_UNVERIFIED:
      return true;
    default:
      return false;
  }
}

std::string FailingRulesSummary(const v1::WorkloadVerdict& workload) {
  std::vector<std::string> parts;
  std::set<std::string> seen;
  for (const v1::RuleOutcome& rule : workload.rules()) {
    // A rule broken by several processes of the workload is listed once.
    if (!IsFailing(rule) || !seen.insert(rule.rule_id()).second) continue;
    parts.push_back(rule.controls().empty()
                        ? rule.rule_id()
                        : absl::StrCat(rule.rule_id(), " [", rule.controls(0), "]"));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

std::string ProtoJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.add_whitespace = pretty;
  std::string json;
  // Printing a well-formed message cannot fail; an error would leave `json` empty.
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) return "{}";
  return json;
}

}  // namespace vigil::cli
