#include "node/agent/policy_applier.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest.h"
#include "common/escape.h"
#include "common/measurement_log.h"
#include "common/policy/bundle.h"
#include "spdlog/spdlog.h"

namespace vigil::node {
namespace {

// Bytes of the verifier's policy ids kept in a log detail.
constexpr size_t kMaxDetail = 400;

}  // namespace

PolicyApplier::PolicyApplier(PolicyTargets targets, std::string running_sha256)
    : targets_(targets),
      own_selectors_(targets.matcher->selectors()),
      own_syscalls_(targets.snapshotter->options().seccomp_syscalls),
      own_sensitive_paths_(targets.snapshotter->options().sensitive_paths),
      running_sha256_(std::move(running_sha256)) {
  targets_.builder->set_policy_digest(running_sha256_);
}

absl::Status PolicyApplier::Apply(const v1::PolicyBundle& bundle) {
  if (bundle.sha256() == running_sha256_ && !running_sha256_.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<policy::Policy>> policies = policy::ParseBundle(bundle);
  if (!policies.ok()) {
    ++refused_;
    return absl::InvalidArgumentError(absl::StrCat(
        "policy bundle ", EscapeUntrusted(bundle.sha256(), 64), " refused, keeping ",
        running_sha256_.empty() ? "none" : running_sha256_, ": ", policies.status().message()));
  }
  const std::string ids = absl::StrJoin(bundle.policy_ids(), ",");
  if (targets_.measurer != nullptr) {
    absl::Status measured = targets_.measurer->Measure(
        kEventPolicyBundle, EscapeUntrusted(absl::StrCat("bundle ", ids), kMaxDetail),
        Sha256(bundle.content()));
    if (!measured.ok()) {
      ++refused_;
      return measured;
    }
  }
  const policy::NodeDirectives directives = policy::DirectivesOf(*policies);

  std::vector<Selector> selectors = own_selectors_;
  std::set<std::string> names;
  for (const Selector& s : selectors) names.insert(s.name);
  for (const Selector& s : directives.selectors) {
    if (names.insert(s.name).second) selectors.push_back(s);
  }
  targets_.matcher->SetSelectors(selectors);
  if (targets_.probes != nullptr) {
    if (absl::Status st = targets_.probes->UpdateSelectors(selectors); !st.ok()) {
      // The procfs scan still selects them at every report; only exec-time selection in the
      // kernel is missing, and the log says so.
      spdlog::error("probes keep their previous selectors: {}", st.ToString());
    }
    for (const MatchedProcess& m : targets_.matcher->Scan(targets_.probes->MonitoredPids())) {
      if (absl::Status st = targets_.probes->Monitor(m.pid); !st.ok()) {
        spdlog::warn("cannot monitor pid {} in the kernel: {}", m.pid, st.ToString());
      }
    }
  }

  std::vector<std::string> syscalls = own_syscalls_;
  std::set<std::string> known(syscalls.begin(), syscalls.end());
  for (const std::string& s : directives.seccomp_syscalls) {
    if (known.insert(s).second) syscalls.push_back(s);
  }
  std::vector<SensitivePath> sensitive = own_sensitive_paths_;
  for (const policy::SensitiveFile& f : directives.sensitive_files) {
    sensitive.push_back(SensitivePath{f.glob, f.classification});
  }
  targets_.snapshotter->SetPolicyTargets(std::move(syscalls), std::move(sensitive));

  running_sha256_ = bundle.sha256();
  targets_.builder->set_policy_digest(running_sha256_);
  ++applied_;
  spdlog::info("policy bundle {} applied ({}): {} selector(s), {} syscall(s) evaluated",
               running_sha256_.substr(0, 12), ids, selectors.size(),
               targets_.snapshotter->options().seccomp_syscalls.size());
  return absl::OkStatus();
}

}  // namespace vigil::node
