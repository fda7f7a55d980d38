#include "node/agent/measurer.h"

#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace vigil::node {
namespace {

absl::StatusOr<std::string> ReadBootId(const std::string& path) {
  std::ifstream in(path);
  std::string id;
  if (!in || !std::getline(in, id)) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read boot id from ", path));
  }
  id = std::string(absl::StripAsciiWhitespace(id));
  if (id.empty()) return absl::FailedPreconditionError(absl::StrCat(path, " is empty"));
  return id;
}

}  // namespace

Sha256Digest NodeStartDigest() { return Sha256("vigil-node-start"); }
Sha256Digest LogMismatchDigest() { return Sha256("vigil-log-mismatch"); }
Sha256Digest NoPolicyDigest() { return Sha256("vigil: no policy bundle"); }
Sha256Digest TpmRestartDigest() { return Sha256("vigil-tpm-restart"); }

absl::StatusOr<std::unique_ptr<Measurer>> Measurer::Start(tpm::NodeTpm* tpm, Options options) {
  if (tpm == nullptr) return absl::InvalidArgumentError("measurer needs a TPM");
  if (options.pcr > 23 || options.pcr < 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("measurement PCR ", options.pcr, " is not one of 8-23"));
  }
  if ((options.pcr == 16 || options.pcr == 23) && !options.allow_resettable_pcr) {
    return absl::InvalidArgumentError(
        absl::StrCat("measurement PCR ", options.pcr,
                     " is resettable; it may only be used in tests (allow_resettable_pcr)"));
  }
  ASSIGN_OR_RETURN(std::string boot_id, ReadBootId(options.boot_id_path));

  std::unique_ptr<Measurer> m(new Measurer(tpm, options));
  absl::MutexLock lock(&m->mu_);
  absl::StatusOr<MeasurementLog> existing = ReadMeasurementLog(options.log_path);
  if (existing.ok() && existing->boot_id == boot_id) {
    m->log_ = std::move(*existing);
  } else {
    if (existing.ok()) {
      spdlog::info("measurement log {} is from boot {}; starting a new log for boot {}",
                   options.log_path, existing->boot_id, boot_id);
    } else if (!absl::IsNotFound(existing.status())) {
      // Keep the unreadable file for inspection; the replay below shows whether the PCR
      // still agrees with an empty log (it will not if this boot measured anything).
      std::string aside = options.log_path + ".unreadable";
      std::rename(options.log_path.c_str(), aside.c_str());
      spdlog::error("measurement log unreadable ({}); moved to {}", existing.status().ToString(),
                    aside);
    }
    m->log_ = MeasurementLog{boot_id, {}};
  }

  RETURN_IF_ERROR(m->ReconcileLocked());
  RETURN_IF_ERROR(m->MeasureNodeStartLocked());
  return m;
}

absl::Status Measurer::MeasureNodeStartLocked() {
  std::string start_detail =
      absl::StrCat("pid ", getpid(), " at ", absl::FormatTime(absl::Now(), absl::UTCTimeZone()));
  RETURN_IF_ERROR(MeasureLocked(kEventNodeStart, start_detail, NodeStartDigest()));
  own_start_ = log_.records.size() - 1;
  return absl::OkStatus();
}

absl::Status Measurer::ReconcileLocked() {
  ASSIGN_OR_RETURN(std::vector<tpm::PcrReading> pcr, tpm_->ReadPcrs({options_.pcr}));
  const size_t epoch = CurrentEpochStart(log_.records);
  Sha256Digest replayed{};
  for (size_t i = epoch; i < log_.records.size(); ++i) {
    const MeasurementRecord& r = log_.records[i];
    if (r.pcr == options_.pcr)
      replayed = Sha256Concat({DigestBytes(replayed), DigestBytes(r.digest)});
  }
  if (pcr.size() == 1 && pcr[0].value == replayed) return absl::OkStatus();
  if (pcr.size() == 1 && pcr[0].value == Sha256Digest{}) {
    // A TPM Restart reset the PCR: a new epoch, holding the start sequence again.
    std::vector<MeasurementRecord> again;
    if (own_start_ != SIZE_MAX) {
      again.assign(log_.records.begin() + static_cast<std::ptrdiff_t>(own_start_) + 1,
                   log_.records.end());
    }
    spdlog::warn(
        "PCR {} was reset (TPM Restart) under a log epoch of {} records; opening a new "
        "epoch at record {} and measuring the start again",
        options_.pcr, log_.records.size() - epoch, log_.records.size());
    RETURN_IF_ERROR(
        MeasureLocked(kEventTpmRestart,
                      absl::StrCat("PCR ", options_.pcr, " found reset; previous epoch records ",
                                   epoch, "-", log_.records.size() - 1),
                      TpmRestartDigest()));
    if (own_start_ == SIZE_MAX) return absl::OkStatus();  // Start measures node-start next
    RETURN_IF_ERROR(MeasureNodeStartLocked());
    // Of the policy records (the one measured at start, then each bundle the verifier sent),
    // only the last: the bundle the node runs with now. It stays in its place after the BPF
    // records, where the start sequence wants it.
    size_t running_policy = again.size();
    for (size_t i = 0; i < again.size(); ++i) {
      if (again[i].event_type == kEventPolicyBundle || again[i].event_type == kEventNoPolicy) {
        running_policy = i;
      }
    }
    // Spooled batches' records follow the start sequence, so their digests stay provable
    // in the new epoch without breaking the order the verifier requires.
    std::vector<const MeasurementRecord*> spooled;
    for (size_t i = 0; i < again.size(); ++i) {
      const MeasurementRecord& r = again[i];
      if (r.event_type == kEventLogMismatch || r.event_type == kEventTpmRestart) continue;
      if (r.event_type == kEventSpoolBatch) {
        spooled.push_back(&r);
        continue;
      }
      const bool policy = r.event_type == kEventPolicyBundle || r.event_type == kEventNoPolicy;
      if (policy && i != running_policy) continue;
      RETURN_IF_ERROR(MeasureLocked(r.event_type, r.detail, r.digest));
    }
    for (const MeasurementRecord* r : spooled) {
      RETURN_IF_ERROR(MeasureLocked(r->event_type, r->detail, r->digest));
    }
    return absl::OkStatus();
  }
  if (log_mismatch_.exchange(true)) return absl::OkStatus();  // already recorded
  std::string detail =
      absl::StrCat("log epoch from record ", epoch, " of ", log_.records.size(),
                   " records replays to ", HexEncode(replayed), " but PCR ", options_.pcr, " is ",
                   pcr.empty() ? std::string("unreadable") : HexEncode(pcr[0].value));
  spdlog::error("measurement log mismatch: {}", detail);
  return MeasureLocked(kEventLogMismatch, detail, LogMismatchDigest());
}

absl::Status Measurer::ReconcileWithPcr() {
  absl::MutexLock lock(&mu_);
  return ReconcileLocked();
}

absl::Status Measurer::MeasureLocked(const std::string& event_type, const std::string& detail,
                                     const Sha256Digest& digest) {
  // Extend first, then log: a crash in between leaves the PCR ahead of the log, which the
  // next start detects and reports as a mismatch rather than hiding it.
  RETURN_IF_ERROR(tpm_->ExtendPcr(options_.pcr, digest));
  MeasurementRecord record{log_.records.size(), options_.pcr, digest, event_type, detail};
  log_.records.push_back(record);
  absl::Status written = WriteMeasurementLog(options_.log_path, log_);
  if (!written.ok()) {
    spdlog::error("measurement log write failed: {}", written.ToString());
  }
  return written;
}

absl::Status Measurer::Measure(const std::string& event_type, const std::string& detail,
                               const Sha256Digest& digest) {
  absl::MutexLock lock(&mu_);
  return MeasureLocked(event_type, detail, digest);
}

absl::StatusOr<uint64_t> Measurer::MeasureNumbered(const std::string& event_type,
                                                   const std::string& detail,
                                                   const Sha256Digest& digest) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(MeasureLocked(event_type, detail, digest));
  return log_.records.back().recnum;
}

absl::Status Measurer::MeasureFile(const std::string& event_type, const std::string& path) {
  ASSIGN_OR_RETURN(Sha256Digest digest, Sha256File(path));
  return Measure(event_type, path, digest);
}

absl::Status Measurer::MeasureNodeBinary() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  ASSIGN_OR_RETURN(Sha256Digest digest, Sha256File("/proc/self/exe"));
  return Measure(kEventNodeBinary, ec ? std::string("/proc/self/exe") : exe.string(), digest);
}

absl::Status Measurer::MeasureBpfObject(const std::string& name, std::string_view object_bytes) {
  return Measure(kEventBpfObject, absl::StrCat(name, " (", object_bytes.size(), " bytes)"),
                 Sha256(object_bytes));
}

absl::Status Measurer::MeasureBpfProgramTags(const std::string& tags) {
  return Measure(kEventBpfProgramTags, tags, Sha256(tags));
}

absl::Status Measurer::MeasurePolicy(const std::string& path) {
  if (path.empty()) return Measure(kEventNoPolicy, "no policy bundle", NoPolicyDigest());
  return MeasureFile(kEventPolicyBundle, path);
}

std::vector<v1::MeasurementLogEntry> Measurer::EntriesFrom(uint64_t recnum) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::MeasurementLogEntry> out;
  for (uint64_t i = recnum; i < log_.records.size(); ++i) out.push_back(ToProto(log_.records[i]));
  return out;
}

MeasurementLog Measurer::log() const {
  absl::MutexLock lock(&mu_);
  return log_;
}

}  // namespace vigil::node
