#include "cli/audit_pairing.h"

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/policy/engine.h"

namespace vigil::cli {
namespace {

bool IsContainerId(absl::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == absl::string_view::npos;
}

// The pod UID in a pod cgroup component ("kubepods-burstable-pod<uid>.slice", "pod<uid>"),
// or "".
std::string PodUid(absl::string_view component) {
  absl::ConsumeSuffix(&component, ".slice");
  size_t at = component.rfind("-pod");
  if (at != absl::string_view::npos) {
    component.remove_prefix(at + 4);
  } else if (!absl::ConsumePrefix(&component, "pod")) {
    return "";
  }
  if (component.size() != 36 && component.size() != 32) return "";
  if (component.find_first_not_of("0123456789abcdef-_") != absl::string_view::npos) return "";
  return absl::StrReplaceAll(component, {{"_", "-"}});
}

}  // namespace

std::optional<KubepodsCgroup> ParseKubepodsCgroup(absl::string_view path) {
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  auto kubepods = std::find_if(parts.begin(), parts.end(), [](absl::string_view c) {
    return absl::StartsWith(c, "kubepods") || absl::StartsWith(c, "kubelet-kubepods");
  });
  if (kubepods == parts.end()) return std::nullopt;
  KubepodsCgroup out;
  out.qos = "guaranteed";
  for (auto it = kubepods; it != parts.end(); ++it) {
    absl::string_view c = *it;
    if (out.pod_uid.empty()) {
      if (absl::StrContains(c, "burstable")) out.qos = "burstable";
      if (absl::StrContains(c, "besteffort")) out.qos = "besteffort";
      out.pod_uid = PodUid(c);
      continue;
    }
    // The first component below the pod's is the container's.
    absl::ConsumeSuffix(&c, ".scope");
    if (absl::StartsWith(c, "crio-conmon-")) return std::nullopt;  // CRI-O's monitor
    if (absl::ConsumePrefix(&c, "cri-containerd-")) {
      out.runtime = "containerd";
    } else if (absl::ConsumePrefix(&c, "crio-")) {
      out.runtime = "crio";
    } else if (absl::ConsumePrefix(&c, "docker-")) {
      out.runtime = "docker";
    }
    if (IsContainerId(c)) out.container_id = std::string(c);
    break;
  }
  if (out.pod_uid.empty()) return std::nullopt;
  return out;
}

absl::StatusOr<PairRule> ParsePairRule(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--pair ", text, ": expected [NAMESPACE/]NAME/CONTAINER=SELECTOR"));
  }
  std::vector<std::string> names = absl::StrSplit(text.substr(0, eq), '/');
  PairRule rule;
  rule.text = text;
  if (names.size() == 3) {
    rule.namespace_name = names[0];
    names.erase(names.begin());
  }
  if (names.size() != 2 || names[0].empty() || names[1].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--pair ", text, ": expected [NAMESPACE/]NAME/CONTAINER=SELECTOR"));
  }
  rule.name = names[0];
  rule.container = names[1];
  absl::StatusOr<Selector> selector = ParseSelector(text.substr(eq + 1));
  if (!selector.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--pair ", text, ": ", selector.status().message()));
  }
  rule.selector = *std::move(selector);
  return rule;
}

std::vector<Pairing> PairContainers(const ManifestSet& manifests,
                                    const std::vector<ObservedProcess>& observed,
                                    const std::vector<PairRule>& rules) {
  // Containers declared per exported pod, to pair by pod UID only when it is unambiguous.
  std::map<std::string, int> containers_per_pod;
  for (const DeclaredContainer& c : manifests.containers) {
    if (!c.pod_uid.empty()) ++containers_per_pod[c.pod_uid];
  }
  std::vector<std::optional<KubepodsCgroup>> cgroups;
  for (const ObservedProcess& p : observed)
    cgroups.push_back(ParseKubepodsCgroup(p.snapshot.cgroup()));

  std::vector<Pairing> out;
  for (const DeclaredContainer& c : manifests.containers) {
    Pairing pairing;
    pairing.declared = &c;
    const PairRule* rule = nullptr;
    for (const PairRule& r : rules) {
      if (r.name == c.name && r.container == c.container &&
          (r.namespace_name.empty() || r.namespace_name == c.namespace_name)) {
        rule = &r;
        break;
      }
    }
    for (size_t i = 0; i < observed.size(); ++i) {
      const v1::ProcessSnapshot& s = observed[i].snapshot;
      const std::string container_id =
          !s.container_id().empty() ? s.container_id()
                                    : (cgroups[i].has_value() ? cgroups[i]->container_id : "");
      bool match = false;
      if (rule != nullptr) {
        match = policy::SelectorMatchesSnapshot(rule->selector, s);
        pairing.paired_by = "--pair " + rule->text;
      } else if (!c.container_id.empty()) {
        match = container_id == c.container_id;
        pairing.paired_by = "container id";
      } else if (!c.pod_uid.empty() && containers_per_pod[c.pod_uid] == 1) {
        match = cgroups[i].has_value() && cgroups[i]->pod_uid == c.pod_uid &&
                !cgroups[i]->container_id.empty();
        pairing.paired_by = "pod uid";
      }
      if (match) pairing.processes.push_back(&observed[i]);
    }
    if (pairing.processes.empty()) pairing.paired_by.clear();
    out.push_back(std::move(pairing));
  }
  return out;
}

}  // namespace vigil::cli
