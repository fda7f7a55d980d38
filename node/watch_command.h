#pragma once

#include <ostream>
#include <vector>

#include "absl/status/status.h"
#include "node/selector.h"

namespace vigil::node {

/// What `vigil-node watch` does, filled by main.cc from its flags.
struct WatchOptions {
  /// Processes to watch; empty watches every process except the node itself.
  std::vector<Selector> selectors;
  /// One JSON object (a vigil.v1.RuntimeEvent) per line instead of a readable line.
  bool json = false;
  /// Stop after this many seconds; 0 runs until SIGINT or SIGTERM.
  int duration_seconds = 0;
};

/// Loads the probes (no verifier, no TPM needed), seeds them with the running processes the
/// selectors match, prints events to `out` as they arrive, and on exit (duration elapsed,
/// SIGINT or SIGTERM) prints the active and refused hooks and the drop counters to `summary`
/// (as a JSON ProbeStatus in JSON mode).
absl::Status RunWatch(const WatchOptions& options, std::ostream& out, std::ostream& summary);

}  // namespace vigil::node
