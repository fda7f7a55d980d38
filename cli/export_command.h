#pragma once

// `vigilctl export oscal`: the verifier's OSCAL assessment-results for a time range, to a file.

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "cli/nodes_command.h"

namespace vigil::cli {

struct ExportOptions {
  FleetConnectionOptions connection;
  /// RFC 3339 times (or durations before now): since inclusive, until exclusive.
  std::string since;
  std::string until;
  std::string out_path;
  /// Replace an existing --out file.
  bool force = false;
};

/// ExportAssessment, written to options.out_path atomically. Refuses (exit 2) an existing
/// file without --force; exit 1 when the verifier fails or the file cannot be written.
int RunExportOscal(const ExportOptions& options, std::ostream& out, std::ostream& err);

/// Adds `export oscal` under `app`.
void RegisterExportCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
