#pragma once

// The result of `vigil-node check` (docs/check.md): the rule engine's workload verdicts
// folded into one row per rule and workload, and rendered as a table, JSON or JUnit XML.

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vigil/v1/attestation.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// The outcome of one rule for one workload, or of one of its findings.
enum class CheckOutcome { kPass, kWarning, kFail, kNotObserved };

/// "pass", "warning", "fail", "not_observed" (the JSON and JUnit names).
const char* CheckOutcomeName(CheckOutcome outcome);

/// One finding of a rule (a RuleOutcome of the engine).
struct CheckFinding {
  int pid = 0;
  int tid = 0;
  CheckOutcome outcome = CheckOutcome::kPass;
  std::string reason;
  std::string observed;
};

/// One rule for one workload: the worst of its findings (fail over not observed over
/// warning over pass).
struct CheckRow {
  std::string rule_id;
  std::string kind;
  std::string policy_id;
  std::string workload;
  std::string workload_id;
  std::vector<int> pids;
  CheckOutcome outcome = CheckOutcome::kPass;
  /// The observed text of the findings that did not pass (of the first finding when all
  /// passed), "pid N: " before each when the workload has several processes.
  std::string observed;
  std::string expected;
  std::vector<std::string> controls;
  std::vector<CheckFinding> findings;
};

/// Rule kinds that rest on a snapshot of a live process (seccomp, capabilities,
/// no_new_privs, read_only_root, memory): for a process never snapshotted alive they are
/// "not observed", never a pass or a plain failure.
bool NeedsLiveProcess(const std::string& kind);

/// The rows of `verdicts` in verdict order, then rule order. Findings of a rule that needs a
/// live process, about a pid in `unobserved`, are kNotObserved whatever their status.
std::vector<CheckRow> FoldVerdicts(const std::vector<v1::WorkloadVerdict>& verdicts,
                                   const std::set<int>& unobserved);

/// What the command did, for `check -- COMMAND`.
struct CommandResult {
  std::vector<std::string> argv;
  int pid = 0;
  /// Exit code when it exited, the signal when one ended it (both unset: still running when
  /// the check ended, which only happens when it could not be ended).
  std::optional<int> exit_code;
  std::optional<int> signal;
  /// The check ended it at the end of --duration (or on SIGINT/SIGTERM to vigil-node).
  bool ended_by_check = false;
  /// It exited on its own with a code other than 0 or by a signal the check did not send.
  bool failed() const;
};

/// One observed process, for the report.
struct ObservedProcess {
  int pid = 0;
  std::string exe;
  /// Live snapshots taken (0: never snapshotted alive, its snapshot rules are not observed).
  int snapshots = 0;
  /// Milliseconds after the observation started at which the snapshot used was taken.
  int64_t snapshot_ms = 0;
  bool exited = false;
};

/// How the exchange with the verifier of `check --verifier` ended.
enum class VerifierOutcome {
  /// The verifier appraised the report and acknowledged it: the verdict is on record.
  kAcknowledged,
  /// The verifier ended the stream with an error (an unknown or revoked node, a refused
  /// certificate, ...) before acknowledging: nothing is on record.
  kRefused,
  /// The verifier could not be reached, did not answer in time or became unavailable
  /// before acknowledging, or nothing could be sent (the node's certificate or key is
  /// unusable, the TPM could not quote): nothing is on record.
  kUnreachable,
};

/// "acknowledged", "refused", "unreachable" (the JSON names).
const char* VerifierOutcomeName(VerifierOutcome outcome);

/// What the verifier of `check --verifier` made of the check's report.
struct VerifierResult {
  std::string address;
  VerifierOutcome outcome = VerifierOutcome::kUnreachable;
  /// Why it was refused or unreachable ("" when acknowledged).
  std::string error;
  /// The policy bundle the verifier sent on the stream (its SHA-256 and policy ids); empty
  /// when it sent none.
  std::string bundle_sha256;
  std::vector<std::string> bundle_policy_ids;
  /// Each of the bundle's policies' digest (PolicyDigest), in bundle order.
  std::vector<std::string> bundle_policy_digests;
  /// The acknowledged verdict (kAcknowledged only).
  v1::Verdict verdict;
  /// Acknowledged with TRUST_AFFIRMING.
  bool affirming() const;
};

/// Everything a check found, ready to render.
struct CheckResult {
  std::string policy_file;
  std::vector<std::string> policy_ids;
  /// "command", "pid" or "select", and its text ("argv joined", "1234", the selectors).
  std::string target_mode;
  std::string target;
  std::optional<CommandResult> command;
  double observed_seconds = 0;
  std::vector<ObservedProcess> processes;
  uint64_t events = 0;
  v1::ProbeStatus probes;
  std::vector<std::string> gaps;
  std::vector<CheckRow> rows;
  /// Why the check failed without a failing row (no workload selected), or "".
  std::string problem;
  /// Why the check could not run (the probes could not be loaded, ...), or "". Rows are
  /// then empty and the exit code is 3.
  std::string error;
  /// With --verifier: the verifier's answer (unset when the check did not get that far).
  std::optional<VerifierResult> verifier;
  /// The exit code (docs/check.md, "Exit codes"), set by FinishResult.
  int exit_code = 0;
};

/// Exit codes of `vigil-node check`.
inline constexpr int kCheckPassed = 0;
inline constexpr int kCheckFailed = 1;
inline constexpr int kCheckUsage = 2;
inline constexpr int kCheckNotRun = 3;
inline constexpr int kCheckCommandFailed = 4;

/// Sets result.problem when no rule applied and result.exit_code: 3 when the check could
/// not run (result.error) or its verifier was unreachable, 1 when any row did not pass, no
/// rule applied, or the verifier refused the report or did not affirm it, else 4 when the
/// command failed on its own, else 0.
void FinishResult(CheckResult& result);

/// The readable report: one line per rule and workload (rule, workload, outcome), with the
/// observed and expected state and the controls below it, then a summary line.
std::string RenderTable(const CheckResult& result);

/// The report as one JSON object (docs/check.md, "JSON output"), with a trailing newline.
std::string RenderJson(const CheckResult& result);

/// The report as JUnit XML: one <testsuite> per workload, one <testcase> per rule with a
/// <failure> (observed vs expected) when it did not pass; a check where no rule applied is
/// one failed testcase, one that could not run one testcase with an <error>; with a
/// verifier, one more testcase "verifier verdict", failed unless the verifier affirmed.
std::string RenderJunit(const CheckResult& result);

}  // namespace vigil::node
