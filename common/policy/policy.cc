#include "common/policy/policy.h"

#include "absl/strings/str_cat.h"

namespace vigil::policy {

v1::TrustStatus GradeStatus(Grade grade) {
  switch (grade) {
    case Grade::kWarning:
      return v1::TRUST_WARNING;
    case Grade::kContraindicated:
      return v1::TRUST_CONTRAINDICATED;
    case Grade::kIgnore:
      break;
  }
  return v1::TRUST_AFFIRMING;
}

const char* RuleKindName(RuleKind kind) {
  switch (kind) {
    case RuleKind::kSeccomp:
      return "seccomp";
    case RuleKind::kCapabilities:
      return "capabilities";
    case RuleKind::kNoNewPrivs:
      return "no_new_privs";
    case RuleKind::kReadOnlyRoot:
      return "read_only_root";
    case RuleKind::kUserNamespaces:
      return "user_namespaces";
    case RuleKind::kMemory:
      return "memory";
    case RuleKind::kInterpreters:
      return "interpreters";
    case RuleKind::kEgress:
      return "egress";
    case RuleKind::kListeners:
      return "listeners";
    case RuleKind::kEvents:
      return "events";
    case RuleKind::kScope:
      return "scope";
  }
  return "unknown";
}

std::string Policy::Id() const { return absl::StrCat(name, "@", revision); }

}  // namespace vigil::policy
