#pragma once

// `vigilctl verdicts`: stored verdicts, filtered, newest first, across pages.

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "cli/nodes_command.h"
#include "vigil/v1/fleet.pb.h"

namespace vigil::cli {

struct VerdictsOptions {
  FleetConnectionOptions connection;
  std::string node_id;
  std::string workload;
  /// Status names ("contraindicated", "WARNING"); each may hold several, comma-separated.
  std::vector<std::string> statuses;
  /// RFC 3339 times or durations before now ("1h"); empty for no bound.
  std::string since;
  std::string until;
  /// At most this many verdicts, across as many pages as that takes.
  uint32_t limit = 100;
  bool json = false;
};

/// The ListVerdicts request for `options` (first page), or INVALID_ARGUMENT for a bad status
/// or time.
absl::StatusOr<v1::ListVerdictsRequest> VerdictsRequest(const VerdictsOptions& options,
                                                        absl::Time now);

/// One line per verdict: when it was appraised, the node, status, reasons and the failing
/// rules of each workload.
void PrintVerdicts(const v1::ListVerdictsResponse& verdicts, bool color, std::ostream& out);

/// Follows next_page_token until `limit` verdicts or the last page; prints the table or the
/// collected verdicts as one ListVerdictsResponse in proto3 JSON (its next_page_token
/// continues where --limit stopped). Exit 0, 1 (verifier), 2 (bad flags).
int RunVerdicts(const VerdictsOptions& options, std::ostream& out, std::ostream& err);

/// Adds `verdicts` under `app`.
void RegisterVerdictsCommand(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
