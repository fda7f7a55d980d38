#include "cli/export_command.h"

#include <sys/stat.h>

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/fleet_client.h"
#include "cli/output_file.h"
#include "cli/time_flags.h"

namespace vigil::cli {

int RunExportOscal(const ExportOptions& options, std::ostream& out, std::ostream& err) {
  const absl::Time now = absl::Now();
  absl::StatusOr<absl::Time> since = ParseTimeFlag(options.since, now);
  absl::StatusOr<absl::Time> until = ParseTimeFlag(options.until, now);
  if (!since.ok() || !until.ok()) {
    err << "vigilctl: " << (since.ok() ? "--until: " : "--since: ")
        << (since.ok() ? until.status() : since.status()).message() << "\n";
    return kExitUsage;
  }
  if (*until <= *since) {
    err << "vigilctl: --until must be later than --since\n";
    return kExitUsage;
  }
  struct stat st_buf;
  if (!options.force && stat(options.out_path.c_str(), &st_buf) == 0) {
    err << "vigilctl: " << options.out_path << " exists; give --force to replace it\n";
    return kExitUsage;
  }
  std::unique_ptr<FleetClient> client = FleetClient::Connect(options.connection, err);
  if (client == nullptr) return kExitUsage;
  v1::ExportAssessmentRequest request;
  request.set_since_unix_nano(ToUnixNano(*since));
  request.set_until_unix_nano(ToUnixNano(*until));
  v1::ExportAssessmentResponse response;
  const grpc::Status st = client->Call(&v1::Fleet::Stub::ExportAssessment, request, &response);
  if (!st.ok()) return client->Fail(err, "ExportAssessment", st);
  if (absl::Status written =
          WriteFileAtomically(options.out_path, response.oscal_json(), options.force);
      !written.ok()) {
    err << "vigilctl: " << written.message()
        << (absl::IsAlreadyExists(written) ? "; give --force to replace it" : "") << "\n";
    return absl::IsAlreadyExists(written) ? kExitUsage : kExitFailed;
  }
  out << "wrote OSCAL assessment-results for " << FormatUnixNano(request.since_unix_nano())
      << " to " << FormatUnixNano(request.until_unix_nano()) << " to " << options.out_path << " ("
      << response.oscal_json().size() << " bytes)\n";
  return kExitOk;
}

void RegisterExportCommands(CLI::App& app, int* exit_code) {
  CLI::App* export_cmd = app.add_subcommand("export", "Export audit evidence");
  export_cmd->require_subcommand(1);
  auto options = std::make_shared<ExportOptions>();
  CLI::App* oscal = export_cmd->add_subcommand(
      "oscal", "OSCAL 1.1 assessment-results for a time range, written atomically to a file");
  oscal
      ->add_option("--since", options->since,
                   "start, inclusive: RFC 3339 time (or a duration before now, e.g. 30d)")
      ->required();
  oscal
      ->add_option("--until", options->until,
                   "end, exclusive: RFC 3339 time (or a duration before now)")
      ->required();
  oscal->add_option("--out", options->out_path, "the file to write")->required();
  oscal->add_flag("--force", options->force, "replace --out if it exists");
  AddFleetConnectionFlags(oscal, &options->connection);
  oscal->callback(
      [options, exit_code] { *exit_code = RunExportOscal(*options, std::cout, std::cerr); });
}

}  // namespace vigil::cli
