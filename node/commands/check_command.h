#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/selector.h"
#include "node/agent/config.h"

namespace vigil::node {

/// What `vigil-node check` does, filled by main.cc from its flags (docs/check.md).
struct CheckOptions {
  /// The RuntimePolicy file (YAML) whose rules are evaluated.
  std::string policy_path;
  /// Exactly one way to name the workload: a running process (and its descendants), the
  /// processes selectors match (and theirs), or a command vigil-node starts itself.
  int pid = 0;
  std::vector<Selector> selectors;
  std::vector<std::string> command;
  /// How long to observe. With a command: until it exits or this many seconds pass,
  /// whichever comes first (0: until it exits, however long). Otherwise: this long.
  int duration_seconds = 10;
  /// The report as JSON on standard output instead of the table.
  bool json = false;
  /// Also write the report as JUnit XML here ("" for none).
  std::string junit_path;
  /// Also attach the syscall entry tracepoints (ProbeOptions::syscall_entry_hooks).
  bool syscall_entry_hooks = false;
  /// With --verifier: the node this check acts as (identity, TPM, verifier address, as
  /// `vigil-node run` takes them); its report is quoted and put on the verifier's record
  /// (docs/check.md, "On record: --verifier"). Unset: a local check only.
  std::optional<NodeConfig> node;
};

/// Refuses what can be refused before anything runs: not exactly one of --pid, --select and
/// a command, a negative duration, --duration 0 without a command, selectors the probes
/// cannot match (ValidateWatchOptions). InvalidArgument with a one-line message.
absl::Status ValidateCheckOptions(const CheckOptions& options);

/// Runs the check: reads and parses the policy, loads the probes, observes the workload
/// (starting the command, for a command), evaluates the policy with the rule engine the
/// verifier uses (common/policy) and writes the report to `out` (table or JSON) and, when
/// asked, the JUnit file. Diagnostics go to `err`. Returns the exit code: 0 every rule
/// passed; 1 a rule failed, warned or was not observed, or no rule applied; 2 a usage error
/// (options, the policy file, no such pid, selectors matching nothing, a command that
/// cannot be run); 3 the check could not run (probes, snapshots, writing the report); 4
/// every rule passed but the command failed on its own. With options.node (--verifier) the
/// check first takes the state directory's lock (held: 2) and opens the TPM (enrolling when
/// needed; failing: 3), then sends its quoted report to the verifier after the observation
/// and reports the verdict: a verifier that refuses the report or does not affirm it makes
/// the exit code 1 (unless it is 3), one that cannot be reached makes it 3.
int RunCheck(const CheckOptions& options, std::ostream& out, std::ostream& err);

}  // namespace vigil::node
