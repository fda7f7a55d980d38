#pragma once

// `vigilctl jwks`: the public keys that verify the verifier's EAR tokens.

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "cli/nodes_command.h"

namespace vigil::cli {

/// GetJwks; prints the JWKS document, or writes it to `out_path` atomically (replacing it)
/// when that is not empty. Exit 0, 1 (verifier, file), 2 (bad flags).
int RunJwks(const FleetConnectionOptions& connection, const std::string& out_path,
            std::ostream& out, std::ostream& err);

/// Adds `jwks [--out FILE]` under `app`.
void RegisterJwksCommand(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
