#pragma once

// `vigilctl pki init` and `vigilctl pki issue`: a PKI directory for a Vigil fabric (layout in
// common/pki.h). The functions are the library behind the commands, used by tests too.

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"

namespace vigil::cli {

/// The trust domain `pki init` uses when none is given.
inline constexpr char kDefaultTrustDomain[] = "vigil.local";

/// Options of `vigilctl pki init`.
struct PkiInitOptions {
  std::string dir;
  std::string trust_domain = kDefaultTrustDomain;
  /// Host names or IP addresses for the verifier certificate besides localhost, 127.0.0.1.
  std::vector<std::string> extra_sans;
  /// Replace an existing CA (and everything it issued becomes untrusted).
  bool force = false;
  int ca_days = 3650;
  int verifier_days = 825;
};

/// Creates DIR (0700) if needed and writes ca.crt, ca.key, verifier.crt, verifier.key and
/// trust-domain. ALREADY_EXISTS when DIR already holds a CA and !force.
absl::Status InitPkiDirectory(const PkiInitOptions& options);

/// Options of `vigilctl pki issue`: exactly one of node_id and client_name.
struct PkiIssueOptions {
  std::string dir;
  std::string node_id;
  std::string client_name;
  /// The client's role: "operator", "auditor" or "orchestrator" (clients only).
  std::string role = "operator";
  int days = 30;
  /// Replace existing files of the same identity.
  bool force = false;
};

/// The files `pki issue` wrote.
struct IssuedFiles {
  std::string cert_path;
  std::string key_path;
  std::string spiffe_id;
};

/// Issues a client certificate from DIR's CA: node-<id>.crt/.key with SAN
/// spiffe://<td>/vigil/node/<id>, or client-<name>.crt/.key with .../vigil/client/<name>.
absl::StatusOr<IssuedFiles> IssueIntoPkiDirectory(const PkiIssueOptions& options);

/// Adds `pki init` and `pki issue` to `app`. A failing command prints "vigilctl: <why>" on
/// stderr and sets *exit_code to 1.
void RegisterPkiCommands(CLI::App& app, int* exit_code);

}  // namespace vigil::cli
