#include "cli/audit_command.h"

#include <iostream>
#include <memory>

#include "cli/fleet_client.h"
#include "cli/fleet_format.h"
#include "cli/table.h"
#include "cli/time_flags.h"

namespace vigil::cli {

int RunAuditLog(const FleetConnectionOptions& connection, uint32_t limit, bool json,
                std::ostream& out, std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::ListAuditResponse all;
  const grpc::Status st = client->CollectPages(
      &v1::Fleet::Stub::ListAudit, v1::ListAuditRequest(), limit,
      [](v1::ListAuditResponse& r) { return r.mutable_records(); }, &all);
  if (!st.ok()) return client->Fail(err, "ListAudit", st);
  if (json) {
    out << ProtoJson(all, /*pretty=*/true) << "\n";
    return kExitOk;
  }
  Table table({"TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"});
  for (const v1::AuditRecord& r : all.records()) {
    table.AddRow({FormatUnixNano(r.time_unix_nano()), r.actor(), r.action(),
                  r.target().empty() ? "-" : r.target(), r.detail().empty() ? "-" : r.detail()});
  }
  table.Render(out, /*color=*/false);
  return kExitOk;
}

void RegisterAuditCommands(CLI::App& app, int* exit_code) {
  CLI::App* audit = app.add_subcommand("audit", "The verifier's record of operators' actions");
  audit->require_subcommand(1);
  struct Options {
    FleetConnectionOptions connection;
    uint32_t limit = 50;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* log = audit->add_subcommand(
      "log", "Operators' actions, newest first: who approved, revoked, stored policies");
  log->add_option("--limit", options->limit, "at most this many records (pages are followed)")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  log->add_flag("--json", options->json,
                "print one ListAuditResponse as proto3 JSON (see docs/vigilctl.md)");
  AddFleetConnectionFlags(log, &options->connection);
  log->callback([options, exit_code] {
    *exit_code =
        RunAuditLog(options->connection, options->limit, options->json, std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
