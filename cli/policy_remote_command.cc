#include "cli/policy_remote_command.h"

#include <iostream>
#include <memory>

#include "cli/fleet_client.h"
#include "cli/fleet_format.h"
#include "cli/table.h"
#include "cli/time_flags.h"
#include "common/pki.h"

namespace vigil::cli {

int RunPolicyApply(const FleetConnectionOptions& connection, const std::string& path,
                   std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::string> yaml = ReadFileToString(path);
  if (!yaml.ok()) {
    err << "vigilctl: " << yaml.status().message() << "\n";
    return kExitUsage;
  }
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::PutPolicyRequest request;
  request.set_yaml(*std::move(yaml));
  v1::PutPolicyResponse response;
  const grpc::Status st = client->Call(&v1::Fleet::Stub::PutPolicy, request, &response);
  if (!st.ok()) return client->Fail(err, "PutPolicy", st);
  out << "applied policy " << response.policy().name() << "@" << response.policy().revision()
      << " (sha256 " << response.policy().sha256() << ")\n";
  for (const std::string& warning : response.warnings()) out << "warning: " << warning << "\n";
  return kExitOk;
}

int RunPolicyList(const FleetConnectionOptions& connection, bool json, std::ostream& out,
                  std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::ListPoliciesResponse response;
  const grpc::Status st =
      client->Call(&v1::Fleet::Stub::ListPolicies, v1::ListPoliciesRequest(), &response);
  if (!st.ok()) return client->Fail(err, "ListPolicies", st);
  if (json) {
    out << ProtoJson(response, /*pretty=*/true) << "\n";
    return kExitOk;
  }
  Table table({"NAME", "REVISION", "SHA256", "UPDATED", "UPDATED_BY"});
  for (const v1::PolicyInfo& p : response.policies()) {
    table.AddRow({p.name(), std::to_string(p.revision()), ShortId(p.sha256()),
                  FormatUnixNano(p.updated_unix_nano()),
                  p.updated_by().empty() ? "-" : p.updated_by()});
  }
  table.Render(out, /*color=*/false);
  return kExitOk;
}

void AddPolicyRemoteCommands(CLI::App* policy, int* exit_code) {
  struct Options {
    FleetConnectionOptions connection;
    std::string path;
    bool json = false;
  };
  auto apply_options = std::make_shared<Options>();
  CLI::App* apply = policy->add_subcommand(
      "apply",
      "Store a new revision of a reference policy on the verifier (nodes it applies to get it at "
      "once)");
  apply->add_option("file", apply_options->path, "the RuntimePolicy YAML document")->required();
  AddFleetConnectionFlags(apply, &apply_options->connection);
  apply->callback([apply_options, exit_code] {
    *exit_code =
        RunPolicyApply(apply_options->connection, apply_options->path, std::cout, std::cerr);
  });

  auto list_options = std::make_shared<Options>();
  CLI::App* list =
      policy->add_subcommand("list", "The current revision of every policy on the verifier");
  list->add_flag("--json", list_options->json,
                 "print the ListPoliciesResponse as proto3 JSON (with each policy's YAML)");
  AddFleetConnectionFlags(list, &list_options->connection);
  list->callback([list_options, exit_code] {
    *exit_code = RunPolicyList(list_options->connection, list_options->json, std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
