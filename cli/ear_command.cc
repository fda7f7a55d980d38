#include "cli/ear_command.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cli/fleet_client.h"
#include "common/ear_verify.h"

namespace vigil::cli {

absl::StatusOr<std::string> LoadJwks(const EarVerifyOptions& options) {
  if (options.from_verifier) {
    std::ostringstream why;
    std::unique_ptr<FleetClient> client = FleetClient::Connect(options.connection, why);
    if (client == nullptr) {
      return absl::InvalidArgumentError(absl::StripAsciiWhitespace(why.str()));
    }
    v1::GetJwksResponse response;
    const grpc::Status st =
        client->Call(&v1::Fleet::Stub::GetJwks, v1::GetJwksRequest(), &response);
    if (!st.ok()) return absl::UnavailableError(client->Describe("GetJwks", st));
    return response.jwks_json();
  }
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
      "Check an EAR token's ES256 signature against a JWKS (a file, offline, or fetched from "
      "the verifier) and print its claims. Exit 0 valid, 1 invalid, 2 unreadable input, keys "
      "that could not be had, or bad arguments");
  verify->add_option("token", options->token, "the token (compact JWS), or - for stdin")
      ->required();
  CLI::Option* jwks = verify->add_option("--jwks", options->jwks_path,
                                         "JWKS file (from `vigilctl jwks`); or give --verifier");
  AddFleetConnectionFlags(verify, &options->connection);
  CLI::Option* verifier = verify->get_option("--verifier");
  // Here the flag chooses the key source, so it has no default to show.
  verifier->default_str("");
  verifier->description(
      "fetch the JWKS from this verifier (HOST:PORT) with GetJwks instead of --jwks; the "
      "connection flags below apply");
  jwks->excludes(verifier);
  verify->callback([options, exit_code, verifier] {
    options->from_verifier = verifier->count() > 0;
    if (!options->from_verifier && options->jwks_path.empty()) {
      std::cerr << "vigilctl ear verify: give --jwks FILE or --verifier ADDRESS\n";
      *exit_code = 2;
      return;
    }
    *exit_code = RunEarVerify(*options, std::cin, std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
