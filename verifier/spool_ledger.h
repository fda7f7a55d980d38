#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/repeated_field.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// Per node, the digests of spooled batches the node measured ("spool-batch" records of a
/// measurement log the verifier verified against a quote) and has not delivered yet, and
/// the digests of batches already delivered. A batch is accepted once: its digest moves from
/// the first set to the second. Both sets are bounded per node (the oldest are forgotten
/// first) and kept in memory. Thread-safe.
class SpoolLedger {
 public:
  /// Per node: how many measured-but-undelivered digests, and delivered ones, are kept.
  static constexpr size_t kMaxPending = 1 << 16;
  static constexpr size_t kMaxDelivered = 1 << 16;

  /// Records the "spool-batch" entries among `entries` (the log delta of evidence whose
  /// quote and log replay were verified) that the appraisal verified: record number
  /// `from_recnum` or later (earlier ones were resent, not replayed), and in the log's current
  /// epoch (after the delta's last "tpm-restart" record, or all when it holds none).
  void AddMeasured(const std::string& node_id,
                   const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& entries,
                   uint64_t from_recnum = 0);

  enum class Outcome {
    /// Measured and not delivered before: now marked delivered.
    kAccepted,
    /// Delivered before (the node resends after a lost acknowledgement).
    kAlreadyDelivered,
    /// No verified record measured it.
    kUnmeasured,
  };
  /// Looks up SHA-256(payload) `digest` (32 bytes) for `node_id`; kAccepted moves it to the
  /// delivered set and sets `*recnum` to the record that measured it.
  Outcome Take(const std::string& node_id, const std::string& digest, uint64_t* recnum);

  /// Whether the batch with SHA-256 `digest` was delivered before (Take said kAccepted).
  bool Delivered(const std::string& node_id, const std::string& digest) const;

  /// Measured batches of `node_id` not delivered yet.
  size_t Pending(const std::string& node_id) const;

 private:
  struct NodeBatches {
    absl::flat_hash_map<std::string, uint64_t> pending;  // digest -> recnum
    std::deque<std::string> pending_order;
    absl::flat_hash_set<std::string> delivered;
    std::deque<std::string> delivered_order;
  };

  mutable absl::Mutex mu_;
  std::unordered_map<std::string, NodeBatches> nodes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::verifier
