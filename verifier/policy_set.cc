#include "verifier/policy_set.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/policy/bundle.h"

namespace vigil::verifier {

PolicySet::PolicySet() : current_(std::make_shared<const PolicySnapshot>()) {}

absl::Status PolicySet::Reset(std::vector<policy::Policy> policies) {
  absl::MutexLock change(&listeners_mu_);
  return InstallLocked(std::move(policies));
}

absl::Status PolicySet::Put(policy::Policy p) {
  absl::MutexLock change(&listeners_mu_);
  std::vector<policy::Policy> policies;
  {
    absl::MutexLock lock(&mu_);
    policies = current_->policies;
  }
  auto same = std::find_if(policies.begin(), policies.end(),
                           [&](const policy::Policy& q) { return q.name == p.name; });
  if (same != policies.end()) {
    if (p.revision <= same->revision) {
      return absl::FailedPreconditionError(
          absl::StrCat("policy '", p.name, "' is at revision ", same->revision,
                       "; a change needs a greater revision than that, not ", p.revision));
    }
    *same = std::move(p);
  } else {
    policies.push_back(std::move(p));
  }
  return InstallLocked(std::move(policies));
}

absl::Status PolicySet::InstallLocked(std::vector<policy::Policy> policies) {
  std::sort(policies.begin(), policies.end(),
            [](const policy::Policy& a, const policy::Policy& b) { return a.name < b.name; });
  auto snapshot = std::make_shared<PolicySnapshot>();
  if (!policies.empty()) {
    absl::StatusOr<v1::PolicyBundle> bundle = policy::BuildBundle(policies);
    if (!bundle.ok()) return bundle.status();
    snapshot->bundle = *std::move(bundle);
  }
  snapshot->policies = std::move(policies);
  std::shared_ptr<const PolicySnapshot> installed = snapshot;
  // Changes and their notifications happen under listeners_mu_, so listeners see the
  // snapshots in the order they were made.
  {
    absl::MutexLock lock(&mu_);
    kept_.push_front(current_);
    if (kept_.size() > kKeptSnapshots) kept_.pop_back();
    current_ = installed;
  }
  for (auto& [id, listener] : listeners_) listener(installed);
  return absl::OkStatus();
}

std::shared_ptr<const PolicySnapshot> PolicySet::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

std::shared_ptr<const PolicySnapshot> PolicySet::Find(std::string_view sha256) const {
  absl::MutexLock lock(&mu_);
  if (current_->bundle.sha256() == sha256) return current_;
  for (const auto& s : kept_) {
    if (s->bundle.sha256() == sha256) return s;
  }
  return nullptr;
}

uint64_t PolicySet::AddListener(Listener listener) {
  absl::MutexLock lock(&listeners_mu_);
  uint64_t id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void PolicySet::RemoveListener(uint64_t id) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(id);
}

}  // namespace vigil::verifier
