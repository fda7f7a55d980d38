#include "cli/status_command.h"

#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/fleet_client.h"
#include "cli/fleet_format.h"
#include "cli/table.h"
#include "cli/time_flags.h"

namespace vigil::cli {

void PrintStatus(const v1::ListNodesResponse& nodes, absl::Time now, bool color,
                 std::ostream& out) {
  Table table({"NODE", "HOSTNAME", "CONNECTED", "STATUS", "AGE", "WORKLOAD", "WORKLOAD_STATUS",
               "FAILING_RULES"});
  for (const v1::NodeSummary& n : nodes.nodes()) {
    const v1::Verdict& v = n.latest_verdict();
    std::vector<Cell> node_cells = {
        ShortId(n.node_id()),
        n.hostname().empty() ? "-" : n.hostname(),
        n.revoked() ? "revoked" : (n.connected() ? "yes" : "no"),
        Cell(StatusName(v.status()), StatusColor(v.status())),
        FormatAge(n.last_seen_unix_nano(), now),
    };
    if (v.workloads().empty()) {
      node_cells.insert(node_cells.end(), {"-", "-", "-"});
      table.AddRow(std::move(node_cells));
      continue;
    }
    bool first = true;
    for (const v1::WorkloadVerdict& w : v.workloads()) {
      std::vector<Cell> cells = first ? node_cells : std::vector<Cell>{"", "", "", "", ""};
      first = false;
      cells.push_back(w.identity().name().empty() ? ShortId(w.workload_id()) : w.identity().name());
      cells.push_back(Cell(StatusName(w.status()), StatusColor(w.status())));
      cells.push_back(FailingRulesSummary(w));
      table.AddRow(std::move(cells));
    }
  }
  table.Render(out, color);
}

int RunStatus(const FleetConnectionOptions& connection, bool json, std::ostream& out,
              std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::ListNodesResponse response;
  const grpc::Status st =
      client->Call(&v1::Fleet::Stub::ListNodes, v1::ListNodesRequest(), &response);
  if (!st.ok()) return client->Fail(err, "ListNodes", st);
  if (json) {
    out << ProtoJson(response, /*pretty=*/true) << "\n";
  } else {
    PrintStatus(response, absl::Now(), ShouldColor(STDOUT_FILENO), out);
  }
  return kExitOk;
}

void RegisterStatusCommand(CLI::App& app, int* exit_code) {
  struct Options {
    FleetConnectionOptions connection;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "status", "The fleet at a glance: every node and workload, its status and failing rules");
  cmd->add_flag("--json", options->json,
                "print the ListNodesResponse as proto3 JSON (see docs/vigilctl.md)");
  AddFleetConnectionFlags(cmd, &options->connection);
  cmd->callback([options, exit_code] {
    *exit_code = RunStatus(options->connection, options->json, std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
