#include "common/policy/bundle.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest.h"
#include "common/policy/parser.h"

namespace vigil::policy {

absl::StatusOr<v1::PolicyBundle> BuildBundle(const std::vector<Policy>& policies) {
  std::vector<const Policy*> sorted;
  for (const Policy& p : policies) sorted.push_back(&p);
  std::sort(sorted.begin(), sorted.end(),
            [](const Policy* a, const Policy* b) { return a->name < b->name; });
  v1::PolicyBundle bundle;
  std::string content;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0 && sorted[i]->name == sorted[i - 1]->name) {
      return absl::InvalidArgumentError(
          absl::StrCat("two policies are named '", sorted[i]->name, "'"));
    }
    absl::StrAppend(&content, "---\n", sorted[i]->yaml);
    if (!sorted[i]->yaml.empty() && sorted[i]->yaml.back() != '\n') content += '\n';
    bundle.add_policy_ids(sorted[i]->Id());
  }
  bundle.set_sha256(HexEncode(Sha256(content)));
  bundle.set_content(std::move(content));
  return bundle;
}

absl::StatusOr<std::vector<Policy>> ParseBundle(const v1::PolicyBundle& bundle) {
  if (HexEncode(Sha256(bundle.content())) != bundle.sha256()) {
    return absl::InvalidArgumentError("policy bundle: sha256 is not the digest of its content");
  }
  if (bundle.content().empty()) {
    if (bundle.policy_ids_size() != 0) {
      return absl::InvalidArgumentError("policy bundle: empty content names policies");
    }
    return std::vector<Policy>{};
  }
  absl::StatusOr<std::vector<Policy>> policies =
      ParsePoliciesOrError(bundle.content(), "policy bundle");
  if (!policies.ok()) return policies.status();
  std::vector<std::string> ids;
  for (const Policy& p : *policies) ids.push_back(p.Id());
  if (!std::equal(ids.begin(), ids.end(), bundle.policy_ids().begin(), bundle.policy_ids().end())) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy bundle: policy_ids [", absl::StrJoin(bundle.policy_ids(), ", "),
                     "] do not match its content [", absl::StrJoin(ids, ", "), "]"));
  }
  return policies;
}

NodeDirectives DirectivesOf(const std::vector<Policy>& policies) {
  NodeDirectives d;
  std::set<std::string> selectors;
  std::set<std::string> syscalls;
  std::set<std::pair<std::string, std::string>> files;
  for (const Policy& p : policies) {
    for (const Workload& w : p.workloads) {
      for (const Selector& s : w.selectors) {
        if (selectors.insert(s.name).second) d.selectors.push_back(s);
      }
    }
    for (const Rule& r : p.rules) {
      if (r.kind == RuleKind::kSeccomp)
        syscalls.insert(r.seccomp.deny.begin(), r.seccomp.deny.end());
    }
    for (const SensitiveFile& f : p.sensitive_files) {
      if (files.insert({f.glob, f.classification}).second) d.sensitive_files.push_back(f);
    }
  }
  d.seccomp_syscalls.assign(syscalls.begin(), syscalls.end());
  return d;
}

}  // namespace vigil::policy
