#pragma once

// `vigilctl audit`: the operators' actions the verifier recorded (`log`), the static audit of
// Kubernetes manifests (`manifests`) and their comparison with what the nodes observe
// (`compare`, cli/audit_compare.h).

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "cli/nodes_command.h"

namespace vigil::cli {

/// ListAudit, following page tokens until `limit` records; a table (TIME, ACTOR, ACTION,
/// TARGET, DETAIL) or one ListAuditResponse as proto3 JSON. Exit 0, 1, 2.
int RunAuditLog(const FleetConnectionOptions& connection, uint32_t limit, bool json,
                std::ostream& out, std::ostream& err);

/// What `audit manifests` reads and writes.
struct ManifestAuditOptions {
  /// Manifest files and directories.
  std::vector<std::string> paths;
  /// A RuntimePolicy file whose seccomp and capabilities rules sharpen the checks.
  std::string policy_file;
  bool json = false;
  /// Where to write JUnit XML ("" for none).
  std::string junit_path;
};

/// Audits the manifests: a table (or one JSON document) of findings and a summary on `out`.
/// Exit 0 when no container has a finding, 1 when one has, 2 for a missing file, a YAML
/// error (FILE:LINE:COL on `err`), a bad policy or an unwritable --junit file.
int RunAuditManifests(const ManifestAuditOptions& options, std::ostream& out, std::ostream& err);

/// Adds `audit log`, `audit manifests` and `audit compare` under `app`.
void RegisterAuditCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
