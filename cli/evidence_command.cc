#include "cli/evidence_command.h"

#include <filesystem>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "cli/nodes_command.h"
#include "cli/tpm2_tools_format.h"
#include "common/digest.h"
#include "common/status_macros.h"
#include "common/tpm/attest.h"
#include "common/tpm/tpm_marshal.h"
#include "grpcpp/grpcpp.h"

namespace vigil::cli {
namespace {

// The PCR values of `quote`, laid out by the selection the TPM actually quoted.
absl::StatusOr<PcrFile> QuotedPcrs(const v1::Quote& quote) {
  ASSIGN_OR_RETURN(TPMS_ATTEST attest, UnmarshalTPMS_ATTEST(quote.attest()));
  if (attest.type != TPM2_ST_ATTEST_QUOTE) {
    return absl::InvalidArgumentError("the quote's attest is not a quote");
  }
  ASSIGN_OR_RETURN(std::vector<uint32_t> indices,
                   tpm::Sha256PcrIndices(attest.attested.quote.pcrSelect));
  std::map<uint32_t, std::string> values;
  for (const v1::PcrValue& v : quote.pcr_values()) {
    if (!values.emplace(v.index(), v.digest()).second) {
      return absl::InvalidArgumentError(absl::StrCat("PCR ", v.index(), " given twice"));
    }
  }
  std::vector<std::pair<uint32_t, std::string>> ordered;
  for (uint32_t pcr : indices) {
    auto it = values.find(pcr);
    if (it == values.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the quote covers PCR ", pcr, " but the evidence has no value for it"));
    }
    ordered.emplace_back(pcr, std::move(it->second));
    values.erase(it);
  }
  if (!values.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the evidence has a value for PCR ", values.begin()->first, " the quote does not cover"));
  }
  ASSIGN_OR_RETURN(PcrFile out, Sha256PcrFile(ordered));
  // Keep the quote's own selection encoding (tpm2_checkquote compares bitmap sizes).
  out.selection = attest.attested.quote.pcrSelect;
  return out;
}

int RunEvidenceExport(const FleetConnectionOptions& connection, const std::string& node_id,
                      const std::string& dir, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::unique_ptr<v1::Fleet::Stub>> stub = ConnectFleet(connection);
  if (!stub.ok()) {
    err << "vigilctl: " << stub.status().message() << "\n";
    return 2;
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(connection.timeout_seconds));
  v1::GetLatestEvidenceRequest request;
  request.set_node_id(node_id);
  v1::GetLatestEvidenceResponse response;
  const grpc::Status st = (*stub)->GetLatestEvidence(&ctx, request, &response);
  if (!st.ok()) {
    err << "vigilctl: GetLatestEvidence: " << st.error_message() << "\n";
    return 1;
  }
  if (absl::Status written = ExportEvidence(response, dir); !written.ok()) {
    err << "vigilctl: " << written.message() << "\n";
    return 1;
  }
  out << "wrote evidence of node " << node_id << " to " << dir << "\n"
      << "check it with: tpm2_checkquote -u " << dir << "/ak.pem -m " << dir << "/quote.msg -s "
      << dir << "/quote.sig -f " << dir << "/quote.pcrs -g sha256 -q $(cat " << dir
      << "/extra-data.hex)\n";
  return 0;
}

}  // namespace

absl::Status ExportEvidence(const v1::GetLatestEvidenceResponse& latest, const std::string& dir) {
  const v1::Evidence& evidence = latest.evidence();
  if (!evidence.has_quote()) {
    return absl::FailedPreconditionError("the latest evidence carries no TPM quote");
  }
  if (latest.ak_public().empty()) {
    return absl::FailedPreconditionError("the verifier has no AK public key for this node");
  }
  ASSIGN_OR_RETURN(AkPublic ak, ParseAkPublic(latest.ak_public()));
  ASSIGN_OR_RETURN(std::string ak_pem, PublicKeyPem(ak.key.get()));
  ASSIGN_OR_RETURN(PcrFile pcrs, QuotedPcrs(evidence.quote()));
  ASSIGN_OR_RETURN(std::string pcr_file, SerializePcrs(pcrs));
  const Sha256Digest payload_digest = Sha256(evidence.payload());
  const Sha256Digest extra_data = Sha256Concat({evidence.nonce(), DigestBytes(payload_digest)});

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(dir, ": ", ec.message()));
  const std::pair<const char*, std::string> files[] = {
      {"ak.pem", ak_pem},
      {"ak.pub", latest.ak_public()},
      {"quote.msg", evidence.quote().attest()},
      {"quote.sig", evidence.quote().signature()},
      {"quote.pcrs", pcr_file},
      {"extra-data.hex", HexEncode(extra_data) + "\n"},
      {"nonce.hex", HexEncode(evidence.nonce()) + "\n"},
      {"payload.bin", evidence.payload()},
  };
  for (const auto& [name, bytes] : files) {
    RETURN_IF_ERROR(WriteFileBytes(absl::StrCat(dir, "/", name), bytes));
  }
  return absl::OkStatus();
}

void RegisterEvidenceCommands(CLI::App& app, int* exit_code) {
  CLI::App* evidence = app.add_subcommand("evidence", "Work with the evidence nodes sent");
  evidence->require_subcommand(1);
  struct Options {
    FleetConnectionOptions connection;
    std::string node_id;
    std::string out_dir;
  };
  auto options = std::make_shared<Options>();
  CLI::App* exp = evidence->add_subcommand(
      "export",
      "Write a node's latest evidence as files tpm2_checkquote reads (ak.pem, quote.msg, "
      "quote.sig, quote.pcrs, extra-data.hex)");
  exp->add_option("--node", options->node_id, "node_id (hex SHA-256 of the EK public area)")
      ->required();
  exp->add_option("--out", options->out_dir, "directory to write the files into")->required();
  AddFleetConnectionFlags(exp, &options->connection);
  exp->callback([options, exit_code] {
    *exit_code = RunEvidenceExport(options->connection, options->node_id, options->out_dir,
                                   std::cout, std::cerr);
  });
}

}  // namespace vigil::cli
