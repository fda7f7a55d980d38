#pragma once

#include <functional>

#include "CLI/CLI.hpp"

namespace vigil::node {

/// Adds the `check` subcommand's flags to `app` (docs/check.md); once they parse, `*action`
/// runs the check (RunCheck) and returns its exit code. Flags that parse but do not make a
/// check (two ways of naming the workload, a selector the probes cannot match) are a
/// CLI::ValidationError, like any other usage error.
void RegisterCheckCommand(CLI::App& app, std::function<int()>* action);

}  // namespace vigil::node
