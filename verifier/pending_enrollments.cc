#include "verifier/pending_enrollments.h"

#include <algorithm>

namespace vigil::verifier {
namespace {

absl::Status FullError() {
  return absl::ResourceExhaustedError("too many enrollments pending; retry later");
}

}  // namespace

std::vector<MemoryPendingEnrollments::Map::iterator> MemoryPendingEnrollments::SweepAndFind(
    const std::string& node_id, absl::Time now) {
  std::vector<Map::iterator> same_ek;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.expires < now) {
      it = pending_.erase(it);
      continue;
    }
    if (it->second.node.node_id == node_id) same_ek.push_back(it);
    ++it;
  }
  std::sort(same_ek.begin(), same_ek.end(),
            [](const auto& a, const auto& b) { return a->second.expires < b->second.expires; });
  return same_ek;
}

absl::Status MemoryPendingEnrollments::CheckRoom(const std::string& node_id,
                                                 const PendingLimits& limits, absl::Time now) {
  absl::MutexLock lock(&mu_);
  const auto same_ek = SweepAndFind(node_id, now);
  const bool evicts_own =
      limits.max_pending_per_ek > 0 && same_ek.size() >= limits.max_pending_per_ek;
  if (!evicts_own && pending_.size() >= limits.max_pending) return FullError();
  return absl::OkStatus();
}

absl::StatusOr<bool> MemoryPendingEnrollments::Add(const PendingEnrollment& pending,
                                                   const PendingLimits& limits, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto same_ek = SweepAndFind(pending.node.node_id, now);
  bool evicted = false;
  if (limits.max_pending_per_ek > 0 && same_ek.size() >= limits.max_pending_per_ek) {
    // The oldest of this EK's enrollments make room; other EKs keep theirs.
    for (size_t i = 0; i + limits.max_pending_per_ek <= same_ek.size(); ++i) {
      pending_.erase(same_ek[i]);
    }
    evicted = true;
  } else if (pending_.size() >= limits.max_pending) {
    return FullError();
  }
  pending_[pending.enrollment_id] = pending;
  return evicted;
}

absl::StatusOr<PendingEnrollment> MemoryPendingEnrollments::Take(const std::string& enrollment_id) {
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(enrollment_id);
  if (it == pending_.end())
    return absl::NotFoundError("unknown or already attempted enrollment_id");
  PendingEnrollment out = std::move(it->second);
  pending_.erase(it);
  return out;
}

absl::StatusOr<size_t> MemoryPendingEnrollments::Count() const {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

}  // namespace vigil::verifier
