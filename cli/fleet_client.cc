#include "cli/fleet_client.h"

#include <chrono>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/pki.h"
#include "common/spiffe.h"

namespace vigil::cli {

std::string RequiredRoles(absl::string_view rpc) {
  // As fleet.proto documents each call.
  static const auto* const kRoles = new std::map<absl::string_view, absl::string_view>{
      {"ListNodes", "operator, auditor or orchestrator"},
      {"GetNode", "operator, auditor or orchestrator"},
      {"ListVerdicts", "operator, auditor or orchestrator"},
      {"WatchVerdicts", "operator, auditor or orchestrator"},
      {"GetLatestEvidence", "operator or auditor"},
      {"ExportAssessment", "operator or auditor"},
      {"ListPolicies", "operator or auditor"},
      {"ListAudit", "operator or auditor"},
      {"CheckAdmission", "operator or orchestrator"},
      {"PutPolicy", "operator"},
      {"ApproveNode", "operator"},
      {"RevokeNode", "operator"},
      {"GetJwks", "any client"},
  };
  auto it = kRoles->find(rpc);
  return it == kRoles->end() ? "" : std::string(it->second);
}

absl::StatusOr<std::string> CertificateRole(const std::string& cert_pem) {
  absl::StatusOr<X509Ptr> cert = CertificateFromPem(cert_pem);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::vector<std::string>> uris = UriSans(cert->get());
  if (!uris.ok()) return uris.status();
  if (uris->size() != 1) {
    return absl::InvalidArgumentError("the certificate does not carry exactly one URI SAN");
  }
  absl::StatusOr<SpiffeId> id = ParseSpiffeId(uris->front());
  if (!id.ok()) return id.status();
  return std::string(SpiffeRoleName(id->role));
}

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    default:
      return absl::StrCat("CODE_", static_cast<int>(code));
  }
}

std::unique_ptr<FleetClient> FleetClient::Connect(const FleetConnectionOptions& options,
                                                  std::ostream& err) {
  absl::StatusOr<std::unique_ptr<v1::Fleet::Stub>> stub = ConnectFleet(options);
  if (!stub.ok()) {
    err << "vigilctl: " << stub.status().message() << "\n";
    return nullptr;
  }
  return std::unique_ptr<FleetClient>(new FleetClient(options, std::move(*stub)));
}

void FleetClient::SetDeadline(grpc::ClientContext& ctx) const {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(options_.timeout_seconds));
}

std::string FleetClient::Describe(absl::string_view rpc, const grpc::Status& status,
                                  absl::string_view not_found) const {
  const std::string detail = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::StrCat("cannot reach the verifier at ", options_.verifier, " (", rpc, ": ",
                          detail, ")");
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::StrCat("the verifier at ", options_.verifier, " did not answer ", rpc,
                          " within ", options_.timeout_seconds, " s");
    case grpc::StatusCode::PERMISSION_DENIED: {
      const std::string path = ClientCertificatePath(options_);
      std::string role = "no role vigilctl can read";
      if (absl::StatusOr<std::string> pem = ReadFileToString(path); pem.ok()) {
        if (absl::StatusOr<std::string> r = CertificateRole(*pem); r.ok()) role = "role " + *r;
      }
      return absl::StrCat(rpc, ": PERMISSION_DENIED: the client certificate ", path, " has ", role,
                          "; ", rpc, " needs ", RequiredRoles(rpc), " (verifier: ", detail, ")");
    }
    case grpc::StatusCode::NOT_FOUND:
      if (!not_found.empty()) {
        return absl::StrCat(rpc, ": NOT_FOUND: ", not_found, " (verifier: ", detail, ")");
      }
      break;
    default:
      break;
  }
  return absl::StrCat(rpc, ": ", StatusCodeName(status.error_code()), ": ", detail);
}

int FleetClient::Fail(std::ostream& err, absl::string_view rpc, const grpc::Status& status,
                      absl::string_view not_found) const {
  err << "vigilctl: " << Describe(rpc, status, not_found) << "\n";
  return kExitFailed;
}

}  // namespace vigil::cli
