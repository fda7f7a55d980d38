#pragma once

#include <unistd.h>

#include <ostream>
#include <vector>

#include "absl/status/status.h"
#include "common/selector.h"

namespace vigil::node {

/// What `vigil-node watch` does, filled by main.cc from its flags.
struct WatchOptions {
  /// Processes to watch; empty watches every process except the node itself.
  std::vector<Selector> selectors;
  /// One JSON object (a vigil.v1.RuntimeEvent) per line instead of a readable line.
  bool json = false;
  /// Stop after this many seconds; 0 runs until SIGINT or SIGTERM.
  int duration_seconds = 0;
  /// Also attach the syscall entry tracepoints (ProbeOptions::syscall_entry_hooks).
  bool syscall_entry_hooks = false;
  /// The descriptor behind RunWatch's `out`. It is polled, so a reader that went away (the
  /// read end of a pipe closed) ends watch even while no event arrives; -1: noticed only when
  /// the next line cannot be written.
  int output_fd = STDOUT_FILENO;
};

/// Refuses options the probes cannot honour, before anything is loaded: a negative duration,
/// more than 16 selectors that need the kernel's exec-time matching (every selector without
/// a pid), a comm or exe pattern too long for the kernel's buffers, an exe pattern with '['
/// or '\\' (fnmatch(3) would read a bracket expression or an escape, the kernel matches only
/// '*' and '?'). InvalidArgument, with a one-line message naming the selector. RunWatch calls
/// it first; a caller that parses flags can call it to report a usage error.
absl::Status ValidateWatchOptions(const WatchOptions& options);

/// Loads the probes (no verifier, no TPM needed), seeds them with the running processes the
/// selectors match, writes one line to `summary` starting "watching: " once the probes are
/// attached (events from then on are reported), prints each event to `out` as one line
/// flushed at once, and on exit (duration elapsed, SIGINT, SIGTERM, or `out` no longer
/// writable) prints the active and refused hooks and the drop counters to `summary` (one
/// JSON ProbeStatus line in JSON mode). A closed output is a normal end, not an error.
absl::Status RunWatch(const WatchOptions& options, std::ostream& out, std::ostream& summary);

}  // namespace vigil::node
