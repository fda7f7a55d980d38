#include "cli/verdicts_command.h"

#include <unistd.h>

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/fleet_client.h"
#include "cli/fleet_format.h"
#include "cli/table.h"
#include "cli/time_flags.h"

namespace vigil::cli {

absl::StatusOr<v1::ListVerdictsRequest> VerdictsRequest(const VerdictsOptions& options,
                                                        absl::Time now) {
  v1::ListVerdictsRequest request;
  request.set_node_id(options.node_id);
  request.set_workload(options.workload);
  for (const std::string& list : options.statuses) {
    for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
      absl::StatusOr<v1::TrustStatus> status = ParseStatus(name);
      if (!status.ok()) return status.status();
      request.add_statuses(*status);
    }
  }
  if (!options.since.empty()) {
    absl::StatusOr<absl::Time> since = ParseTimeFlag(options.since, now);
    if (!since.ok())
      return absl::InvalidArgumentError(absl::StrCat("--since: ", since.status().message()));
    request.set_since_unix_nano(ToUnixNano(*since));
  }
  if (!options.until.empty()) {
    absl::StatusOr<absl::Time> until = ParseTimeFlag(options.until, now);
    if (!until.ok())
      return absl::InvalidArgumentError(absl::StrCat("--until: ", until.status().message()));
    request.set_until_unix_nano(ToUnixNano(*until));
  }
  if (request.since_unix_nano() != 0 && request.until_unix_nano() != 0 &&
      request.until_unix_nano() <= request.since_unix_nano()) {
    return absl::InvalidArgumentError("--until must be later than --since");
  }
  return request;
}

void PrintVerdicts(const v1::ListVerdictsResponse& verdicts, bool color, std::ostream& out) {
  Table table({"APPRAISED", "NODE", "REPORT", "STATUS", "REASONS", "FAILING_RULES"});
  for (const v1::Verdict& v : verdicts.verdicts()) {
    std::vector<std::string> failing;
    for (const v1::WorkloadVerdict& w : v.workloads()) {
      const std::string rules = FailingRulesSummary(w);
      if (rules == "-") continue;
      failing.push_back(
          absl::StrCat(w.identity().name().empty() ? ShortId(w.workload_id()) : w.identity().name(),
                       ": ", rules));
    }
    table.AddRow({FormatUnixNano(v.appraised_unix_nano()), ShortId(v.node_id()),
                  v.report_sequence() == 0 ? "-" : std::to_string(v.report_sequence()),
                  Cell(StatusName(v.status()), StatusColor(v.status())),
                  v.reasons().empty() ? "-" : absl::StrJoin(ReasonNames(v), ","),
                  failing.empty() ? "-" : absl::StrJoin(failing, "; ")});
  }
  table.Render(out, color);
}

int RunVerdicts(const VerdictsOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<v1::ListVerdictsRequest> request = VerdictsRequest(options, absl::Now());
  if (!request.ok()) {
    err << "vigilctl: " << request.status().message() << "\n";
    return kExitUsage;
  }
  std::unique_ptr<FleetClient> client = FleetClient::Connect(options.connection, err);
  if (client == nullptr) return kExitUsage;

  v1::ListVerdictsResponse all;
  const grpc::Status st = client->CollectPages(
      &v1::Fleet::Stub::ListVerdicts, *request, options.limit,
      [](v1::ListVerdictsResponse& r) { return r.mutable_verdicts(); }, &all);
  if (!st.ok()) return client->Fail(err, "ListVerdicts", st);
  if (options.json) {
    out << ProtoJson(all, /*pretty=*/true) << "\n";
  } else {
    PrintVerdicts(all, ShouldColor(STDOUT_FILENO), out);
  }
  return kExitOk;
}

void RegisterVerdictsCommand(CLI::App& app, int* exit_code) {
  auto options = std::make_shared<VerdictsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "verdicts", "Stored verdicts, newest first, filtered by node, workload, status and time");
  cmd->add_option("--node", options->node_id, "only this node's verdicts")
      ->check(NodeIdValidator());
  cmd->add_option("--workload", options->workload,
                  "only verdicts about this workload (name or workload_id)");
  cmd->add_option("--status", options->statuses,
                  "only these statuses, comma-separated: affirming, warning, contraindicated, "
                  "rejected, unverified, none")
      ->delimiter(',');
  cmd->add_option("--since", options->since,
                  "appraised at or after: RFC 3339 time or a duration before now (1h, 7d)");
  cmd->add_option("--until", options->until,
                  "appraised before: RFC 3339 time or a duration before now");
  cmd->add_option("--limit", options->limit, "at most this many verdicts (pages are followed)")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  cmd->add_flag("--json", options->json,
                "print one ListVerdictsResponse as proto3 JSON (see docs/vigilctl.md)");
  AddFleetConnectionFlags(cmd, &options->connection);
  cmd->callback([options, exit_code] { *exit_code = RunVerdicts(*options, std::cout, std::cerr); });
}

}  // namespace vigil::cli
