#pragma once

// `vigilctl nodes list|show|approve|revoke`, and the connection to the verifier's Fleet API that
// the operator commands share (mutual TLS with a client certificate).

#include <memory>
#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil::cli {

/// How an operator command reaches the verifier: --verifier ADDR and either
/// --pki-dir DIR --client NAME (DIR/ca.crt, DIR/client-NAME.crt, DIR/client-NAME.key, as
/// `vigilctl pki issue --client NAME` writes them) or explicit --ca/--cert/--key.
struct FleetConnectionOptions {
  std::string verifier = "127.0.0.1:7443";
  std::string pki_dir;
  std::string client;
  std::string ca_path;
  std::string cert_path;
  std::string key_path;
  /// Deadline of each call, in seconds.
  int timeout_seconds = 10;
};

/// Adds the connection flags to `cmd`.
void AddFleetConnectionFlags(CLI::App* cmd, FleetConnectionOptions* options);

/// A Fleet stub over a mutual-TLS channel. Fails when the certificate files cannot be read
/// or the flags are inconsistent (e.g. --client without --pki-dir).
absl::StatusOr<std::unique_ptr<v1::Fleet::Stub>> ConnectFleet(
    const FleetConnectionOptions& options);

/// The client certificate `options` name: --cert, or DIR/client-NAME.crt from --pki-dir and
/// --client ("" when neither is given).
std::string ClientCertificatePath(const FleetConnectionOptions& options);

/// Checks a positional or flag value is a node id: 64 lowercase hex characters.
CLI::Validator NodeIdValidator();

/// Prints the nodes as a table, or as a JSON array when `json` is set.
void PrintNodes(const v1::ListNodesResponse& nodes, bool json, std::ostream& out);

/// Prints one node (`nodes show`): its enrollment, connection, latest verdict with the trust
/// vector, and every workload with every rule outcome (observed, expected, controls).
/// Statuses are coloured when `color` is set.
void PrintNodeDetail(const v1::GetNodeResponse& node, absl::Time now, bool color,
                     std::ostream& out);

/// The AR4SI tier of a trust vector value: "none" (0), "affirming" (2-31), "warning"
/// (32-95), "contraindicated" (96-127), "not appraised" (negative) or "unknown".
std::string TrustTierName(int32_t value);

/// The commands, as the CLI runs them (exit codes as RegisterNodesCommands says).
int RunNodesList(const FleetConnectionOptions& connection, bool json, std::ostream& out,
                 std::ostream& err);
int RunNodesShow(const FleetConnectionOptions& connection, const std::string& node_id, bool json,
                 std::ostream& out, std::ostream& err);
int RunNodesApprove(const FleetConnectionOptions& connection, const std::string& node_id,
                    std::ostream& out, std::ostream& err);
int RunNodesRevoke(const FleetConnectionOptions& connection, const std::string& node_id,
                   const std::string& reason, std::ostream& out, std::ostream& err);

/// Adds `nodes list [--json]`, `nodes show NODE_ID [--json]`, `nodes approve NODE_ID` and
/// `nodes revoke NODE_ID [--reason TEXT]` under `app`. Their exit codes go to `*exit_code`:
/// 0 on success, 1 when the verifier refuses or cannot be reached, 2 for bad input.
void RegisterNodesCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
