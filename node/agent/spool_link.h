#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "node/agent/measurer.h"
#include "node/agent/report_builder.h"
#include "node/spool/spool.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::node {

/// The Attest client's side of the spool (docs/node.md, "Spool"): while the verifier is
/// unreachable it turns each batch window's observations into a measured spool batch; once
/// a stream is healthy again it hands out the backlog, oldest first, one batch at a time,
/// and applies the verifier's answers. Used by the Attest client's thread only.
class SpoolLink {
 public:
  /// `spool` and `builder` must outlive the link; `measurer` may be null (no TPM: batches
  /// are written unmeasured, and the verifier will refuse them).
  SpoolLink(spool::Spool* spool, ReportBuilder* builder, Measurer* measurer, absl::Duration window);

  /// How often a batch is written while the verifier is unreachable.
  absl::Duration window() const { return window_; }

  /// Builds a report of what was observed since the last report or batch (snapshots of the
  /// monitored processes, the events), measures SHA-256 of its bytes (a "spool-batch"
  /// record and a PCR extend), then writes it to the spool. Measured first: the record
  /// exists before the batch does, so a batch on disk is always one the TPM anchored.
  absl::Status RecordBatch(size_t max_payload_bytes);

  /// Keeps a report the stream sent but the verifier never acknowledged (the stream broke
  /// between the evidence and its acknowledgement): `payload`, the serialized RuntimeReport
  /// as sent, is measured and written to the spool like a batch, so its events are delivered
  /// on a later stream rather than lost.
  absl::Status RecordUnacknowledged(const std::string& payload);

  /// Adds the spool's losses to a report: dropped events under
  /// probes.dropped_events["spool_full"], and an observation gap with all the counters.
  void Stamp(v1::RuntimeReport* report) const;

  /// The next batch to send, oldest first: none while one is awaiting its answer, and none
  /// whose measurement record the verifier does not hold yet (its recnum is not below
  /// `log_acknowledged`). A batch that turns out corrupt is set aside and skipped.
  std::optional<v1::NodeMessage> NextMessage(uint64_t log_acknowledged);

  /// Applies the verifier's answer: deletes an accepted batch, sets a refused one aside.
  void HandleAck(const v1::SpoolBatchAck& ack);

  /// The stream ended: the batch in flight, unanswered, will be sent again.
  void StreamEnded() { in_flight_.reset(); }

  /// Batches held.
  size_t backlog() const { return spool_->size(); }

 private:
  spool::Spool* const spool_;
  ReportBuilder* const builder_;
  Measurer* const measurer_;
  // Measures `payload` (a serialized `report`) and writes it to the spool as a batch.
  absl::Status Write(const v1::RuntimeReport& report, const std::string& payload,
                     std::string_view what);

  const absl::Duration window_;
  std::optional<uint64_t> in_flight_;
};

}  // namespace vigil::node
