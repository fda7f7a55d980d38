#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "google/protobuf/repeated_field.h"
#include "verifier/measurement_state.h"
#include "verifier/policy_set.h"
#include "verifier/reference_values.h"
#include "vigil/v1/attestation.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {

/// One failed appraisal check: its reason and a line for operators (attacker-controlled text
/// in it is escaped).
struct AppraisalFailure {
  v1::AppraisalReason reason;
  std::string detail;
};

/// The start sequence a node measures, in order, after each node-start record; the last
/// element is policy-bundle or no-policy-bundle.
const std::vector<std::string>& StartSequence();

/// Joins `delta` (Evidence.log_entries) onto `held` (what the verifier holds of the current
/// boot's log): entries already held must follow on as before (those `held` keeps must be
/// resent unchanged; the others are not compared: they were appraised when first sent and only
/// their replay is kept), and new ones, appended to `*fresh`, must follow on.
std::optional<AppraisalFailure> ExtendLog(
    const google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry>& delta,
    const MeasurementState& held, std::vector<v1::MeasurementLogEntry>* fresh);

/// What the TPM's counters say happened since the AK's previous accepted quote.
enum class TpmLifecycle {
  /// No previous quote (first quote, or the verifier lost its state), or a TPM reset (a
  /// reboot): the log is the whole log of a boot.
  kUnknownOrReset,
  /// Same resetCount and restartCount: the same log epoch continues.
  kSame,
  /// restartCount increased within one resetCount: a TPM Restart (Shutdown(STATE) then
  /// Startup(CLEAR), e.g. hibernate and resume) reset the PCRs.
  kRestarted,
};

/// Index of the first entry of the log's current epoch: the last "tpm-restart" entry, or 0.
size_t EpochStart(const std::vector<v1::MeasurementLogEntry>& log);

/// The measurement-log checks, in order, on `held` (what the verifier holds of this boot's
/// log) joined with `fresh` (the entries after it, from ExtendLog):
///  1. a "log-mismatch" entry anywhere in the boot's log: NODE_LOG_MISMATCH;
///  2. the current epoch must start with an entry the verifier did not hold before when the
///     TPM restarted (MEASUREMENT_MISSING), and only then (LOG_REPLAY_MISMATCH);
///  3. the epoch replays to the quoted measurement PCR (LOG_REPLAY_MISMATCH), from the held
///     replay unless a new epoch starts;
///  4. every new entry is a reference value of its own event type, or a policy-bundle record
///     of a bundle `policies` (nullable) holds; every entry `held` keeps is a reference value
///     still, or a policy-bundle record (UNKNOWN_MEASUREMENT); "spool-batch" records are
///     exempt (their digests are checked when their batch arrives, verifier/spool_ledger.h);
///  5. after the epoch's last node-start come the rest of StartSequence(), in order
///     (MEASUREMENT_MISSING, MEASUREMENT_OUT_OF_ORDER).
/// On success `*next` is the state to hold once the evidence is accepted, and `*epoch` the
/// current epoch's entries later checks consult (CheckImaEntry, CheckPolicyBinding): those
/// `held` keeps of it, then the new ones.
std::optional<AppraisalFailure> CheckMeasurementLog(
    const MeasurementState& held, const std::vector<v1::MeasurementLogEntry>& fresh,
    const std::map<uint32_t, std::string>& pcr_values, uint32_t measurement_pcr,
    TpmLifecycle lifecycle, const ReferenceValues& reference_values, const PolicySet* policies,
    MeasurementState* next, std::vector<v1::MeasurementLogEntry>* epoch);

/// Compares the kernel's IMA entry for the node binary (RuntimeReport.ima, when present and
/// SHA-256) with the vigil-node-binary record after the last node-start of the current epoch
/// of `log` (the epoch CheckMeasurementLog checked and returned): different file hashes are
/// UNKNOWN_MEASUREMENT. Returns a note for the verdict detail otherwise ("" when IMA is
/// absent).
std::optional<AppraisalFailure> CheckImaEntry(const std::vector<v1::MeasurementLogEntry>& log,
                                              const v1::ImaStatus& ima, std::string* note);

}  // namespace vigil::verifier
