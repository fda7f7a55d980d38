#pragma once

// `vigilctl policy lint FILE...`: checks RuntimePolicy files offline (docs/policy.md).

#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace vigil::cli {

/// Lints each file: prints every error and warning as "FILE:LINE:COL: error: ..." or
/// "...: warning: ..." to `out`, and returns 1 when any file has an error (or cannot be
/// read), 0 otherwise. Two policies of the same name across the files are an error too.
int LintPolicies(const std::vector<std::string>& files, std::ostream& out);

/// Adds `policy lint FILE...` under `app`; its exit code goes to `*exit_code`.
void RegisterPolicyCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
