#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "node/procfs/snapshotter.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// What `vigil-node inspect` does, filled by main.cc from its flags.
struct InspectOptions {
  /// The process to inspect.
  int pid = 0;
  /// Print the ProcessSnapshot as JSON instead of text.
  bool json = false;
  /// Syscalls the seccomp filters are evaluated for.
  std::vector<std::string> syscalls;
  /// Open files to report as configuration or secrets.
  std::vector<SensitivePath> sensitive_paths;
};

/// Snapshots one process (no verifier, no TPM) and prints it to `out`: the text of
/// PrintSnapshot, or the ProcessSnapshot as JSON (every field, proto field names) with each
/// gap as one "vigil-node: gap: ..." line on `err`. Fails as Snapshotter::Snapshot does, the
/// message starting "pid N: ".
absl::Status RunInspect(const InspectOptions& options, std::ostream& out, std::ostream& err);

/// The text form of a snapshot, one "key  value" line per field (seccomp verdicts per ABI with
/// bypasses named, capability sets by name, divergent threads), then one "gap" line per entry
/// of `gaps`.
void PrintSnapshot(const v1::ProcessSnapshot& snapshot, const std::vector<std::string>& gaps,
                   std::ostream& out);

}  // namespace vigil::node
