#include "cli/policy_command.h"

#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/policy_remote_command.h"
#include "common/policy/parser.h"

namespace vigil::cli {

int LintPolicies(const std::vector<std::string>& files, std::ostream& out) {
  int exit_code = 0;
  std::map<std::string, std::string> seen;  // policy name -> file that defines it
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      out << file << ":1:1: error: cannot read the file\n";
      exit_code = 1;
      continue;
    }
    policy::ParseResult result = policy::ParsePolicies(text.str(), file);
    for (const policy::Diagnostic& d : result.diagnostics) out << d.ToString() << "\n";
    if (result.HasErrors()) exit_code = 1;
    for (const policy::Policy& p : result.policies) {
      auto [it, inserted] = seen.emplace(p.name, file);
      if (!inserted) {
        out << file << ":1:1: error: policy '" << p.name << "' is also defined in " << it->second
            << "\n";
        exit_code = 1;
      }
    }
  }
  return exit_code;
}

void RegisterPolicyCommands(CLI::App& app, int* exit_code) {
  CLI::App* policy = app.add_subcommand("policy", "Reference policies (RuntimePolicy YAML)");
  policy->require_subcommand(1);
  AddPolicyRemoteCommands(policy, exit_code);
  auto files = std::make_shared<std::vector<std::string>>();
  CLI::App* lint = policy->add_subcommand(
      "lint",
      "Check RuntimePolicy files: print every error and warning as FILE:LINE:COL; exit 1 "
      "on any error, 0 otherwise");
  lint->add_option("FILE", *files, "Policy files (YAML streams of RuntimePolicy documents)")
      ->required()
      ->check(CLI::ExistingFile);
  lint->callback([files, exit_code] { *exit_code = LintPolicies(*files, std::cout); });
}

}  // namespace vigil::cli
