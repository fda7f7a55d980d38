// vigilctl: the operators' and auditors' command line for a Vigil fabric.

#include <iostream>

#include "CLI/CLI.hpp"
#include "cli/ear_command.h"
#include "cli/evidence_command.h"
#include "cli/nodes_command.h"
#include "cli/pki_command.h"
#include "cli/policy_command.h"
#include "cli/quote_command.h"
#include "common/logging.h"

int main(int argc, char** argv) {
  vigil::LogToStderr();
  CLI::App app{
      "vigilctl: operate a Vigil attestation fabric (PKI, nodes, evidence, quotes, policies).",
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
