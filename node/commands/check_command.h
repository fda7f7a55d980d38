#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/selector.h"

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
/// every rule passed but the command failed on its own.
int RunCheck(const CheckOptions& options, std::ostream& out, std::ostream& err);

}  // namespace vigil::node
