#include "verifier/spool_ledger.h"

#include "common/measurement_log.h"

namespace vigil::verifier {

void SpoolLedger::AddMeasured(
    const std::string& node_id,
    const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& entries,
    uint64_t from_recnum) {
  int from = 0;
  for (int i = entries.size(); i > 0; --i) {
    if (entries[i - 1].event_type() == kEventTpmRestart) {
      from = i;
      break;
    }
  }
  absl::MutexLock lock(&mu_);
  NodeBatches* batches = nullptr;
  for (int i = from; i < entries.size(); ++i) {
    const v1::MeasurementLogEntry& e = entries[i];
    if (e.event_type() != kEventSpoolBatch || e.digest().size() != 32) continue;
    if (e.recnum() < from_recnum) continue;
    if (batches == nullptr) batches = &nodes_[node_id];
    if (batches->delivered.contains(e.digest())) continue;
    if (!batches->pending.emplace(e.digest(), e.recnum()).second) continue;
    batches->pending_order.push_back(e.digest());
    while (batches->pending_order.size() > kMaxPending) {
      batches->pending.erase(batches->pending_order.front());
      batches->pending_order.pop_front();
    }
  }
}

SpoolLedger::Outcome SpoolLedger::Take(const std::string& node_id, const std::string& digest,
                                       uint64_t* recnum) {
  absl::MutexLock lock(&mu_);
  auto node = nodes_.find(node_id);
  if (node == nodes_.end()) return Outcome::kUnmeasured;
  NodeBatches& batches = node->second;
  if (batches.delivered.contains(digest)) return Outcome::kAlreadyDelivered;
  auto it = batches.pending.find(digest);
  if (it == batches.pending.end()) return Outcome::kUnmeasured;
  *recnum = it->second;
  batches.pending.erase(it);
  // pending_order keeps the digest until it reaches the front; erasing a missing key then
  // is harmless.
  batches.delivered.insert(digest);
  batches.delivered_order.push_back(digest);
  while (batches.delivered_order.size() > kMaxDelivered) {
    batches.delivered.erase(batches.delivered_order.front());
    batches.delivered_order.pop_front();
  }
  return Outcome::kAccepted;
}

bool SpoolLedger::Delivered(const std::string& node_id, const std::string& digest) const {
  absl::MutexLock lock(&mu_);
  auto node = nodes_.find(node_id);
  return node != nodes_.end() && node->second.delivered.contains(digest);
}

size_t SpoolLedger::Pending(const std::string& node_id) const {
  absl::MutexLock lock(&mu_);
  auto node = nodes_.find(node_id);
  return node == nodes_.end() ? 0 : node->second.pending.size();
}

}  // namespace vigil::verifier
