#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/measurement_log.h"
#include "node/tpm/node_tpm.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::node {

/// Digest extended for a "node-start" event (constant, so verifiers can know it):
/// SHA-256("vigil-node-start"). The detail carries the pid and start time.
Sha256Digest NodeStartDigest();
/// Digest extended for a "log-mismatch" event: SHA-256("vigil-log-mismatch").
Sha256Digest LogMismatchDigest();
/// Digest extended when the node runs without a policy bundle:
/// SHA-256("vigil: no policy bundle").
Sha256Digest NoPolicyDigest();
/// Digest extended for a "tpm-restart" event, the first record of a new log epoch:
/// SHA-256("vigil-tpm-restart").
Sha256Digest TpmRestartDigest();

/// Extends the node's measurement PCR and keeps the measurement log (TCG CEL, JSON form)
/// in step with it. Thread-safe.
///
/// At Start, within the boot that wrote an existing log (same
/// /proc/sys/kernel/random/boot_id), the log is replayed and compared with the PCR: equal
/// means the node simply continues the log; different means the log cannot be trusted to
/// explain the PCR, and a "log-mismatch" event recording both values is appended (and
/// extended) so the evidence says so (the verifier reports NODE_LOG_MISMATCH). A log from
/// another boot, or none, starts a new log.
///
/// Log epochs: a TPM Restart (Shutdown(STATE) then Startup(CLEAR), as hibernate and resume
/// do) resets the PCR without a reboot. When the PCR reads all zero while the current epoch
/// replays to something else, the node opens a new epoch: a "tpm-restart" record, a fresh
/// "node-start" record, then the records this process measured since its own start (binary,
/// BPF object and tags, and of the policy records only the latest: the bundle it runs with
/// now; then the spool-batch records, so spooled batches stay provable) extended again, so the new
/// epoch holds the full start sequence the verifier requires. Start does this for a log it finds
/// reset; ReconcileWithPcr does it at run time (the sealer calls it before each quote).
///
/// Start sequence, in the order the verifier requires: node-start (Start), vigil-node-binary,
/// bpf-object, bpf-program-tags, then policy-bundle or no-policy-bundle.
class Measurer {
 public:
  struct Options {
    /// PCR to extend. 16 and 23 (resettable) are refused unless allow_resettable_pcr; PCRs
    /// 0-7 belong to the boot chain and are refused too.
    uint32_t pcr = 15;
    bool allow_resettable_pcr = false;
    /// Measurement log file (NodeConfig.measurement_log_path); its directory is created 0700.
    std::string log_path = "/run/vigil/measurements.json";
    /// Source of the boot id (tests point it elsewhere to simulate a reboot).
    std::string boot_id_path = "/proc/sys/kernel/random/boot_id";
  };

  /// Opens (or starts) the log, replays it against the PCR as described above and records a
  /// "node-start" event.
  static absl::StatusOr<std::unique_ptr<Measurer>> Start(tpm::NodeTpm* tpm, Options options);

  /// Extends the PCR with `digest` and appends the event to the log (atomically).
  absl::Status Measure(const std::string& event_type, const std::string& detail,
                       const Sha256Digest& digest);
  /// Same as Measure; returns the record number of the new log record.
  absl::StatusOr<uint64_t> MeasureNumbered(const std::string& event_type, const std::string& detail,
                                           const Sha256Digest& digest);

  /// Measures a file's SHA-256 (the node binary: "/proc/self/exe").
  absl::Status MeasureFile(const std::string& event_type, const std::string& path);
  /// Measures the node binary, /proc/self/exe (detail: its resolved path).
  absl::Status MeasureNodeBinary();
  /// Measures the BPF object the node loads (the embedded ELF bytes).
  absl::Status MeasureBpfObject(const std::string& name, std::string_view object_bytes);
  /// Measures the kernel's tags of the loaded BPF programs, e.g. "name:tag,name:tag".
  absl::Status MeasureBpfProgramTags(const std::string& tags);
  /// Measures the policy bundle file, or the distinct "no-policy-bundle" event when `path`
  /// is empty.
  absl::Status MeasurePolicy(const std::string& path);

  /// Compares the PCR with the replay of the current epoch. Equal: nothing to do. PCR all zero
  /// (a TPM Restart): opens a new epoch and measures the start sequence again, as described
  /// above. Anything else: records one "log-mismatch" event (once per process).
  absl::Status ReconcileWithPcr();

  /// Log records from `recnum` on, in wire form.
  std::vector<v1::MeasurementLogEntry> EntriesFrom(uint64_t recnum) const;
  /// A copy of the whole log.
  MeasurementLog log() const;
  /// True when Start or ReconcileWithPcr found that the log did not replay to the PCR.
  bool log_mismatch() const { return log_mismatch_.load(); }
  uint32_t pcr() const { return options_.pcr; }

 private:
  Measurer(tpm::NodeTpm* tpm, Options options) : tpm_(tpm), options_(std::move(options)) {}
  absl::Status MeasureLocked(const std::string& event_type, const std::string& detail,
                             const Sha256Digest& digest) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Compares the PCR with the current epoch's replay and acts as ReconcileWithPcr says;
  absl::Status ReconcileLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status MeasureNodeStartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  tpm::NodeTpm* tpm_;
  const Options options_;
  std::atomic<bool> log_mismatch_{false};
  mutable absl::Mutex mu_;
  MeasurementLog log_ ABSL_GUARDED_BY(mu_);
  // Index of this process's node-start record in the current epoch (what a new epoch
  // measures again follows it); SIZE_MAX before Start records it.
  size_t own_start_ ABSL_GUARDED_BY(mu_) = SIZE_MAX;
};

}  // namespace vigil::node
