#include "cli/admission_command.h"

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/fleet_client.h"
#include "cli/fleet_format.h"
#include "cli/time_flags.h"

namespace vigil::cli {

nlohmann::json AdmissionJson(const AdmissionOptions& options,
                             const v1::CheckAdmissionResponse& response) {
  return {
      {"decision", response.allowed() ? "allow" : "deny"},
      {"allowed", response.allowed()},
      {"node_id", options.node_id},
      {"workload", options.workload},
      {"status", StatusName(response.status())},
      {"reasons", std::vector<std::string>(response.reasons().begin(), response.reasons().end())},
      {"ear_token", response.ear_token()},
      {"appraised", FormatUnixNano(response.appraised_unix_nano())},
      {"appraised_unix_nano", response.appraised_unix_nano()},
  };
}

int RunAdmissionCheck(const AdmissionOptions& options, std::ostream& out, std::ostream& err) {
  v1::CheckAdmissionRequest request;
  request.set_node_id(options.node_id);
  request.set_workload(options.workload);
  if (!options.max_age.empty()) {
    absl::StatusOr<absl::Duration> max_age = ParseDurationFlag(options.max_age);
    if (!max_age.ok()) {
      err << "vigilctl: --max-age: " << max_age.status().message() << "\n";
      return kExitAdmissionUsage;
    }
    request.set_max_age_ms(absl::ToInt64Milliseconds(*max_age));
    if (request.max_age_ms() == 0) {
      err << "vigilctl: --max-age: must be at least 1ms\n";
      return kExitAdmissionUsage;
    }
  }
  std::unique_ptr<FleetClient> client = FleetClient::Connect(options.connection, err);
  if (client == nullptr) return kExitAdmissionUsage;
  v1::CheckAdmissionResponse response;
  const grpc::Status st = client->Call(&v1::Fleet::Stub::CheckAdmission, request, &response);
  if (!st.ok()) {
    client->Fail(err, "CheckAdmission", st);
    return kExitNoDecision;
  }
  if (options.json) {
    out << AdmissionJson(options, response).dump(2) << "\n";
  } else {
    const std::string subject =
        options.workload.empty()
            ? absl::StrCat("node ", options.node_id)
            : absl::StrCat("workload ", options.workload, " on node ", options.node_id);
    out << (response.allowed() ? "allow: " : "deny: ") << subject << " is "
        << StatusName(response.status()) << " (appraised "
        << FormatUnixNano(response.appraised_unix_nano()) << ")\n";
    for (const std::string& reason : response.reasons()) out << "  " << reason << "\n";
  }
  return response.allowed() ? kExitAllowed : kExitDenied;
}

void RegisterAdmissionCommands(CLI::App& app, int* exit_code) {
  CLI::App* admission =
      app.add_subcommand("admission", "Ask whether work may run on a node, from stored results");
  admission->require_subcommand(1);
  auto options = std::make_shared<AdmissionOptions>();
  CLI::App* check = admission->add_subcommand(
      "check",
      "Allow (exit 0) or deny (exit 1) work on a node or workload: unknown, stale or not "
      "affirming means deny; exit 3 when no decision could be had, 2 for bad usage");
  check->add_option("--node", options->node_id, "the node's id (64 lowercase hex)")
      ->required()
      ->check(NodeIdValidator());
  check->add_option("--workload", options->workload,
                    "a workload name or workload_id; default: the node as a whole");
  check->add_option("--max-age", options->max_age,
                    "results older than this are stale (e.g. 30s, 5m); default: the verifier's");
  check->add_flag("--json", options->json,
                  "print the decision as JSON with the EAR token (see docs/vigilctl.md)");
  AddFleetConnectionFlags(check, &options->connection);
  check->callback(
      [options, exit_code] { *exit_code = RunAdmissionCheck(*options, std::cout, std::cerr); });
}

}  // namespace vigil::cli
