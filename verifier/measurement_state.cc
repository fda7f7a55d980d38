#include "verifier/measurement_state.h"

#include "absl/strings/str_cat.h"
#include "common/measurement_log.h"
#include "verifier/log_appraiser.h"

namespace vigil::verifier {
namespace {

bool IsPolicyRecord(const v1::MeasurementLogEntry& e) {
  return e.event_type() == kEventPolicyBundle || e.event_type() == kEventNoPolicy;
}

}  // namespace

const v1::MeasurementLogEntry* MeasurementState::Kept(uint64_t recnum) const {
  for (const v1::MeasurementLogEntry& e : kept) {
    if (e.recnum() == recnum) return &e;
  }
  return nullptr;
}

std::vector<v1::MeasurementLogEntry> KeptEntries(
    const std::vector<v1::MeasurementLogEntry>& epoch) {
  size_t start = epoch.size();
  for (size_t i = epoch.size(); i > 0; --i) {
    if (epoch[i - 1].event_type() == kEventNodeStart) {
      start = i - 1;
      break;
    }
  }
  std::vector<v1::MeasurementLogEntry> out;
  const size_t sequence_end = std::min(epoch.size(), start + StartSequence().size());
  for (size_t i = start; i < sequence_end; ++i) out.push_back(epoch[i]);
  for (size_t i = epoch.size(); i > sequence_end; --i) {
    if (IsPolicyRecord(epoch[i - 1])) {
      out.push_back(epoch[i - 1]);
      break;
    }
  }
  // Without a node-start (it is refused then), the latest policy record alone.
  if (start == epoch.size()) {
    for (size_t i = epoch.size(); i > 0; --i) {
      if (IsPolicyRecord(epoch[i - 1])) {
        out.push_back(epoch[i - 1]);
        break;
      }
    }
  }
  return out;
}

absl::StatusOr<MeasurementState> MeasurementState::FromLog(
    const std::vector<v1::MeasurementLogEntry>& log) {
  for (size_t i = 0; i < log.size(); ++i) {
    if (log[i].recnum() != i) {
      return absl::InvalidArgumentError(
          absl::StrCat("measurement log entry ", i, " has record number ", log[i].recnum()));
    }
  }
  MeasurementState state;
  state.entries = log.size();
  const size_t epoch = EpochStart(log);
  state.epoch_start = epoch;
  const std::vector<v1::MeasurementLogEntry> current(log.begin() + epoch, log.end());
  absl::StatusOr<std::map<uint32_t, Sha256Digest>> pcrs = ReplayPcrs(current);
  if (!pcrs.ok()) return pcrs.status();
  state.pcrs = *std::move(pcrs);
  state.kept = KeptEntries(current);
  return state;
}

}  // namespace vigil::verifier
