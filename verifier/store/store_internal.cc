#include "verifier/store/store_internal.h"

#include <algorithm>
#include <limits>

#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier::store_internal {

int64_t NowUnixNanos() { return absl::ToUnixNanos(absl::Now()); }

std::string HostnameOf(const v1::Evidence& evidence) {
  v1::RuntimeReport report;
  if (!report.ParseFromString(evidence.payload())) return "";
  return report.hostname();
}

uint32_t PageSize(uint32_t requested) {
  constexpr uint32_t kDefaultPageSize = 100;
  constexpr uint32_t kMaxPageSize = 1000;
  if (requested == 0) return kDefaultPageSize;
  return std::min(requested, kMaxPageSize);
}

absl::StatusOr<v1::PolicyInfo> PolicyToStore(const v1::PolicyInfo& policy) {
  if (policy.name().empty()) return absl::InvalidArgumentError("a policy needs a name");
  if (policy.revision() == 0 ||
      policy.revision() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError("a policy revision is a positive 63-bit number");
  }
  v1::PolicyInfo stored = policy;
  if (stored.updated_unix_nano() == 0) stored.set_updated_unix_nano(NowUnixNanos());
  return stored;
}

absl::Status SettleResults(const absl::Status& batch, std::vector<absl::Status>& results) {
  if (!batch.ok()) {
    spdlog::error("store: a batch of {} writes failed: {}", results.size(), batch.ToString());
    for (absl::Status& r : results) r = batch;
    return batch;
  }
  for (const absl::Status& r : results) {
    if (!r.ok()) return r;
  }
  return absl::OkStatus();
}

absl::StatusOr<RetentionResult> RetainUntilDone(
    const std::function<absl::StatusOr<RetentionResult>()>& pass) {
  RetentionResult total;
  for (;;) {
    absl::StatusOr<RetentionResult> one = pass();
    if (!one.ok()) return one.status();
    total.verdicts += one->verdicts;
    total.changes += one->changes;
    if (one->verdicts == 0 && one->changes == 0) return total;
  }
}

class Subscribers::Handle final : public Subscription {
 public:
  Handle(Subscribers* owner, uint64_t id) : owner_(owner), id_(id) {}
  ~Handle() override {
    std::lock_guard<std::mutex> lock(owner_->mu_);
    owner_->callbacks_.erase(id_);
  }

 private:
  Subscribers* const owner_;
  const uint64_t id_;
};

std::unique_ptr<Subscription> Subscribers::Add(std::function<void()> on_commit) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = ++next_;
  callbacks_[id] = std::move(on_commit);
  return std::make_unique<Handle>(this, id);
}

void Subscribers::Notify() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, on_commit] : callbacks_) on_commit();
}

}  // namespace vigil::verifier::store_internal
