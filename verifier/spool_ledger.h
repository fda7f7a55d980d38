#pragma once

#include <cstdint>
#include <string>

#include "google/protobuf/repeated_field.h"
#include "verifier/measured_batches.h"
#include "verifier/node_registry.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// Whether `entries` hold a "spool-batch" record.
bool HasSpoolBatchRecord(
    const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& entries);

/// Adds to `batches` the "spool-batch" records among `entries` (a log delta whose quote and
/// replay were verified) at record `from_recnum` or later (earlier ones were resent, not
/// replayed) and in the log's current epoch (after the delta's last "tpm-restart" record, or
/// all when it holds none). The caller holds the NodeState's `mu`. Returns how many were new.
size_t AddMeasuredBatches(
    MeasuredBatches& batches,
    const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& entries,
    uint64_t from_recnum);

/// Per enrolled node, the digests of spooled batches the node measured ("spool-batch"
/// records of a measurement log the verifier verified against a quote) and has not delivered
/// yet, and the digests of batches already delivered: the MeasuredBatches of each node's
/// NodeState, persisted by the registry with the rest of the node's appraisal state. A batch
/// is accepted once: Take moves its digest to delivery, Settle to delivered once its verdict
/// is stored. Thread-safe.
class SpoolLedger {
 public:
  /// `registry` must outlive the ledger.
  explicit SpoolLedger(NodeRegistry* registry) : registry_(registry) {}

  /// Records the "spool-batch" entries among `entries` (the log delta of evidence whose
  /// quote and log replay were verified) that the appraisal verified: record number
  /// `from_recnum` or later (earlier ones were resent, not replayed), and in the log's current
  /// epoch (after the delta's last "tpm-restart" record, or all when it holds none). Marks the
  /// node's state changed when one was new, so a StateDurableSink acknowledging the evidence
  /// afterwards waits for these too. (QuoteAppraiser already records them with the log they
  /// belong to; this covers other appraisers and finds nothing new after a QuoteAppraiser.)
  void AddMeasured(const std::string& node_id,
                   const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& entries,
                   uint64_t from_recnum = 0);

  enum class Outcome {
    /// Measured and not delivered before: now in delivery until Settle.
    kAccepted,
    /// Delivered before (the node resends after a lost acknowledgement).
    kAlreadyDelivered,
    /// No verified record measured it (or it is in delivery on another stream).
    kUnmeasured,
  };
  /// Looks up SHA-256(payload) `digest` (32 bytes) for `node_id`; kAccepted moves it to
  /// delivery and sets `*recnum` to the record that measured it.
  Outcome Take(const std::string& node_id, const std::string& digest, uint64_t* recnum);
  /// Ends the delivery Take started: the batch counts as delivered when its verdict was
  /// `stored`, and is pending again otherwise.
  void Settle(const std::string& node_id, const std::string& digest, bool stored);

  /// Whether the batch with SHA-256 `digest` was delivered before (its verdict stored).
  bool Delivered(const std::string& node_id, const std::string& digest) const;

  /// Measured batches of `node_id` not delivered yet.
  size_t Pending(const std::string& node_id) const;

 private:
  NodeRegistry* const registry_;
};

}  // namespace vigil::verifier
