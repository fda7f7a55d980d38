#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// What the verifier keeps of a node's measurement log for the current boot, bounded whatever
/// the log's length: how many entries it accepted, where the current epoch starts, the
/// epoch's replayed PCR values, and the few entries later appraisals consult (the current
/// epoch's latest node-start record with the start sequence after it, and its latest policy
/// record). Appraisal joins a report's new entries onto this, never onto a copy of the log.
struct MeasurementState {
  /// Entries of the boot's log accepted so far: the record number the node sends from next.
  uint64_t entries = 0;
  /// Record number of the current epoch's first entry (its last tpm-restart record, or 0).
  uint64_t epoch_start = 0;
  /// The current epoch replayed: PCR index -> value, for each PCR its entries extend (and the
  /// measurement PCR).
  std::map<uint32_t, Sha256Digest> pcrs;
  /// Of the current epoch, ascending by record number: the latest node-start record and the
  /// start-sequence records after it, then the latest policy record when it comes later.
  std::vector<v1::MeasurementLogEntry> kept;

  /// The kept entry with record number `recnum`, or null.
  const v1::MeasurementLogEntry* Kept(uint64_t recnum) const;

  /// The state for `log`, the whole log of one boot numbered from 0 (a database written by an
  /// earlier version held logs whole): InvalidArgument when a record number is out of place
  /// or a digest is not 32 bytes.
  static absl::StatusOr<MeasurementState> FromLog(const std::vector<v1::MeasurementLogEntry>& log);
};

/// What MeasurementState::kept keeps of `epoch`, the entries of one epoch (or its tail), in
/// order.
std::vector<v1::MeasurementLogEntry> KeptEntries(const std::vector<v1::MeasurementLogEntry>& epoch);

}  // namespace vigil::verifier
