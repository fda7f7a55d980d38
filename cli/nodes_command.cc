#include "cli/nodes_command.h"

#include <chrono>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/tpm2_tools_format.h"
#include "common/status_macros.h"
#include "common/tls.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"

namespace vigil::cli {
namespace {

std::string StatusName(const v1::Verdict& verdict) {
  std::string name = v1::TrustStatus_Name(verdict.status());
  // "TRUST_AFFIRMING" -> "AFFIRMING"; the unspecified status means no report yet.
  if (verdict.status() == v1::TRUST_STATUS_UNSPECIFIED) return "NONE";
  return name.substr(name.find('_') + 1);
}

std::string LastSeen(int64_t unix_nano) {
  if (unix_nano <= 0) return "never";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixNanos(unix_nano),
                          absl::UTCTimeZone());
}

void WithDeadline(grpc::ClientContext& ctx, const FleetConnectionOptions& options) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(options.timeout_seconds));
}

int RunNodesList(const FleetConnectionOptions& connection, bool json, std::ostream& out,
                 std::ostream& err) {
  absl::StatusOr<std::unique_ptr<v1::Fleet::Stub>> stub = ConnectFleet(connection);
  if (!stub.ok()) {
    err << "vigilctl: " << stub.status().message() << "\n";
    return 2;
  }
  grpc::ClientContext ctx;
  WithDeadline(ctx, connection);
  v1::ListNodesResponse response;
  const grpc::Status st = (*stub)->ListNodes(&ctx, v1::ListNodesRequest(), &response);
  if (!st.ok()) {
    err << "vigilctl: ListNodes: " << st.error_message() << "\n";
    return 1;
  }
  PrintNodes(response, json, out);
  return 0;
}

int RunNodesApprove(const FleetConnectionOptions& connection, const std::string& node_id,
                    std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::unique_ptr<v1::Fleet::Stub>> stub = ConnectFleet(connection);
  if (!stub.ok()) {
    err << "vigilctl: " << stub.status().message() << "\n";
    return 2;
  }
  grpc::ClientContext ctx;
  WithDeadline(ctx, connection);
  v1::ApproveNodeRequest request;
  request.set_node_id(node_id);
  v1::ApproveNodeResponse response;
  const grpc::Status st = (*stub)->ApproveNode(&ctx, request, &response);
  if (!st.ok()) {
    err << "vigilctl: ApproveNode: " << st.error_message() << "\n";
    return 1;
  }
  out << "approved node " << node_id << "\n";
  return 0;
}

// A node_id is the lowercase hex SHA-256 of the EK public area.
bool IsNodeId(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

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
      nlohmann::json reasons = nlohmann::json::array();
      for (int r : n.latest_verdict().reasons()) {
        reasons.push_back(v1::AppraisalReason_Name(static_cast<v1::AppraisalReason>(r)));
      }
      array.push_back({
          {"node_id", n.node_id()},
          {"hostname", n.hostname()},
          {"enrolled", n.enrolled()},
          {"connected", n.connected()},
          {"status", StatusName(n.latest_verdict())},
          {"reasons", reasons},
          {"detail", n.latest_verdict().detail()},
          {"last_seen", LastSeen(n.last_seen_unix_nano())},
          {"last_seen_unix_nano", n.last_seen_unix_nano()},
      });
    }
    out << array.dump(2) << "\n";
    return;
  }
  out << absl::StrFormat("%-64s  %-20s  %-8s  %-9s  %-16s  %s\n", "NODE_ID", "HOSTNAME", "ENROLLED",
                         "CONNECTED", "STATUS", "LAST_SEEN");
  for (const v1::NodeSummary& n : nodes.nodes()) {
    out << absl::StrFormat("%-64s  %-20s  %-8s  %-9s  %-16s  %s\n", n.node_id(),
                           n.hostname().empty() ? "-" : n.hostname(), n.enrolled() ? "yes" : "no",
                           n.connected() ? "yes" : "no", StatusName(n.latest_verdict()),
                           LastSeen(n.last_seen_unix_nano()));
  }
}

void RegisterNodesCommands(CLI::App& app, int* exit_code) {
  CLI::App* nodes = app.add_subcommand("nodes", "List and approve nodes (Fleet API)");
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

  struct ApproveOptions {
    FleetConnectionOptions connection;
    std::string node_id;
  };
  auto approve_options = std::make_shared<ApproveOptions>();
  CLI::App* approve = nodes->add_subcommand(
      "approve", "Approve a node's EK for enrollment when no EK certificate vouches for it");
  approve
      ->add_option("node_id", approve_options->node_id,
                   "node_id: lowercase hex SHA-256 of the EK public area")
      ->required()
      ->check(CLI::Validator(
          [](std::string& s) {
            return IsNodeId(s) ? std::string() : std::string("not a node_id (64 lowercase hex)");
          },
          "NODE_ID"));
  AddFleetConnectionFlags(approve, &approve_options->connection);
  approve->callback([approve_options, exit_code] {
    *exit_code = RunNodesApprove(approve_options->connection, approve_options->node_id, std::cout,
                                 std::cerr);
  });
}

}  // namespace vigil::cli
