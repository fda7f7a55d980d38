#include "common/spiffe.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace vigil {
namespace {

constexpr std::string_view kScheme = "spiffe://";
constexpr size_t kMaxTrustDomain = 255;
constexpr size_t kMaxName = 64;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

std::string_view SpiffeRoleName(SpiffeRole role) {
  switch (role) {
    case SpiffeRole::kNode:
      return "node";
    case SpiffeRole::kOperator:
      return "operator";
    case SpiffeRole::kAuditor:
      return "auditor";
    case SpiffeRole::kOrchestrator:
      return "orchestrator";
  }
  return "unknown";
}

absl::StatusOr<SpiffeRole> ParseClientRole(std::string_view name) {
  for (SpiffeRole role : {SpiffeRole::kOperator, SpiffeRole::kAuditor, SpiffeRole::kOrchestrator}) {
    if (name == SpiffeRoleName(role)) return role;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown client role \"", std::string(name),
                                                 "\" (operator, auditor or orchestrator)"));
}

absl::Status ValidateTrustDomain(std::string_view td) {
  if (td.empty() || td.size() > kMaxTrustDomain) {
    return absl::InvalidArgumentError("trust domain must be 1 to 255 characters");
  }
  for (char c : td) {
    if (!IsLowerAlnum(c) && c != '.' && c != '-' && c != '_') {
      return absl::InvalidArgumentError(absl::StrCat("trust domain \"", std::string(td),
                                                     "\" may hold only a-z, 0-9, '.', '-', '_'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSpiffeName(std::string_view name) {
  if (name.empty() || name.size() > kMaxName) {
    return absl::InvalidArgumentError("name must be 1 to 64 characters");
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError("name must not be \".\" or \"..\"");
  }
  for (char c : name) {
    bool ok = IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '_';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "name \"", std::string(name), "\" may hold only A-Z, a-z, 0-9, '.', '-', '_'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SpiffeId> ParseSpiffeId(std::string_view uri) {
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return absl::InvalidArgumentError("not a spiffe:// URI");
  }
  std::string_view rest = uri.substr(kScheme.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return absl::InvalidArgumentError("SPIFFE ID has no path");
  }
  SpiffeId id;
  id.trust_domain = std::string(rest.substr(0, slash));
  RETURN_IF_ERROR(ValidateTrustDomain(id.trust_domain));

  // The path is exactly /vigil/<role>/<name>; the character checks on each segment also
  // exclude '?', '#', '%', ':' and '@'.
  std::string_view path = rest.substr(slash + 1);
  std::vector<absl::string_view> segments =
      absl::StrSplit(absl::string_view(path.data(), path.size()), '/');
  if (segments.size() != 3 || segments[0] != "vigil") {
    return absl::InvalidArgumentError("SPIFFE path is not /vigil/<role>/<name>");
  }
  std::string_view role(segments[1].data(), segments[1].size());
  if (role == "node") {
    id.role = SpiffeRole::kNode;
  } else if (role == "client") {
    id.role = SpiffeRole::kOperator;
  } else if (absl::StatusOr<SpiffeRole> client = ParseClientRole(role); client.ok()) {
    id.role = *client;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown Vigil role \"", std::string(role), "\""));
  }
  RETURN_IF_ERROR(ValidateSpiffeName(std::string_view(segments[2].data(), segments[2].size())));
  id.name = std::string(segments[2]);
  return id;
}

absl::StatusOr<std::string> FormatSpiffeId(const SpiffeId& id) {
  RETURN_IF_ERROR(ValidateTrustDomain(id.trust_domain));
  RETURN_IF_ERROR(ValidateSpiffeName(id.name));
  return absl::StrCat(std::string(kScheme), id.trust_domain, "/vigil/",
                      std::string(SpiffeRoleName(id.role)), "/", id.name);
}

}  // namespace vigil
