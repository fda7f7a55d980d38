#pragma once

// `vigilctl ear verify TOKEN|- --jwks FILE | --verifier ADDRESS`: checks an EAR token (the
// verifier's signed appraisal result) against a JWKS, read from a file (offline) or fetched
// from the verifier's GetJwks, and prints its claims.

#include <istream>
#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "cli/nodes_command.h"

namespace vigil::cli {

/// What `ear verify` checks and where its keys come from.
struct EarVerifyOptions {
  /// The compact JWS, or "-" to read it from standard input.
  std::string token;
  /// A JWKS file (as GetJwks returns it); empty to fetch it from the verifier.
  std::string jwks_path;
  /// Fetch the JWKS with GetJwks over `connection` instead of reading `jwks_path`.
  bool from_verifier = false;
  FleetConnectionOptions connection;
};

/// The JWKS document `options` names: the file's contents, or the verifier's GetJwks
/// answer (an error says why the verifier could not be asked or refused).
absl::StatusOr<std::string> LoadJwks(const EarVerifyOptions& options);

/// Verifies the token and prints its claims (pretty JSON) to `out`. Returns 0 when the token
/// is valid, 1 when it is not (the reason goes to `err`), 2 when the token or the JWKS cannot
/// be had (unreadable file, verifier unreachable or refusing, bad flags).
int RunEarVerify(const EarVerifyOptions& options, std::istream& in, std::ostream& out,
                 std::ostream& err);

/// Adds `ear verify` under `app`; its exit code goes to `*exit_code`.
void RegisterEarCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
