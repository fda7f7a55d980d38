#pragma once

// `vigilctl watch`: status changes as the verifier stores them, resumable by cursor.

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "cli/nodes_command.h"
#include "vigil/v1/fleet.pb.h"

namespace vigil::cli {

struct WatchOptions {
  FleetConnectionOptions connection;
  std::string node_id;
  /// Resume after this cursor; empty starts with changes stored from now on.
  std::string cursor;
  bool json = false;
  /// Stop after this many changes; 0 watches until interrupted.
  int max_changes = 0;
  /// Wait before the first reconnection; doubled after each failed attempt up to
  /// max_backoff, and reset by every change received.
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(30);
};

/// One change as a line: cursor, appraisal time, short node id, workload ("-" for the node
/// itself), previous and new status, then the failing rules (workload) or reasons (node).
std::string FormatChange(const v1::VerdictChange& change, bool color);

/// Streams WatchVerdicts and prints each change (a line, or proto3 JSON on one line),
/// flushing after each. When the stream ends with UNAVAILABLE, or the verifier closes it,
/// reconnects after a backoff, resuming after the last cursor printed, so that nothing is
/// missed or printed twice. Any other error ends the watch (exit 1).
int RunWatch(const WatchOptions& options, std::ostream& out, std::ostream& err);

/// Adds `watch` under `app`.
void RegisterWatchCommand(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
