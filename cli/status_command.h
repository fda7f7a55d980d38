#pragma once

// `vigilctl status`: the fleet at a glance, one line per node and per workload.

#include <ostream>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "cli/nodes_command.h"
#include "vigil/v1/fleet.pb.h"

namespace vigil::cli {

/// The status table: per node its short id, hostname, connection, status and the age of its
/// last report; per workload its name, status and failing rules (rule id and first control).
/// A node's first workload shares the node's line, further workloads follow on lines of
/// their own. Statuses are coloured when `color` is set.
void PrintStatus(const v1::ListNodesResponse& nodes, absl::Time now, bool color, std::ostream& out);

/// Every failing rule of every workload in the nodes' latest verdicts (once per rule and
/// workload): node, workload, rule id and status, then what was observed, what the rule
/// expects and every control it evidences, on indented lines.
void PrintFailingRules(const v1::ListNodesResponse& nodes, std::ostream& out);

/// `vigilctl status`: ListNodes, then the table (coloured on a terminal), followed by the
/// failing rules when `rules` is set, or proto3 JSON.
int RunStatus(const FleetConnectionOptions& connection, bool json, bool rules, std::ostream& out,
              std::ostream& err);

/// Adds `status [--json] [--rules]` under `app`; exit code 0, 1 (verifier failed or refused) or 2
/// (bad flags, unreadable credentials) to `*exit_code`.
void RegisterStatusCommand(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
