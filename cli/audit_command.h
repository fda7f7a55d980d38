#pragma once

// `vigilctl audit log`: the operators' actions the verifier recorded, newest first.

#include <cstdint>
#include <ostream>

#include "CLI/CLI.hpp"
#include "cli/nodes_command.h"

namespace vigil::cli {

/// ListAudit, following page tokens until `limit` records; a table (TIME, ACTOR, ACTION,
/// TARGET, DETAIL) or one ListAuditResponse as proto3 JSON. Exit 0, 1, 2.
int RunAuditLog(const FleetConnectionOptions& connection, uint32_t limit, bool json,
                std::ostream& out, std::ostream& err);

/// Adds `audit log [--limit N] [--json]` under `app`.
void RegisterAuditCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
