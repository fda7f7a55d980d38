#include "cli/pki_command.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/pki.h"
#include "common/spiffe.h"
#include "common/status_macros.h"

namespace vigil::cli {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

absl::Status EnsureDirectory(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) {
    struct stat st;
    if (stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(dir, " is not a directory"));
  }
  return absl::PermissionDeniedError(absl::StrCat(dir, ": ", std::strerror(errno)));
}

absl::Status CheckDays(int days, std::string_view what) {
  if (days < 1 || days > 36500) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what), " must be between 1 and 36500 days"));
  }
  return absl::OkStatus();
}

void Report(const absl::Status& status, int* exit_code) {
  if (status.ok()) return;
  std::cerr << "vigilctl: " << status.message() << "\n";
  // A bad value is a usage error (2), like a bad flag; anything else failed to run (1).
  *exit_code = status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

absl::Status InitPkiDirectory(const PkiInitOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("--dir is required");
  RETURN_IF_ERROR(ValidateTrustDomain(options.trust_domain));
  RETURN_IF_ERROR(CheckDays(options.ca_days, "CA lifetime"));
  RETURN_IF_ERROR(CheckDays(options.verifier_days, "verifier certificate lifetime"));
  RETURN_IF_ERROR(EnsureDirectory(options.dir));
  const std::string& dir = options.dir;
  if (!options.force && (Exists(dir + "/ca.key") || Exists(dir + "/ca.crt"))) {
    return absl::AlreadyExistsError(
        absl::StrCat(dir, " already holds a CA; pass --force to replace it"));
  }

  ASSIGN_OR_RETURN(CaMaterial ca,
                   CreateCa(options.trust_domain, absl::Hours(24) * options.ca_days));
  std::vector<std::string> hosts = {"localhost", "127.0.0.1"};
  for (const std::string& san : options.extra_sans) {
    if (std::find(hosts.begin(), hosts.end(), san) == hosts.end()) hosts.push_back(san);
  }
  ASSIGN_OR_RETURN(
      CertAndKey verifier,
      IssueServerCertificate(ca, "vigil-verifier", hosts,
                             Validity::FromNow(absl::Hours(24) * options.verifier_days)));
  ASSIGN_OR_RETURN(std::string ca_key_pem, PrivateKeyToPem(ca.key.get()));

  // Keys first, each created 0600 before a byte of it is written.
  RETURN_IF_ERROR(WritePrivateFile(dir + "/ca.key", ca_key_pem, options.force));
  RETURN_IF_ERROR(WritePrivateFile(dir + "/verifier.key", verifier.key_pem, options.force));
  RETURN_IF_ERROR(WritePublicFile(dir + "/ca.crt", ca.cert_pem, options.force));
  RETURN_IF_ERROR(WritePublicFile(dir + "/verifier.crt", verifier.cert_pem, options.force));
  RETURN_IF_ERROR(
      WritePublicFile(dir + "/trust-domain", options.trust_domain + "\n", options.force));
  return absl::OkStatus();
}

absl::StatusOr<IssuedFiles> IssueIntoPkiDirectory(const PkiIssueOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("--dir is required");
  if (options.node_id.empty() == options.client_name.empty()) {
    return absl::InvalidArgumentError("give exactly one of --node and --client");
  }
  RETURN_IF_ERROR(CheckDays(options.days, "--days"));
  ASSIGN_OR_RETURN(CaMaterial ca, LoadCa(options.dir));
  bool node = !options.node_id.empty();
  const std::string& name = node ? options.node_id : options.client_name;
  SpiffeRole role = SpiffeRole::kNode;
  if (!node) {
    absl::StatusOr<SpiffeRole> client_role = ParseClientRole(options.role);
    if (!client_role.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--role: ", client_role.status().message()));
    }
    role = *client_role;
  }
  ASSIGN_OR_RETURN(std::string uri, FormatSpiffeId(SpiffeId{ca.trust_domain, role, name}));
  IssuedFiles files;
  std::string base = absl::StrCat(options.dir, "/", node ? "node-" : "client-", name);
  files.cert_path = base + ".crt";
  files.key_path = base + ".key";
  files.spiffe_id = uri;
  if (!options.force && (Exists(files.cert_path) || Exists(files.key_path))) {
    return absl::AlreadyExistsError(
        absl::StrCat(files.cert_path, " already exists; pass --force to replace it"));
  }
  ASSIGN_OR_RETURN(
      CertAndKey issued,
      IssueClientCertificate(ca, uri, Validity::FromNow(absl::Hours(24) * options.days)));
  RETURN_IF_ERROR(WritePrivateFile(files.key_path, issued.key_pem, options.force));
  RETURN_IF_ERROR(WritePublicFile(files.cert_path, issued.cert_pem, options.force));
  return files;
}

void RegisterPkiCommands(CLI::App& app, int* exit_code) {
  CLI::App* pki = app.add_subcommand("pki", "Create the fabric's CA and issue certificates");
  pki->require_subcommand(1);

  auto init = std::make_shared<PkiInitOptions>();
  CLI::App* init_cmd = pki->add_subcommand(
      "init", "Create a CA and the verifier's server certificate in a new PKI directory");
  init_cmd->add_option("--dir", init->dir, "PKI directory to create or fill")->required();
  init_cmd->add_option("--trust-domain", init->trust_domain, "SPIFFE trust domain")
      ->capture_default_str();
  init_cmd->add_option("--san", init->extra_sans,
                       "Extra host name or IP address for the verifier certificate "
                       "(repeatable; localhost and 127.0.0.1 are always included)");
  init_cmd->add_option("--ca-days", init->ca_days, "CA lifetime in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  init_cmd
      ->add_option("--verifier-days", init->verifier_days, "Verifier certificate lifetime in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  init_cmd->add_flag("--force", init->force, "Replace an existing CA in --dir");
  init_cmd->callback([init, exit_code] {
    absl::Status s = InitPkiDirectory(*init);
    Report(s, exit_code);
    if (s.ok()) {
      std::cout << "wrote " << init->dir << "/{ca.crt,ca.key,verifier.crt,verifier.key,"
                << "trust-domain} (trust domain " << init->trust_domain << ")\n";
    }
  });

  auto issue = std::make_shared<PkiIssueOptions>();
  CLI::App* issue_cmd =
      pki->add_subcommand("issue", "Issue a node or client certificate from a PKI directory's CA");
  issue_cmd->add_option("--dir", issue->dir, "PKI directory made by `pki init`")->required();
  CLI::Option* node_opt =
      issue_cmd->add_option("--node", issue->node_id, "Node id: writes node-<id>.crt/.key");
  CLI::Option* client_opt = issue_cmd->add_option("--client", issue->client_name,
                                                  "Client name: writes client-<name>.crt/.key");
  node_opt->excludes(client_opt);
  issue_cmd
      ->add_option("--role", issue->role,
                   "The client's role: operator (read and write), auditor or orchestrator (read)")
      ->capture_default_str()
      ->check(CLI::IsMember({"operator", "auditor", "orchestrator"}))
      ->excludes(node_opt);
  issue_cmd->add_option("--days", issue->days, "Certificate lifetime in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  issue_cmd->add_flag("--force", issue->force, "Replace existing files of this identity");
  issue_cmd->callback([issue, exit_code] {
    absl::StatusOr<IssuedFiles> files = IssueIntoPkiDirectory(*issue);
    Report(files.status(), exit_code);
    if (files.ok()) {
      std::cout << "wrote " << files->cert_path << " and " << files->key_path << " for "
                << files->spiffe_id << "\n";
    }
  });
}

}  // namespace vigil::cli
