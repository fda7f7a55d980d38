#include "cli/status_command.h"

#include <unistd.h>

#include <iostream>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/fleet_client.h"
#include "cli/fleet_format.h"
#include "cli/table.h"
#include "cli/time_flags.h"

namespace vigil::cli {

namespace {

// The workload's name; when another workload of the verdict has the same name (one
// selector list matching several executables), its executable's file name too.
std::string WorkloadLabel(const v1::Verdict& verdict, const v1::WorkloadVerdict& w) {
  if (w.identity().name().empty()) return ShortId(w.workload_id());
  int same = 0;
  for (const v1::WorkloadVerdict& other : verdict.workloads()) {
    if (other.identity().name() == w.identity().name()) ++same;
  }
  if (same < 2 || w.identity().exe_path().empty()) return w.identity().name();
  const std::string& exe = w.identity().exe_path();
  return absl::StrCat(w.identity().name(), " (", exe.substr(exe.rfind('/') + 1), ")");
}

}  // namespace

void PrintFailingRules(const v1::ListNodesResponse& nodes, std::ostream& out) {
  for (const v1::NodeSummary& n : nodes.nodes()) {
    const v1::Verdict& v = n.latest_verdict();
    for (const v1::WorkloadVerdict& w : v.workloads()) {
      std::set<std::string> seen;
      for (const v1::RuleOutcome& rule : w.rules()) {
        if (!IsFailing(rule) || !seen.insert(rule.rule_id()).second) continue;
        out << ShortId(n.node_id()) << " " << WorkloadLabel(v, w) << ": " << rule.rule_id() << " ("
            << StatusName(rule.status()) << ")\n";
        if (!rule.observed().empty()) out << "    observed: " << rule.observed() << "\n";
        if (!rule.expected().empty()) out << "    expected: " << rule.expected() << "\n";
        if (!rule.controls().empty()) {
          out << "    controls: " << absl::StrJoin(rule.controls(), ", ") << "\n";
        }
      }
    }
  }
}

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
      cells.push_back(WorkloadLabel(v, w));
      cells.push_back(Cell(StatusName(w.status()), StatusColor(w.status())));
      cells.push_back(FailingRulesSummary(w));
      table.AddRow(std::move(cells));
    }
  }
  table.Render(out, color);
}

int RunStatus(const FleetConnectionOptions& connection, bool json, bool rules, std::ostream& out,
              std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::ListNodesResponse response;
  const grpc::Status st = client->ListAllNodes(&response);
  if (!st.ok()) return client->Fail(err, "ListNodes", st);
  if (json) {
    out << ProtoJson(response, /*pretty=*/true) << "\n";
  } else {
    PrintStatus(response, absl::Now(), ShouldColor(STDOUT_FILENO), out);
    if (rules) {
      out << "\n";
      PrintFailingRules(response, out);
    }
  }
  return kExitOk;
}

void RegisterStatusCommand(CLI::App& app, int* exit_code) {
  struct Options {
    FleetConnectionOptions connection;
    bool json = false;
    bool rules = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "status", "The fleet at a glance: every node and workload, its status and failing rules");
  cmd->add_flag("--json", options->json,
                "print the ListNodesResponse as proto3 JSON (see docs/vigilctl.md)");
  cmd->add_flag("--rules", options->rules,
                "after the table, every failing rule with what was observed and expected and "
                "all the controls it evidences");
  AddFleetConnectionFlags(cmd, &options->connection);
  cmd->callback([options, exit_code] {
    *exit_code =
        RunStatus(options->connection, options->json, options->rules, std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
