#include "cli/console_command.h"

#include <iostream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/fleet_client.h"
#include "common/console_token.h"
#include "common/pki.h"

namespace vigil::cli {
namespace {

int Usage(std::ostream& err, absl::string_view message) {
  err << "vigilctl: " << message << "\n";
  return kExitUsage;
}

}  // namespace

int RunConsoleToken(const ConsoleTokenOptions& options, absl::Time now, std::ostream& out,
                    std::ostream& err) {
  std::string cert_path = options.cert_path;
  std::string key_path = options.key_path;
  if (!options.pki_dir.empty()) {
    if (options.client.empty()) return Usage(err, "--pki-dir needs --client NAME");
    if (cert_path.empty())
      cert_path = absl::StrCat(options.pki_dir, "/client-", options.client, ".crt");
    if (key_path.empty())
      key_path = absl::StrCat(options.pki_dir, "/client-", options.client, ".key");
  } else if (!options.client.empty()) {
    return Usage(err, "--client needs --pki-dir DIR");
  }
  if (cert_path.empty() || key_path.empty()) {
    return Usage(err, "give --pki-dir DIR --client NAME, or both --cert and --key");
  }
  if (!options.url.empty() && !absl::StartsWith(options.url, "https://")) {
    return Usage(err, "--url must be the console's https:// address");
  }
  absl::StatusOr<std::string> cert = ReadFileToString(cert_path);
  if (!cert.ok()) return Usage(err, cert.status().message());
  absl::StatusOr<std::string> key = ReadFileToString(key_path);
  if (!key.ok()) return Usage(err, key.status().message());
  absl::StatusOr<std::string> token = MintConsoleToken(*cert, *key, options.lifetime, now);
  if (!token.ok()) {
    return Usage(err, absl::StrCat(cert_path, ": ", token.status().message()));
  }
  if (options.url.empty()) {
    out << *token << "\n";
  } else {
    std::string base = options.url;
    if (base.back() != '/') base += '/';
    out << base << "#token=" << *token << "\n";
  }
  return kExitOk;
}

void RegisterConsoleCommands(CLI::App& app, int* exit_code) {
  CLI::App* console = app.add_subcommand("console", "The verifier's web console");
  console->require_subcommand(1);
  auto options = std::make_shared<ConsoleTokenOptions>();
  auto lifetime = std::make_shared<std::string>("10m");
  CLI::App* token = console->add_subcommand(
      "token",
      "Mint a sign-in token for the web console, signed offline with your client key "
      "(operator or auditor); it signs in once, within its lifetime");
  token->add_option("--pki-dir", options->pki_dir,
                    "PKI directory from `vigilctl pki init` (with --client)");
  token->add_option("--client", options->client, "client certificate name in --pki-dir");
  token->add_option("--cert", options->cert_path, "client certificate (PEM)");
  token->add_option("--key", options->key_path, "client private key (PEM)");
  token->add_option("--lifetime", *lifetime, "how long the token can be used (at most 15m)")
      ->capture_default_str();
  token->add_option("--url", options->url,
                    "the console's address (https://HOST:PORT): print a sign-in link that "
                    "carries the token in its fragment");
  token->callback([options, lifetime, exit_code] {
    absl::Duration d;
    if (!absl::ParseDuration(*lifetime, &d)) {
      *exit_code = Usage(std::cerr, absl::StrCat("--lifetime: not a duration: ", *lifetime));
      return;
    }
    options->lifetime = d;
    *exit_code = RunConsoleToken(*options, absl::Now(), std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
