#include "cli/nodes_command.h"

#include <unistd.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/fleet_client.h"
#include "cli/fleet_format.h"
#include "cli/table.h"
#include "cli/time_flags.h"
#include "cli/tpm2_tools_format.h"
#include "common/status_macros.h"
#include "common/tls.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"

namespace vigil::cli {

int RunNodesList(const FleetConnectionOptions& connection, bool json, std::ostream& out,
                 std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::ListNodesResponse response;
  const grpc::Status st = client->ListAllNodes(&response);
  if (!st.ok()) return client->Fail(err, "ListNodes", st);
  PrintNodes(response, json, out);
  return kExitOk;
}

int RunNodesShow(const FleetConnectionOptions& connection, const std::string& node_id, bool json,
                 std::ostream& out, std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::GetNodeRequest request;
  request.set_node_id(node_id);
  v1::GetNodeResponse response;
  const grpc::Status st = client->Call(&v1::Fleet::Stub::GetNode, request, &response);
  if (!st.ok()) {
    return client->Fail(err, "GetNode", st, "the verifier knows no node " + node_id);
  }
  if (json) {
    out << ProtoJson(response, /*pretty=*/true) << "\n";
  } else {
    PrintNodeDetail(response, absl::Now(), ShouldColor(STDOUT_FILENO), out);
  }
  return kExitOk;
}

int RunNodesApprove(const FleetConnectionOptions& connection, const std::string& node_id,
                    std::ostream& out, std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::ApproveNodeRequest request;
  request.set_node_id(node_id);
  v1::ApproveNodeResponse response;
  const grpc::Status st = client->Call(&v1::Fleet::Stub::ApproveNode, request, &response);
  if (!st.ok()) return client->Fail(err, "ApproveNode", st);
  out << "approved node " << node_id << "\n";
  return kExitOk;
}

int RunNodesRevoke(const FleetConnectionOptions& connection, const std::string& node_id,
                   const std::string& reason, std::ostream& out, std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(connection, err);
  if (client == nullptr) return kExitUsage;
  v1::RevokeNodeRequest request;
  request.set_node_id(node_id);
  request.set_reason(reason);
  v1::RevokeNodeResponse response;
  const grpc::Status st = client->Call(&v1::Fleet::Stub::RevokeNode, request, &response);
  if (!st.ok()) {
    return client->Fail(err, "RevokeNode", st, "the verifier knows no node " + node_id);
  }
  out << "revoked node " << node_id << "\n";
  return kExitOk;
}

namespace {

std::string YesNo(bool b) { return b ? "yes" : "no"; }

void PrintRules(const v1::WorkloadVerdict& workload, bool color, std::ostream& out) {
  Table rules({"  RULE", "PID", "STATUS", "OBSERVED", "EXPECTED", "CONTROLS"});
  for (const v1::RuleOutcome& rule : workload.rules()) {
    std::string pid = rule.pid() == 0 ? "-" : std::to_string(rule.pid());
    if (rule.tid() != 0) absl::StrAppend(&pid, "/", rule.tid());
    rules.AddRow({"  " + rule.rule_id(), pid,
                  Cell(StatusName(rule.status()), StatusColor(rule.status())),
                  rule.observed().empty() ? "-" : rule.observed(),
                  rule.expected().empty() ? "-" : rule.expected(),
                  rule.controls().empty() ? "-" : absl::StrJoin(rule.controls(), ", ")});
  }
  rules.Render(out, color);
}

}  // namespace

std::string TrustTierName(int32_t value) {
  if (value == 0) return "none";
  if (value < 0) return "not appraised";
  if (value >= 2 && value <= 31) return "affirming";
  if (value >= 32 && value <= 95) return "warning";
  if (value >= 96 && value <= 127) return "contraindicated";
  return "unknown";
}

CLI::Validator NodeIdValidator() {
  return CLI::Validator(
      [](std::string& s) {
        // A node_id is the lowercase hex SHA-256 of the EK public area.
        const bool ok =
            s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
        return ok ? std::string() : std::string("not a node_id (64 lowercase hex)");
      },
      "NODE_ID");
}

std::string ClientCertificatePath(const FleetConnectionOptions& options) {
  if (!options.cert_path.empty()) return options.cert_path;
  if (options.pki_dir.empty() || options.client.empty()) return "";
  return absl::StrCat(options.pki_dir, "/client-", options.client, ".crt");
}

void AddFleetConnectionFlags(CLI::App* cmd, FleetConnectionOptions* options) {
  cmd->add_option("--verifier", options->verifier, "verifier address HOST:PORT")
      ->capture_default_str();
  cmd->add_option("--pki-dir", options->pki_dir,
                  "PKI directory from `vigilctl pki init` (with --client)");
  cmd->add_option("--client", options->client, "client certificate name in --pki-dir");
  cmd->add_option("--ca", options->ca_path, "CA certificate (PEM) that signed the verifier's");
  cmd->add_option("--cert", options->cert_path, "client certificate (PEM)");
  cmd->add_option("--key", options->key_path, "client private key (PEM)");
  cmd->add_option("--timeout", options->timeout_seconds, "deadline of each call, in seconds")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
}

absl::StatusOr<std::unique_ptr<v1::Fleet::Stub>> ConnectFleet(
    const FleetConnectionOptions& options) {
  std::string ca = options.ca_path;
  std::string cert = options.cert_path;
  std::string key = options.key_path;
  if (!options.pki_dir.empty()) {
    if (options.client.empty()) {
      return absl::InvalidArgumentError("--pki-dir needs --client NAME");
    }
    if (ca.empty()) ca = absl::StrCat(options.pki_dir, "/ca.crt");
    if (cert.empty()) cert = absl::StrCat(options.pki_dir, "/client-", options.client, ".crt");
    if (key.empty()) key = absl::StrCat(options.pki_dir, "/client-", options.client, ".key");
  } else if (!options.client.empty()) {
    return absl::InvalidArgumentError("--client needs --pki-dir DIR");
  }
  if (ca.empty() || cert.empty() || key.empty()) {
    return absl::InvalidArgumentError(
        "give --pki-dir DIR --client NAME, or all of --ca, --cert and --key");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds,
                   MakeMutualTlsChannelCredentials(TlsFiles{ca, cert, key}));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.verifier, std::move(creds), args);
  return v1::Fleet::NewStub(channel);
}

void PrintNodes(const v1::ListNodesResponse& nodes, bool json, std::ostream& out) {
  if (json) {
    nlohmann::json array = nlohmann::json::array();
    for (const v1::NodeSummary& n : nodes.nodes()) {
      array.push_back({
          {"node_id", n.node_id()},
          {"hostname", n.hostname()},
          {"enrolled", n.enrolled()},
          {"connected", n.connected()},
          {"revoked", n.revoked()},
          {"tpm_simulated", n.latest_verdict().tpm_simulated()},
          {"status", StatusName(n.latest_verdict().status())},
          {"reasons", ReasonNames(n.latest_verdict())},
          {"detail", n.latest_verdict().detail()},
          {"last_seen", FormatUnixNano(n.last_seen_unix_nano())},
          {"last_seen_unix_nano", n.last_seen_unix_nano()},
      });
    }
    out << array.dump(2) << "\n";
    return;
  }
  Table table({"NODE_ID", "HOSTNAME", "ENROLLED", "CONNECTED", "REVOKED", "SIMULATED", "STATUS",
               "LAST_SEEN"});
  for (const v1::NodeSummary& n : nodes.nodes()) {
    const v1::Verdict& v = n.latest_verdict();
    // Whether the TPM is simulated is known from the first verdict on.
    const std::string simulated =
        v.status() == v1::TRUST_STATUS_UNSPECIFIED ? "-" : YesNo(v.tpm_simulated());
    table.AddRow({n.node_id(), n.hostname().empty() ? "-" : n.hostname(), YesNo(n.enrolled()),
                  YesNo(n.connected()), YesNo(n.revoked()), simulated, StatusName(v.status()),
                  FormatUnixNano(n.last_seen_unix_nano())});
  }
  table.Render(out, /*color=*/false);
}

void PrintNodeDetail(const v1::GetNodeResponse& node, absl::Time now, bool color,
                     std::ostream& out) {
  const v1::NodeSummary& n = node.node();
  const v1::Verdict& v = n.latest_verdict();
  Table facts({"NODE", n.node_id()});
  facts.AddRow({"hostname", n.hostname().empty() ? "-" : n.hostname()});
  std::string enrolled = YesNo(n.enrolled());
  if (n.enrolled()) {
    absl::StrAppend(&enrolled, " (", FormatUnixNano(node.enrolled_unix_nano()),
                    node.ek_trust().empty() ? "" : ", EK trusted by " + node.ek_trust(), ")");
  }
  facts.AddRow({"enrolled", enrolled});
  facts.AddRow({"connected", YesNo(n.connected())});
  facts.AddRow({"revoked", YesNo(n.revoked())});
  facts.AddRow({"last seen", n.last_seen_unix_nano() <= 0
                                 ? "never"
                                 : absl::StrCat(FormatUnixNano(n.last_seen_unix_nano()), " (",
                                                FormatAge(n.last_seen_unix_nano(), now), " ago)")});
  facts.AddRow({"policies", node.policy_ids().empty()
                                ? "-"
                                : absl::StrCat(absl::StrJoin(node.policy_ids(), ", "), " (bundle ",
                                               node.policy_digest(), ")")});
  facts.AddRow({"status", Cell(StatusName(v.status()), StatusColor(v.status()))});
  facts.AddRow({"reasons", v.reasons().empty() ? "-" : absl::StrJoin(ReasonNames(v), ", ")});
  facts.AddRow({"detail", v.detail().empty() ? "-" : v.detail()});
  facts.AddRow({"appraised", FormatUnixNano(v.appraised_unix_nano())});
  facts.AddRow({"report", v.report_sequence() == 0 ? "-" : std::to_string(v.report_sequence())});
  facts.AddRow({"evidence", v.evidence_sha256().empty() ? "-" : v.evidence_sha256()});
  facts.AddRow({"verdict policies", v.policy_ids().empty()
                                        ? "-"
                                        : absl::StrCat(absl::StrJoin(v.policy_ids(), ", "),
                                                       " (bundle ", v.policy_digest(), ")")});
  facts.Render(out, color);

  if (v.has_trust_vector()) {
    const v1::TrustVector& tv = v.trust_vector();
    out << "\n";
    Table vector({"TRUST VECTOR", "VALUE", "TIER"});
    auto claim = [&](const char* name, int32_t value) {
      vector.AddRow({std::string(name), std::to_string(value), TrustTierName(value)});
    };
    claim("instance_identity", tv.instance_identity());
    claim("configuration", tv.configuration());
    claim("executables", tv.executables());
    claim("file_system", tv.file_system());
    claim("hardware", tv.hardware());
    claim("runtime_opaque", tv.runtime_opaque());
    claim("storage_opaque", tv.storage_opaque());
    claim("sourced_data", tv.sourced_data());
    vector.Render(out, color);
  }

  for (const v1::WorkloadVerdict& w : v.workloads()) {
    out << "\nworkload " << (w.identity().name().empty() ? "-" : w.identity().name()) << "  "
        << (color ? Colorize(StatusName(w.status()), StatusColor(w.status()))
                  : StatusName(w.status()))
        << "\n";
    Table about({"  id", w.workload_id()});
    about.AddRow({"  policy", w.policy_id().empty() ? "-" : w.policy_id()});
    about.AddRow({"  exe", w.identity().exe_path().empty()
                               ? "-"
                               : absl::StrCat(w.identity().exe_path(), " (sha256 ",
                                              w.identity().exe_sha256(), ")")});
    if (!w.identity().container_id().empty()) {
      about.AddRow({"  container", w.identity().container_id()});
    }
    if (!w.identity().cgroup().empty()) about.AddRow({"  cgroup", w.identity().cgroup()});
    about.AddRow({"  pids", w.pids().empty() ? "-" : absl::StrJoin(w.pids(), ", ")});
    about.Render(out, false);
    PrintRules(w, color, out);
  }
}

void RegisterNodesCommands(CLI::App& app, int* exit_code) {
  CLI::App* nodes = app.add_subcommand("nodes", "List, inspect, approve and revoke nodes");
  nodes->require_subcommand(1);

  struct ListOptions {
    FleetConnectionOptions connection;
    bool json = false;
  };
  auto list_options = std::make_shared<ListOptions>();
  CLI::App* list = nodes->add_subcommand(
      "list", "Every node the verifier knows, with its latest verdict and whether it is connected");
  list->add_flag("--json", list_options->json, "print a JSON array instead of a table");
  AddFleetConnectionFlags(list, &list_options->connection);
  list->callback([list_options, exit_code] {
    *exit_code = RunNodesList(list_options->connection, list_options->json, std::cout, std::cerr);
  });

  struct NodeOptions {
    FleetConnectionOptions connection;
    std::string node_id;
    bool json = false;
    std::string reason;
  };
  auto show_options = std::make_shared<NodeOptions>();
  CLI::App* show = nodes->add_subcommand(
      "show", "One node: enrollment, latest verdict, trust vector, workloads and rule outcomes");
  show->add_option("node_id", show_options->node_id, "the node's id (64 lowercase hex)")
      ->required()
      ->check(NodeIdValidator());
  show->add_flag("--json", show_options->json,
                 "print the GetNodeResponse as proto3 JSON (see docs/vigilctl.md)");
  AddFleetConnectionFlags(show, &show_options->connection);
  show->callback([show_options, exit_code] {
    *exit_code = RunNodesShow(show_options->connection, show_options->node_id, show_options->json,
                              std::cout, std::cerr);
  });

  auto approve_options = std::make_shared<NodeOptions>();
  CLI::App* approve = nodes->add_subcommand(
      "approve",
      "Approve a node's EK for enrollment when no EK certificate vouches for it, or re-admit a "
      "revoked node");
  approve
      ->add_option("node_id", approve_options->node_id,
                   "node_id: lowercase hex SHA-256 of the EK public area")
      ->required()
      ->check(NodeIdValidator());
  AddFleetConnectionFlags(approve, &approve_options->connection);
  approve->callback([approve_options, exit_code] {
    *exit_code = RunNodesApprove(approve_options->connection, approve_options->node_id, std::cout,
                                 std::cerr);
  });

  auto revoke_options = std::make_shared<NodeOptions>();
  CLI::App* revoke = nodes->add_subcommand(
      "revoke",
      "Revoke a node: its stream is closed and its evidence, enrollment and certificate renewal "
      "are refused until it is approved again");
  revoke->add_option("node_id", revoke_options->node_id, "the node's id (64 lowercase hex)")
      ->required()
      ->check(NodeIdValidator());
  revoke->add_option("--reason", revoke_options->reason, "why, for the verifier's audit log");
  AddFleetConnectionFlags(revoke, &revoke_options->connection);
  revoke->callback([revoke_options, exit_code] {
    *exit_code = RunNodesRevoke(revoke_options->connection, revoke_options->node_id,
                                revoke_options->reason, std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
