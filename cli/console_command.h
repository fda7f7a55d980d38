#pragma once

// `vigilctl console token`: a short-lived sign-in token for the verifier's web console,
// signed offline with the operator's or auditor's own client key (docs/console.md).

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"

namespace vigil::cli {

struct ConsoleTokenOptions {
  /// --pki-dir DIR --client NAME, or --cert and --key.
  std::string pki_dir;
  std::string client;
  std::string cert_path;
  std::string key_path;
  /// How long the token may be exchanged for a session (at most 15 minutes).
  absl::Duration lifetime = absl::Minutes(10);
  /// The console's base URL ("https://host:port"); when set, a sign-in link is printed
  /// with the token in its fragment (never sent to a server, never in access logs).
  std::string url;
};

/// Mints the token and prints it (or the sign-in link) on `out`. Exit 0, or 2 when the
/// flags, certificate or key will not do (the reason on `err`).
int RunConsoleToken(const ConsoleTokenOptions& options, absl::Time now, std::ostream& out,
                    std::ostream& err);

/// Adds `console token [--lifetime D] [--url URL]` and its credential flags under `app`.
void RegisterConsoleCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
