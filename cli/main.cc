// vigilctl: the operators' and auditors' command line for a Vigil fabric.

#include <iostream>

#include "CLI/CLI.hpp"
#include "cli/admission_command.h"
#include "cli/audit_command.h"
#include "cli/console_command.h"
#include "cli/ear_command.h"
#include "cli/evidence_command.h"
#include "cli/export_command.h"
#include "cli/jwks_command.h"
#include "cli/nodes_command.h"
#include "cli/pki_command.h"
#include "cli/policy_command.h"
#include "cli/quote_command.h"
#include "cli/scope_command.h"
#include "cli/status_command.h"
#include "cli/verdict_watch_command.h"
#include "cli/verdicts_command.h"
#include "common/logging.h"

int main(int argc, char** argv) {
  vigil::LogToStderr();
  CLI::App app{
      "vigilctl: operate a Vigil attestation fabric (PKI, nodes, verdicts, admission, policies, "
      "audit evidence, quotes, workload scopes).",
      "vigilctl"};
  app.require_subcommand(1);
  int exit_code = 0;

  // One registration per command family.
  vigil::cli::RegisterPkiCommands(app, &exit_code);
  vigil::cli::RegisterNodesCommands(app, &exit_code);
  vigil::cli::RegisterEvidenceCommands(app, &exit_code);
  vigil::cli::RegisterQuoteCommands(app, &exit_code);
  vigil::cli::RegisterEarCommands(app, &exit_code);
  vigil::cli::RegisterPolicyCommands(app, &exit_code);
  vigil::cli::RegisterStatusCommand(app, &exit_code);
  vigil::cli::RegisterVerdictsCommand(app, &exit_code);
  vigil::cli::RegisterWatchCommand(app, &exit_code);
  vigil::cli::RegisterAdmissionCommands(app, &exit_code);
  vigil::cli::RegisterExportCommands(app, &exit_code);
  vigil::cli::RegisterJwksCommand(app, &exit_code);
  vigil::cli::RegisterAuditCommands(app, &exit_code);
  vigil::cli::RegisterConsoleCommands(app, &exit_code);
  vigil::cli::RegisterScopeCommands(app, &exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "vigilctl: " << e.what() << "\n";
    return 2;
  }
  return exit_code;
}
