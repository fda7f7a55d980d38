#include "node/agent/spool_link.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace vigil::node {

SpoolLink::SpoolLink(spool::Spool* spool, ReportBuilder* builder, Measurer* measurer,
                     absl::Duration window)
    : spool_(spool), builder_(builder), measurer_(measurer), window_(window) {}

absl::Status SpoolLink::RecordBatch(size_t max_payload_bytes) {
  v1::RuntimeReport report = builder_->Build(max_payload_bytes);
  Stamp(&report);
  std::string payload;
  if (!report.SerializeToString(&payload)) return absl::InternalError("report serialization");
  return Write(report, payload, "batch");
}

absl::Status SpoolLink::RecordUnacknowledged(const std::string& payload) {
  // The node built these bytes itself; parsed again only for the record's detail and counts.
  v1::RuntimeReport report;
  if (!report.ParseFromString(payload)) {
    return absl::InternalError("unacknowledged report does not parse");
  }
  return Write(report, payload, "unacknowledged report");
}

absl::Status SpoolLink::Write(const v1::RuntimeReport& report, const std::string& payload,
                              std::string_view what) {
  uint64_t recnum = spool::kUnmeasured;
  if (measurer_ != nullptr) {
    ASSIGN_OR_RETURN(recnum,
                     measurer_->MeasureNumbered(kEventSpoolBatch,
                                                absl::StrCat("report ", report.sequence(), ", ",
                                                             report.events_size(), " events"),
                                                Sha256(payload)));
  }
  const uint32_t events = static_cast<uint32_t>(
      std::min<size_t>(report.events_size(), std::numeric_limits<uint32_t>::max()));
  ASSIGN_OR_RETURN(uint64_t sequence,
                   spool_->Append(absl::GetCurrentTimeNanos(), recnum, events, payload));
  spdlog::info("spooled {} {} (report {}, {} events, {} bytes; record {}); {} held", what, sequence,
               report.sequence(), events, payload.size(),
               recnum == spool::kUnmeasured ? std::string("none") : absl::StrCat(recnum),
               spool_->size());
  return absl::OkStatus();
}

void SpoolLink::Stamp(v1::RuntimeReport* report) const {
  const spool::SpoolCounters c = spool_->counters();
  if (c.dropped_events > 0) {
    (*report->mutable_probes()->mutable_dropped_events())["spool_full"] += c.dropped_events;
  }
  if (c.dropped_batches > 0 || c.corrupt_batches > 0 || c.refused_batches > 0) {
    report->add_observation_gaps(absl::StrCat(
        "spool: ", c.dropped_batches, " batches (", c.dropped_events,
        " events) dropped when full, ", c.corrupt_batches, " corrupt batches skipped, ",
        c.refused_batches, " batches refused by the verifier"));
  }
}

std::optional<v1::NodeMessage> SpoolLink::NextMessage(uint64_t log_acknowledged) {
  if (in_flight_.has_value()) return std::nullopt;
  while (std::optional<uint64_t> oldest = spool_->Oldest()) {
    absl::StatusOr<spool::Batch> batch = spool_->Read(*oldest);
    if (absl::IsDataLoss(batch.status())) continue;  // set aside by Read; skip it
    if (!batch.ok()) {
      spdlog::error("spool batch {} unreadable: {}", *oldest, batch.status().ToString());
      return std::nullopt;
    }
    // The verifier can check the batch only against a record it holds. Unmeasured batches
    // (no TPM) go as they are: the verifier refuses them.
    if (batch->log_recnum != spool::kUnmeasured && batch->log_recnum >= log_acknowledged) {
      return std::nullopt;
    }
    v1::NodeMessage message;
    v1::SpoolBatch* out = message.mutable_spool_batch();
    out->set_sequence(batch->sequence);
    out->set_payload(std::move(batch->payload));
    out->set_log_recnum(batch->log_recnum);
    out->set_written_unix_nano(batch->written_unix_nano);
    in_flight_ = batch->sequence;
    return message;
  }
  return std::nullopt;
}

void SpoolLink::HandleAck(const v1::SpoolBatchAck& ack) {
  if (in_flight_ == ack.sequence()) in_flight_.reset();
  if (ack.accepted()) {
    if (absl::Status st = spool_->Remove(ack.sequence()); !st.ok()) {
      spdlog::error("acknowledged spool batch {} not deleted: {}", ack.sequence(), st.ToString());
    }
    spdlog::info("spool batch {} delivered ({}); {} held", ack.sequence(),
                 v1::TrustStatus_Name(ack.verdict().status()), spool_->size());
    return;
  }
  std::string why = ack.verdict().detail().empty() ? v1::TrustStatus_Name(ack.verdict().status())
                                                   : ack.verdict().detail();
  if (absl::Status st = spool_->SetAside(ack.sequence(), why); !st.ok()) {
    spdlog::error("refused spool batch {} not set aside: {}", ack.sequence(), st.ToString());
  }
}

}  // namespace vigil::node
