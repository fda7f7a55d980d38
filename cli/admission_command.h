#pragma once

// `vigilctl admission check`: may work run on a node (or one of its workloads) now?

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "cli/nodes_command.h"
#include "nlohmann/json.hpp"
#include "vigil/v1/fleet.pb.h"

namespace vigil::cli {

/// Exit codes of `admission check`: a deny is never 0, and is told apart from a failure to
/// decide.
inline constexpr int kExitAllowed = 0;
inline constexpr int kExitDenied = 1;
/// Bad flags, unreadable credentials.
inline constexpr int kExitAdmissionUsage = 2;
/// No decision: the verifier could not be reached or refused the call.
inline constexpr int kExitNoDecision = 3;

struct AdmissionOptions {
  FleetConnectionOptions connection;
  std::string node_id;
  std::string workload;
  /// A duration ("30s", "5m"); empty for the verifier's default.
  std::string max_age;
  bool json = false;
};

/// The decision as JSON: decision ("allow" or "deny"), allowed, node_id, workload, status,
/// reasons, ear_token, appraised (RFC 3339 or "never") and appraised_unix_nano.
nlohmann::json AdmissionJson(const AdmissionOptions& options,
                             const v1::CheckAdmissionResponse& response);

/// CheckAdmission, printed as text or JSON; returns one of the exit codes above.
int RunAdmissionCheck(const AdmissionOptions& options, std::ostream& out, std::ostream& err);

/// Adds `admission check` under `app`.
void RegisterAdmissionCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
