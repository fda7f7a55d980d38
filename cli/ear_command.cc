#include "cli/ear_command.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/ear_verify.h"

namespace vigil::cli {

absl::StatusOr<std::string> LoadJwks(const EarVerifyOptions& options) {
  std::ifstream in(options.jwks_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read JWKS file ", options.jwks_path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int RunEarVerify(const EarVerifyOptions& options, std::istream& in, std::ostream& out,
                 std::ostream& err) {
  std::string token = options.token;
  if (token == "-") {
    token.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  token = std::string(absl::StripAsciiWhitespace(token));
  if (token.empty()) {
    err << "vigilctl ear verify: no token given\n";
    return 2;
  }
  absl::StatusOr<std::string> jwks = LoadJwks(options);
  if (!jwks.ok()) {
    err << "vigilctl ear verify: " << jwks.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<nlohmann::json> claims = VerifyEarToken(token, *jwks);
  if (!claims.ok()) {
    err << "vigilctl ear verify: token is NOT valid: " << claims.status().message() << "\n";
    return 1;
  }
  out << claims->dump(2) << "\n";
  return 0;
}

void RegisterEarCommands(CLI::App& app, int* exit_code) {
  CLI::App* ear = app.add_subcommand("ear", "Work with EAR tokens (signed appraisal results)");
  ear->require_subcommand(1);
  auto options = std::make_shared<EarVerifyOptions>();
  CLI::App* verify = ear->add_subcommand(
      "verify",
      "Check an EAR token's ES256 signature against a JWKS, offline, and print its claims. "
      "Exit 0 valid, 1 invalid, 2 unreadable input or bad arguments");
  verify->add_option("token", options->token, "the token (compact JWS), or - for stdin")
      ->required();
  verify->add_option("--jwks", options->jwks_path, "JWKS file (from the verifier's GetJwks)")
      ->required();
  verify->callback([options, exit_code] {
    *exit_code = RunEarVerify(*options, std::cin, std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
