#pragma once

// `vigilctl nodes list|approve`, and the connection to the verifier's Fleet API that the
// operator commands share (mutual TLS with a client certificate).

#include <memory>
#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
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

/// Prints the nodes as a table, or as a JSON array when `json` is set.
void PrintNodes(const v1::ListNodesResponse& nodes, bool json, std::ostream& out);

/// Adds `nodes list [--json]` and `nodes approve NODE_ID` under `app`. Their exit codes go
/// to `*exit_code`: 0 on success, 1 when the verifier refuses or cannot be reached, 2 for
/// bad input.
void RegisterNodesCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
