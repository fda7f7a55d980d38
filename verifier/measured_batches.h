#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace vigil::verifier {

/// One node's spool ledger (docs/appraisal.md, "Spooled batches"): the digests of spooled
/// batches the node measured ("spool-batch" records of a measurement log verified against a
/// quote), each pending (measured, not delivered), in delivery (taken by a batch whose
/// verdict is being stored) or delivered (its verdict stored). Bounded: at most kMaxPending
/// pending and kMaxDelivered delivered digests, the oldest forgotten first. Remembers which
/// digests changed since the registry last wrote them, so the registry persists the ledger
/// incrementally. Not thread-safe: it lives in a NodeState under its `mu`.
class MeasuredBatches {
 public:
  static constexpr size_t kMaxPending = 1 << 16;
  static constexpr size_t kMaxDelivered = 1 << 16;

  enum class State : uint8_t { kPending, kDelivering, kDelivered };
  struct Entry {
    /// The measurement-log record that measured the batch.
    uint64_t recnum = 0;
    State state = State::kPending;
  };

  /// Adds `digest` measured at record `recnum` as pending, unless it is known already; true
  /// when it was added.
  bool AddMeasured(const std::string& digest, uint64_t recnum);

  /// Moves pending `digest` to delivery and sets `*recnum`; false when it is not pending.
  bool Take(const std::string& digest, uint64_t* recnum);
  /// Ends the delivery of `digest`: delivered when its verdict was `stored`, pending again
  /// otherwise (the node sends the batch again). Nothing when it is not in delivery.
  void Settle(const std::string& digest, bool stored);

  /// The entry of `digest`, or null.
  const Entry* Find(const std::string& digest) const;
  /// Pending digests (in delivery ones not counted).
  size_t pending() const { return pending_; }
  size_t delivered() const { return delivered_; }

  /// Adds a persisted entry as the registry read it back (in record order): pending or
  /// delivered. Not counted as a change.
  void Restore(const std::string& digest, uint64_t recnum, bool delivered);

  /// A digest changed since the registry last wrote it, with what to write: its entry, or
  /// nothing when it was forgotten. An entry in delivery is written as pending: a verifier
  /// that restarts before the batch's verdict is stored takes the batch again.
  struct Change {
    std::string digest;
    std::optional<Entry> entry;
    uint64_t generation = 0;
  };
  /// Every change not written yet.
  std::vector<Change> Changes() const;
  /// Forgets the changes Changes() returned that did not change again since (generation).
  void Written(const std::vector<Change>& changes);

 private:
  void Changed(const std::string& digest) { changed_[digest] = ++generation_; }
  // Forgets the oldest digests of `order` still in `state` until `count` is at most `max`.
  void ForgetOldest(State state, size_t max, std::deque<std::string>& order, size_t& count);

  absl::flat_hash_map<std::string, Entry> entries_;
  // Insertion order for forgetting the oldest; may hold digests no longer in that state.
  std::deque<std::string> pending_order_;
  std::deque<std::string> delivered_order_;
  size_t pending_ = 0;
  size_t delivered_ = 0;
  // digest -> generation of its latest change not written yet.
  absl::flat_hash_map<std::string, uint64_t> changed_;
  uint64_t generation_ = 0;
};

}  // namespace vigil::verifier
