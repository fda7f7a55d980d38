#include "verifier/spool_ledger.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "common/measurement_log.h"

namespace vigil::verifier {

bool HasSpoolBatchRecord(
    const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& entries) {
  return std::any_of(entries.begin(), entries.end(), [](const v1::MeasurementLogEntry& e) {
    return e.event_type() == kEventSpoolBatch;
  });
}

size_t AddMeasuredBatches(
    MeasuredBatches& batches,
    const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& entries,
    uint64_t from_recnum) {
  size_t added = 0;
  int from = 0;
  for (int i = entries.size(); i > 0; --i) {
    if (entries[i - 1].event_type() == kEventTpmRestart) {
      from = i;
      break;
    }
  }
  for (int i = from; i < entries.size(); ++i) {
    const v1::MeasurementLogEntry& e = entries[i];
    if (e.event_type() != kEventSpoolBatch || e.digest().size() != 32) continue;
    if (e.recnum() < from_recnum) continue;
    if (batches.AddMeasured(e.digest(), e.recnum())) ++added;
  }
  return added;
}

void SpoolLedger::AddMeasured(
    const std::string& node_id,
    const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& entries,
    uint64_t from_recnum) {
  // Most deltas hold no batch record: nothing to look up or lock then.
  if (!HasSpoolBatchRecord(entries)) return;
  std::shared_ptr<NodeState> state = registry_->Find(node_id);
  if (state == nullptr) return;
  size_t added = 0;
  {
    absl::MutexLock lock(&state->mu);
    added = AddMeasuredBatches(state->spool_batches, entries, from_recnum);
  }
  // Marked after the change: a commit that takes the mark writes it.
  if (added > 0) registry_->MarkDirty(node_id);
}

SpoolLedger::Outcome SpoolLedger::Take(const std::string& node_id, const std::string& digest,
                                       uint64_t* recnum) {
  std::shared_ptr<NodeState> state = registry_->Find(node_id);
  if (state == nullptr) return Outcome::kUnmeasured;
  absl::MutexLock lock(&state->mu);
  const MeasuredBatches::Entry* e = state->spool_batches.Find(digest);
  if (e != nullptr && e->state == MeasuredBatches::State::kDelivered) {
    return Outcome::kAlreadyDelivered;
  }
  return state->spool_batches.Take(digest, recnum) ? Outcome::kAccepted : Outcome::kUnmeasured;
}

void SpoolLedger::Settle(const std::string& node_id, const std::string& digest, bool stored) {
  std::shared_ptr<NodeState> state = registry_->Find(node_id);
  if (state == nullptr) return;
  {
    absl::MutexLock lock(&state->mu);
    state->spool_batches.Settle(digest, stored);
  }
  // Written with the next commit; nothing waits for it. A verifier that restarts before then
  // holds the batch as pending, and a resend (the acknowledgement was lost too) is stored
  // again rather than lost.
  if (stored) registry_->MarkDirty(node_id);
}

bool SpoolLedger::Delivered(const std::string& node_id, const std::string& digest) const {
  std::shared_ptr<NodeState> state = registry_->Find(node_id);
  if (state == nullptr) return false;
  absl::MutexLock lock(&state->mu);
  const MeasuredBatches::Entry* e = state->spool_batches.Find(digest);
  return e != nullptr && e->state == MeasuredBatches::State::kDelivered;
}

size_t SpoolLedger::Pending(const std::string& node_id) const {
  std::shared_ptr<NodeState> state = registry_->Find(node_id);
  if (state == nullptr) return 0;
  absl::MutexLock lock(&state->mu);
  return state->spool_batches.pending();
}

}  // namespace vigil::verifier
