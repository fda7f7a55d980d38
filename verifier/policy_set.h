#pragma once

// The reference policies the verifier appraises under, and the bundle each node is sent.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/policy/policy.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// One immutable state of the policy set: the policies (in name order) and their bundle.
/// With no policy the bundle is empty (no content, sha256 ""), and nothing is sent to nodes.
struct PolicySnapshot {
  std::vector<policy::Policy> policies;
  v1::PolicyBundle bundle;
};

/// The current policies, shared by the Attest streams (which send the bundle to every node
/// and again after each change), the appraisal (which evaluates a report under the bundle
/// the node was sent) and the Fleet API (PutPolicy). Every node gets every policy; a
/// policy's workload selectors decide what it applies to. Thread-safe.
class PolicySet {
 public:
  /// Bundles of earlier snapshots stay findable (Find) for this many changes, so evidence
  /// answering a challenge issued just before a change is still appraised under its bundle.
  static constexpr size_t kKeptSnapshots = 16;

  using Listener = std::function<void(std::shared_ptr<const PolicySnapshot>)>;

  PolicySet();

  /// Replaces every policy (at start: the stored policies and --policy files). Fails, and
  /// changes nothing, when two policies share a name.
  absl::Status Reset(std::vector<policy::Policy> policies);

  /// Adds `p`, or replaces the policy of the same name. FAILED_PRECONDITION, changing
  /// nothing, unless its revision is greater than the current one's.
  absl::Status Put(policy::Policy p);

  /// The current snapshot (never null).
  std::shared_ptr<const PolicySnapshot> Current() const;

  /// The snapshot whose bundle digest is `sha256` (the current one or one of the last
  /// kKeptSnapshots); null when none. "" finds the empty snapshot only while it is current
  /// or kept.
  std::shared_ptr<const PolicySnapshot> Find(std::string_view sha256) const;

  /// Calls `listener` with each new snapshot after a change, outside the set's lock, on the
  /// thread that made the change; listeners run one at a time, in the order of the changes,
  /// and must not change the set. Returns an id for RemoveListener.
  uint64_t AddListener(Listener listener);
  /// After this returns, the listener is not running and never runs again.
  void RemoveListener(uint64_t id);

 private:
  absl::Status InstallLocked(std::vector<policy::Policy> policies)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(listeners_mu_);

  mutable absl::Mutex mu_;
  std::shared_ptr<const PolicySnapshot> current_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<const PolicySnapshot>> kept_ ABSL_GUARDED_BY(mu_);

  // Serializes changes and held while listeners run (taken before mu_, never after).
  absl::Mutex listeners_mu_;
  uint64_t next_listener_id_ ABSL_GUARDED_BY(listeners_mu_) = 1;
  std::map<uint64_t, Listener> listeners_ ABSL_GUARDED_BY(listeners_mu_);
};

}  // namespace vigil::verifier
