#include "verifier/log_appraiser.h"

#include <algorithm>
#include <span>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/escape.h"
#include "common/ima_log.h"
#include "common/measurement_log.h"

namespace vigil::verifier {
namespace {

// Attacker-controlled text is cut to this many bytes in a detail.
constexpr size_t kMaxDetailText = 120;

bool SameEntry(const v1::MeasurementLogEntry& a, const v1::MeasurementLogEntry& b) {
  return a.recnum() == b.recnum() && a.pcr() == b.pcr() && a.digest() == b.digest() &&
         a.event_type() == b.event_type() && a.content() == b.content();
}

std::string TypeOf(const v1::MeasurementLogEntry& e) {
  return EscapeUntrusted(e.event_type(), kMaxDetailText);
}

bool IsSequenceStep(const v1::MeasurementLogEntry& e, size_t step) {
  if (step + 1 == StartSequence().size()) {
    return e.event_type() == kEventPolicyBundle || e.event_type() == kEventNoPolicy;
  }
  return e.event_type() == StartSequence()[step];
}

// Replays `entries` onto `*pcrs` and compares every PCR they extend (and the measurement PCR)
// with the quoted values.
std::optional<AppraisalFailure> CheckReplay(std::span<const v1::MeasurementLogEntry> entries,
                                            uint64_t epoch,
                                            const std::map<uint32_t, std::string>& pcr_values,
                                            uint32_t measurement_pcr,
                                            std::map<uint32_t, Sha256Digest>* pcrs) {
  for (const v1::MeasurementLogEntry& e : entries) {
    if (absl::Status st = ExtendPcr((*pcrs)[e.pcr()], e); !st.ok()) {
      return AppraisalFailure{v1::LOG_REPLAY_MISMATCH, std::string(st.message())};
    }
  }
  pcrs->try_emplace(measurement_pcr);  // compared with the quote even when never extended
  for (const auto& [index, value] : *pcrs) {
    auto it = pcr_values.find(index);
    if (it == pcr_values.end()) {
      return AppraisalFailure{v1::LOG_REPLAY_MISMATCH,
                              absl::StrCat("the log extends PCR ", index, " which is not quoted")};
    }
    if (it->second != DigestBytes(value)) {
      return AppraisalFailure{v1::LOG_REPLAY_MISMATCH,
                              absl::StrCat("the measurement log's current epoch (from record ",
                                           epoch, ") does not replay to quoted PCR ", index)};
    }
  }
  return std::nullopt;
}

// A new policy-bundle record is also accepted when its digest is a bundle the verifier issued
// (`policies`); one the verifier already held (accepted earlier) at all: the set keeps only
// recent bundles, and the node keeps running a bundle it was sent.
bool IssuedBundle(const v1::MeasurementLogEntry& e, bool held, const PolicySet* policies) {
  if (e.event_type() != kEventPolicyBundle) return false;
  if (held) return true;
  return policies != nullptr && e.digest().size() == 32 &&
         policies->Find(HexEncode(e.digest())) != nullptr;
}

std::optional<AppraisalFailure> CheckReference(const v1::MeasurementLogEntry& e, bool held,
                                               const ReferenceValues& reference_values,
                                               const PolicySet* policies) {
  if (reference_values.Contains(e.event_type(), e.digest())) return std::nullopt;
  // A spooled batch's digest is checked when the batch arrives (verifier/spool_ledger.h).
  if (e.event_type() == kEventSpoolBatch) return std::nullopt;
  if (IssuedBundle(e, held, policies)) return std::nullopt;
  std::string detail = absl::StrCat("entry ", e.recnum(), " (", TypeOf(e), ": ",
                                    EscapeUntrusted(e.content(), kMaxDetailText), ") digest ",
                                    HexEncode(e.digest()), " is not a reference value");
  if (std::optional<std::string> other = reference_values.TypeOf(e.digest())) {
    absl::StrAppend(&detail, " of that type (it is one of type ", *other, ")");
  }
  if (e.event_type() == kEventPolicyBundle && policies != nullptr) {
    absl::StrAppend(&detail, " nor a policy bundle this verifier sent");
  }
  return AppraisalFailure{v1::UNKNOWN_MEASUREMENT, std::move(detail)};
}

// `log` is the current epoch (from record `epoch`) or its tail from a node-start record on.
std::optional<AppraisalFailure> CheckStartSequence(const std::vector<v1::MeasurementLogEntry>& log,
                                                   uint64_t epoch) {
  size_t start = log.size();
  for (size_t i = log.size(); i > 0; --i) {
    if (log[i - 1].event_type() == kEventNodeStart) {
      start = i - 1;
      break;
    }
  }
  if (start == log.size()) {
    return AppraisalFailure{
        v1::MEASUREMENT_MISSING,
        log.empty()
            ? absl::StrCat("the measurement log's current epoch (from record ", epoch,
                           ") is empty: vigil-node has not measured its start since the TPM "
                           "was reset or restarted")
            : absl::StrCat("no node-start record in the measurement log's current epoch "
                           "(from record ",
                           epoch, ")")};
  }
  const std::vector<std::string>& sequence = StartSequence();
  for (size_t step = 1; step < sequence.size(); ++step) {
    const size_t index = start + step;
    const std::string& expected = sequence[step];
    const std::string what =
        step + 1 == sequence.size() ? "policy-bundle (or no-policy-bundle)" : expected;
    if (index >= log.size()) {
      std::string detail = absl::StrCat("the start sequence after node-start (record ",
                                        log[start].recnum(), ") lacks ", what);
      if (expected == kEventBpfObject) {
        absl::StrAppend(&detail,
                        ": the node runs without its probes (--no-probes, or the kernel refused "
                        "them) or has not finished starting; runtime claims are not affirmed");
      }
      return AppraisalFailure{v1::MEASUREMENT_MISSING, std::move(detail)};
    }
    if (IsSequenceStep(log[index], step)) continue;
    for (size_t later = index + 1; later < log.size(); ++later) {
      if (IsSequenceStep(log[later], step)) {
        return AppraisalFailure{
            v1::MEASUREMENT_OUT_OF_ORDER,
            absl::StrCat("after node-start (record ", log[start].recnum(), ") record ",
                         log[index].recnum(), " is ", TypeOf(log[index]), " where ", what,
                         " belongs (found at record ", log[later].recnum(), ")")};
      }
    }
    std::string detail = absl::StrCat("the start sequence after node-start (record ",
                                      log[start].recnum(), ") lacks ", what, " (record ",
                                      log[index].recnum(), " is ", TypeOf(log[index]), ")");
    if (expected == kEventBpfObject) {
      absl::StrAppend(&detail,
                      ": the node runs without its probes; runtime claims are not "
                      "affirmed");
    }
    return AppraisalFailure{v1::MEASUREMENT_MISSING, std::move(detail)};
  }
  return std::nullopt;
}

}  // namespace

const std::vector<std::string>& StartSequence() {
  static const std::vector<std::string> sequence = {
      kEventNodeStart, kEventNodeBinary, kEventBpfObject, kEventBpfProgramTags, kEventPolicyBundle};
  return sequence;
}

std::optional<AppraisalFailure> ExtendLog(
    const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& delta,
    const MeasurementState& held, std::vector<v1::MeasurementLogEntry>* fresh) {
  for (const v1::MeasurementLogEntry& e : delta) {
    const uint64_t next = held.entries + fresh->size();
    if (e.recnum() < next) {
      // A node may resend entries the verifier already holds; those it can compare must be
      // the same.
      const v1::MeasurementLogEntry* before =
          e.recnum() < held.entries ? held.Kept(e.recnum()) : &(*fresh)[e.recnum() - held.entries];
      if (before != nullptr && !SameEntry(e, *before)) {
        return AppraisalFailure{
            v1::LOG_DISCONTINUOUS,
            absl::StrCat("entry ", e.recnum(), " differs from the one already held")};
      }
      continue;
    }
    if (e.recnum() != next) {
      return AppraisalFailure{
          v1::LOG_DISCONTINUOUS,
          absl::StrCat("entry ", e.recnum(), " follows entry ", next, " - 1 in the held log")};
    }
    fresh->push_back(e);
  }
  return std::nullopt;
}

size_t EpochStart(const std::vector<v1::MeasurementLogEntry>& log) {
  for (size_t i = log.size(); i > 0; --i) {
    if (log[i - 1].event_type() == kEventTpmRestart) return i - 1;
  }
  return 0;
}

std::optional<AppraisalFailure> CheckMeasurementLog(
    const MeasurementState& held, const std::vector<v1::MeasurementLogEntry>& fresh,
    const std::map<uint32_t, std::string>& pcr_values, uint32_t measurement_pcr,
    TpmLifecycle lifecycle, const ReferenceValues& reference_values, const PolicySet* policies,
    MeasurementState* next, std::vector<v1::MeasurementLogEntry>* epoch) {
  // What the verifier holds passed this check when it was accepted: only new entries can
  // hold a log-mismatch record.
  for (const v1::MeasurementLogEntry& e : fresh) {
    if (e.event_type() == kEventLogMismatch) {
      return AppraisalFailure{v1::NODE_LOG_MISMATCH,
                              absl::StrCat("the node recorded at entry ", e.recnum(),
                                           " that its measurement log does not explain its PCR: ",
                                           EscapeUntrusted(e.content(), 2 * kMaxDetailText))};
    }
  }
  // The new entries' last tpm-restart record, if any, opens the current epoch.
  size_t restart = fresh.size();
  for (size_t i = fresh.size(); i > 0; --i) {
    if (fresh[i - 1].event_type() == kEventTpmRestart) {
      restart = i - 1;
      break;
    }
  }
  const bool restarted_in_fresh = restart < fresh.size();
  const uint64_t epoch_start = restarted_in_fresh ? fresh[restart].recnum() : held.epoch_start;
  const bool new_epoch = restarted_in_fresh && epoch_start > 0;
  if (lifecycle == TpmLifecycle::kRestarted && !new_epoch) {
    return AppraisalFailure{
        v1::MEASUREMENT_MISSING,
        absl::StrCat("the TPM restarted (restartCount went up) and reset the PCRs, but the log "
                     "holds no new epoch after record ",
                     held.entries, ": the node has not measured its start again")};
  }
  if (lifecycle == TpmLifecycle::kSame && new_epoch) {
    return AppraisalFailure{
        v1::LOG_REPLAY_MISMATCH,
        absl::StrCat("record ", epoch_start, " opens a new log epoch but the TPM did not restart")};
  }
  std::map<uint32_t, Sha256Digest> pcrs =
      restarted_in_fresh ? std::map<uint32_t, Sha256Digest>() : held.pcrs;
  const size_t replay_from = restarted_in_fresh ? restart : 0;
  if (auto f = CheckReplay(std::span(fresh).subspan(replay_from), epoch_start, pcr_values,
                           measurement_pcr, &pcrs)) {
    return f;
  }
  for (const v1::MeasurementLogEntry& e : held.kept) {
    if (auto f = CheckReference(e, /*held=*/true, reference_values, policies)) return f;
  }
  for (const v1::MeasurementLogEntry& e : fresh) {
    if (auto f = CheckReference(e, /*held=*/false, reference_values, policies)) return f;
  }
  epoch->clear();
  if (!restarted_in_fresh) {
    for (const v1::MeasurementLogEntry& e : held.kept) {
      if (e.recnum() >= held.epoch_start) epoch->push_back(e);
    }
  }
  epoch->insert(epoch->end(), fresh.begin() + static_cast<std::ptrdiff_t>(replay_from),
                fresh.end());
  if (auto f = CheckStartSequence(*epoch, epoch_start)) return f;
  next->entries = held.entries + fresh.size();
  next->epoch_start = epoch_start;
  next->pcrs = std::move(pcrs);
  next->kept = KeptEntries(*epoch);
  return std::nullopt;
}

std::optional<AppraisalFailure> CheckImaEntry(const std::vector<v1::MeasurementLogEntry>& log,
                                              const v1::ImaStatus& ima, std::string* note) {
  note->clear();
  if (!ima.present()) return std::nullopt;
  if (ima.node_binary_entry().empty()) {
    *note = "IMA present but it holds no entry for the node binary";
    return std::nullopt;
  }
  absl::StatusOr<ImaEntry> entry = ParseImaLine(ima.node_binary_entry());
  if (!entry.ok()) {
    return AppraisalFailure{v1::UNKNOWN_MEASUREMENT,
                            absl::StrCat("the node's IMA entry for its binary does not parse: ",
                                         entry.status().message())};
  }
  if (entry->file_hash_algorithm != "sha256") {
    *note = absl::StrCat("IMA entry for the node binary is ",
                         EscapeUntrusted(entry->file_hash_algorithm, 16), ", not compared");
    return std::nullopt;
  }
  const size_t epoch = EpochStart(log);
  const v1::MeasurementLogEntry* binary = nullptr;
  for (size_t i = log.size(); i > epoch; --i) {
    if (log[i - 1].event_type() == kEventNodeStart) {
      if (i < log.size() && log[i].event_type() == kEventNodeBinary) binary = &log[i];
      break;
    }
  }
  if (binary == nullptr) return std::nullopt;  // CheckMeasurementLog refuses this first
  if (binary->digest() != entry->file_hash) {
    return AppraisalFailure{
        v1::UNKNOWN_MEASUREMENT,
        absl::StrCat("the kernel's IMA measured the node binary ",
                     EscapeUntrusted(entry->path, kMaxDetailText), " as ",
                     HexEncode(entry->file_hash), " but the node measured itself as ",
                     HexEncode(binary->digest()))};
  }
  *note = "IMA's measurement of the node binary agrees";
  return std::nullopt;
}

}  // namespace vigil::verifier
