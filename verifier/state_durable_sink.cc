#include "verifier/state_durable_sink.h"

#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace vigil::verifier {
namespace {

// Calls `done` once, after `pending` parts reported, with the first error among them.
class Join {
 public:
  Join(int pending, std::function<void(absl::Status)> done)
      : pending_(pending), done_(std::move(done)) {}

  void Report(absl::Status st) {
    absl::Status result;
    {
      absl::MutexLock lock(&mu_);
      if (!st.ok() && status_.ok()) status_ = std::move(st);
      if (--pending_ > 0) return;
      result = status_;
    }
    done_(std::move(result));
  }

 private:
  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  const std::function<void(absl::Status)> done_;
};

}  // namespace

void StateDurableSink::RecordDurable(const std::string& node_id, const v1::Evidence& evidence,
                                     const v1::Verdict& verdict,
                                     std::function<void(absl::Status)> on_durable) {
  auto join = std::make_shared<Join>(2, std::move(on_durable));
  registry_->PersistThen(node_id, [join](absl::Status st) { join->Report(std::move(st)); });
  inner_->RecordDurable(node_id, evidence, verdict,
                        [join](absl::Status st) { join->Report(std::move(st)); });
}

}  // namespace vigil::verifier
