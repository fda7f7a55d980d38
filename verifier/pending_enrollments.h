#pragma once

// The enrollments begun (BeginEnrollment) and not yet completed: in memory for a verifier on
// its own, in PostgreSQL for replicas, so a CompleteEnrollment reaching any replica finds the
// enrollment another one began. What is kept is what CompleteEnrollment needs, with the
// SHA-256 of the credential secret in place of the secret.

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/digest.h"
#include "verifier/node_registry.h"

namespace vigil::verifier {

/// One enrollment waiting for CompleteEnrollment.
struct PendingEnrollment {
  std::string enrollment_id;
  /// The binding Complete stores (`enrolled` is set then).
  EnrolledNode node;
  std::string csr_pem;
  /// SHA-256 of the secret the credential wraps: the node's answer must hash to it.
  Sha256Digest secret_sha256{};
  absl::Time expires;
};

/// The bounds Add keeps, across every replica sharing the table.
struct PendingLimits {
  /// At most this many enrollments pending at once.
  size_t max_pending = 1024;
  /// At most this many per EK (node_id); 0: no bound. An Add beyond it evicts that EK's
  /// oldest pending enrollment.
  size_t max_pending_per_ek = 4;
};

/// Thread-safe; with PostgreSQL, safe across replicas too.
class PendingEnrollments {
 public:
  virtual ~PendingEnrollments() = default;

  /// Drops the enrollments expired at `now`; then RESOURCE_EXHAUSTED when an Add for
  /// `node_id` would be refused (the table is full and the EK has no entry of its own to
  /// make room with), else OK.
  virtual absl::Status CheckRoom(const std::string& node_id, const PendingLimits& limits,
                                 absl::Time now) = 0;
  /// Drops the enrollments expired at `now` and adds `pending` as one atomic step: when its
  /// EK already has max_pending_per_ek pending, the oldest of them makes room (true is
  /// returned); otherwise RESOURCE_EXHAUSTED when max_pending are pending.
  virtual absl::StatusOr<bool> Add(const PendingEnrollment& pending, const PendingLimits& limits,
                                   absl::Time now) = 0;
  /// Removes and returns the enrollment: of two calls with one id (on any replicas) at most
  /// one gets it. NOT_FOUND when there is none (expired ones may still be returned: the
  /// caller checks `expires`).
  virtual absl::StatusOr<PendingEnrollment> Take(const std::string& enrollment_id) = 0;
  /// How many are pending (expired ones included until the next sweep).
  virtual absl::StatusOr<size_t> Count() const = 0;
};

/// The table in this process's memory: a verifier on its own.
class MemoryPendingEnrollments final : public PendingEnrollments {
 public:
  absl::Status CheckRoom(const std::string& node_id, const PendingLimits& limits,
                         absl::Time now) override;
  absl::StatusOr<bool> Add(const PendingEnrollment& pending, const PendingLimits& limits,
                           absl::Time now) override;
  absl::StatusOr<PendingEnrollment> Take(const std::string& enrollment_id) override;
  absl::StatusOr<size_t> Count() const override;

 private:
  using Map = std::map<std::string, PendingEnrollment>;
  /// Drops expired entries; the entries left for `node_id`, oldest first.
  std::vector<Map::iterator> SweepAndFind(const std::string& node_id, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  Map pending_ ABSL_GUARDED_BY(mu_);
};

/// The table in PostgreSQL at `url` (pending_enrollments), shared by the replicas: Add runs
/// under an advisory lock so the bounds hold across them, and Take is a conditional delete.
absl::StatusOr<std::unique_ptr<PendingEnrollments>> OpenPostgresPendingEnrollments(
    const std::string& url);

}  // namespace vigil::verifier
