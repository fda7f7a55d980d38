#include "cli/jwks_command.h"

#include <iostream>
#include <memory>

#include "cli/fleet_client.h"
#include "cli/output_file.h"

namespace vigil::cli {

int RunJwks(const FleetConnectionOptions& connection, const std::string& out_path,
            std::ostream& out, std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::GetJwksResponse response;
  const grpc::Status st = client->Call(&v1::Fleet::Stub::GetJwks, v1::GetJwksRequest(), &response);
  if (!st.ok()) return client->Fail(err, "GetJwks", st);
  if (out_path.empty()) {
    out << response.jwks_json() << "\n";
    return kExitOk;
  }
  if (absl::Status written = WriteFileAtomically(out_path, response.jwks_json(), /*replace=*/true);
      !written.ok()) {
    err << "vigilctl: " << written.message() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

void RegisterJwksCommand(CLI::App& app, int* exit_code) {
  struct Options {
    FleetConnectionOptions connection;
    std::string out_path;
  };
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "jwks", "Print the JWKS (RFC 7517) whose keys verify the verifier's EAR tokens");
  cmd->add_option("--out", options->out_path,
                  "write the JWKS to this file (atomically, replacing it) instead of stdout");
  AddFleetConnectionFlags(cmd, &options->connection);
  cmd->callback([options, exit_code] {
    *exit_code = RunJwks(options->connection, options->out_path, std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
