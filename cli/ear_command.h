#pragma once

// `vigilctl ear verify TOKEN|- --jwks FILE`: checks an EAR token (the verifier's signed
// appraisal result) offline against a JWKS and prints its claims. Links only vigil_common's
// common/ear_verify, not the verifier.

#include <istream>
#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"

namespace vigil::cli {

/// What `ear verify` checks and where its keys come from.
struct EarVerifyOptions {
  /// The compact JWS, or "-" to read it from standard input.
  std::string token;
  /// A JWKS file (as GetJwks returns it). Today the only key source; a Fleet API source
  /// belongs in LoadJwks beside it.
  std::string jwks_path;
};

/// The JWKS document `options` names.
absl::StatusOr<std::string> LoadJwks(const EarVerifyOptions& options);

/// Verifies the token and prints its claims (pretty JSON) to `out`. Returns 0 when the token
/// is valid, 1 when it is not (the reason goes to `err`), 2 when the token or the JWKS cannot
/// be read.
int RunEarVerify(const EarVerifyOptions& options, std::istream& in, std::ostream& out,
                 std::ostream& err);

/// Adds `ear verify` under `app`; its exit code goes to `*exit_code`.
void RegisterEarCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
