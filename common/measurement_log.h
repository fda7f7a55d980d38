#pragma once

// The node's measurement log: every extend of the measurement PCR, as records of the TCG
// Canonical Event Log (CEL) in its JSON form, wrapped with the boot they belong to.
//
// File format (UTF-8 JSON, one object):
//   {
//     "format": "vigil-cel-json/1",
//     "boot_id": "<contents of /proc/sys/kernel/random/boot_id>",
//     "records": [
//       {"recnum": 0, "pcr": 15,
//        "digests": [{"hashAlg": "sha256", "digest": "<64 hex>"}],
//        "content_type": "vigil",
//        "content": {"event_type": "vigil-node-binary", "detail": "/usr/bin/vigil-node"}},
//       ...
//     ]
//   }
// Each record is a CEL-JSON record (recnum, pcr, digests, content_type, content); Vigil's
// events use content_type "vigil" with the event type and a human-readable detail. The
// digest is exactly what was extended: PCR_new = SHA-256(PCR_old || digest).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "google/protobuf/repeated_field.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil {

/// Event types of MeasurementLogEntry.event_type.
inline constexpr char kEventNodeBinary[] = "vigil-node-binary";
inline constexpr char kEventBpfObject[] = "bpf-object";
inline constexpr char kEventBpfProgramTags[] = "bpf-program-tags";
inline constexpr char kEventPolicyBundle[] = "policy-bundle";
/// The node ran without a policy bundle; digest = SHA-256("vigil: no policy bundle").
inline constexpr char kEventNoPolicy[] = "no-policy-bundle";
/// Marks the start of one node process (detail: pid and start time); lets a verifier see
/// restarts within a boot.
inline constexpr char kEventNodeStart[] = "node-start";
/// The first record of a new log epoch: the node found its measurement PCR reset (a TPM
/// Restart, e.g. hibernate and resume, resets PCRs without a reboot) and re-extends its start
/// sequence after this record; digest = SHA-256("vigil-tpm-restart"). The PCR's value is the
/// replay of the records from the last such record on (or from record 0).
inline constexpr char kEventTpmRestart[] = "tpm-restart";
/// Recorded (and extended) by a node that found, on restart, that its existing log does not
/// replay to the PCR. Its detail states both values. A verifier that sees this event type
/// reports NODE_LOG_MISMATCH.
inline constexpr char kEventLogMismatch[] = "log-mismatch";
/// One batch the node wrote to its spool while its verifier was unreachable; digest =
/// SHA-256 of the batch's payload, detail names the spool sequence. Not a reference value:
/// the verifier checks each spooled batch it receives against these records.
inline constexpr char kEventSpoolBatch[] = "spool-batch";

/// One measurement: a CEL record.
struct MeasurementRecord {
  uint64_t recnum = 0;
  uint32_t pcr = 0;
  Sha256Digest digest{};
  std::string event_type;
  std::string detail;

  friend bool operator==(const MeasurementRecord&, const MeasurementRecord&) = default;
};

/// The log of one boot.
struct MeasurementLog {
  std::string boot_id;
  std::vector<MeasurementRecord> records;

  friend bool operator==(const MeasurementLog&, const MeasurementLog&) = default;
};

/// Parses the JSON form above. Untrusted input: any malformed field is InvalidArgument;
/// records must be numbered 0, 1, 2, ... in order.
absl::StatusOr<MeasurementLog> ParseMeasurementLog(std::string_view json);

/// Serializes to the JSON form above (parseable by ParseMeasurementLog).
std::string SerializeMeasurementLog(const MeasurementLog& log);

/// Reads and parses the log at `path`. NotFound when the file does not exist.
absl::StatusOr<MeasurementLog> ReadMeasurementLog(const std::string& path);

/// Writes `log` to `path` so that a crash leaves either the old or the new file, never a
/// partial one: write a temporary file in the same directory (mode 0600), fsync, rename,
/// fsync the directory. Creates the directory (0700) when missing.
absl::Status WriteMeasurementLog(const std::string& path, const MeasurementLog& log);

/// The value a PCR (initially all zero) holds after extending, in order, the digests of the
/// records for `pcr`. Records for other PCRs are skipped.
Sha256Digest ReplayPcr(const std::vector<MeasurementRecord>& records, uint32_t pcr);

/// Extends `pcr` with the digest of the wire entry `entry`. Fails with InvalidArgument when
/// that digest is not 32 bytes.
absl::Status ExtendPcr(Sha256Digest& pcr, const v1::MeasurementLogEntry& entry);

/// Same as ReplayPcr over wire entries (Evidence.log_entries). Fails with InvalidArgument when
/// an entry for `pcr` has a digest that is not 32 bytes.
absl::StatusOr<Sha256Digest> ReplayPcr(
    const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& entries, uint32_t pcr);

/// The value of every PCR that the wire entries `entries` (any range of
/// v1::MeasurementLogEntry) extend, each replayed in order from all zero. Fails with
/// InvalidArgument when an entry's digest is not 32 bytes.
template <typename Entries>
absl::StatusOr<std::map<uint32_t, Sha256Digest>> ReplayPcrs(const Entries& entries) {
  std::map<uint32_t, Sha256Digest> pcrs;
  for (const v1::MeasurementLogEntry& e : entries) {
    if (absl::Status st = ExtendPcr(pcrs[e.pcr()], e); !st.ok()) return st;
  }
  return pcrs;
}

/// Index of the first record of the current log epoch: the last kEventTpmRestart record, or 0.
size_t CurrentEpochStart(const std::vector<MeasurementRecord>& records);

/// The wire form of one record.
v1::MeasurementLogEntry ToProto(const MeasurementRecord& record);

}  // namespace vigil
