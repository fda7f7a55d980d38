#pragma once

// `vigilctl policy apply|list`: reference policies stored on the verifier.

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "cli/nodes_command.h"
#include "vigil/v1/fleet.pb.h"

namespace vigil::cli {

/// PutPolicy with the YAML in `path`; prints "applied policy NAME@REVISION (sha256 ...)" and
/// one "warning: ..." line per lint warning. Exit 0, 1 (refused, e.g. a malformed policy,
/// with the verifier's line and column), 2 (unreadable file, bad flags).
int RunPolicyApply(const FleetConnectionOptions& connection, const std::string& path,
                   std::ostream& out, std::ostream& err);

/// The current revision of every policy: a table, or the ListPoliciesResponse as proto3
/// JSON.
int RunPolicyList(const FleetConnectionOptions& connection, bool json, std::ostream& out,
                  std::ostream& err);

/// Adds `apply FILE` and `list [--json]` to the `policy` command group.
void AddPolicyRemoteCommands(CLI::App* policy, int* exit_code);

}  // namespace vigil::cli
