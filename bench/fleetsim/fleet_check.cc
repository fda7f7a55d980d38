#include "bench/fleetsim/fleet_check.h"

#include <grpcpp/grpcpp.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ear_verify.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil::fleetsim {
namespace {

absl::Status FromGrpc(const grpc::Status& s, std::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(std::string(what), ": ", s.error_message()));
}

// Whether the EAR token's claims say the TPM is simulated and make no hardware claim in the
// node's submodule.
bool EarSaysSimulated(const std::string& token) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return false;
  absl::StatusOr<std::string> payload = Base64UrlDecode(parts[1]);
  if (!payload.ok()) return false;
  nlohmann::json claims = nlohmann::json::parse(*payload, nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object() || claims.value("vigil.tpm-simulated", false) != true) return false;
  const nlohmann::json* vector = nullptr;
  if (claims.contains("submods") && claims["submods"].contains("vigil-node")) {
    vector = &claims["submods"]["vigil-node"]["ear.trustworthiness-vector"];
  }
  return vector != nullptr && vector->is_object() && !vector->contains("hardware");
}

}  // namespace

nlohmann::json FleetCheck::ToJson() const {
  return nlohmann::json{{"nodes_listed", nodes_listed},
                        {"nodes_checked", nodes_checked},
                        {"nodes_ek_trust_simulated", nodes_ek_trust_simulated},
                        {"verdicts", verdicts},
                        {"verdicts_tpm_simulated", verdicts_tpm_simulated},
                        {"verdicts_with_hardware_claim", verdicts_with_hardware_claim},
                        {"ear_tokens", ear_tokens},
                        {"ear_tokens_tpm_simulated", ear_tokens_tpm_simulated},
                        {"statuses", statuses}};
}

absl::StatusOr<FleetCheck> CheckFleet(const std::string& address, const std::string& ca_pem,
                                      const CertAndKey& identity,
                                      const std::vector<std::string>& node_ids, size_t max_nodes) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_pem;
  ssl.pem_private_key = identity.key_pem;
  ssl.pem_cert_chain = identity.cert_pem;
  auto stub = v1::Fleet::NewStub(grpc::CreateChannel(address, grpc::SslCredentials(ssl)));
  FleetCheck out;
  const std::set<std::string> ours(node_ids.begin(), node_ids.end());
  // Page after page: a fleet's latest verdicts do not fit one message.
  v1::ListNodesRequest list_nodes;
  do {
    grpc::ClientContext ctx;
    v1::ListNodesResponse listed;
    grpc::Status s = stub->ListNodes(&ctx, list_nodes, &listed);
    if (!s.ok()) return FromGrpc(s, "ListNodes");
    for (const v1::NodeSummary& n : listed.nodes()) out.nodes_listed += ours.count(n.node_id());
    if (listed.next_page_token() == list_nodes.page_token()) break;
    list_nodes.set_page_token(listed.next_page_token());
  } while (!list_nodes.page_token().empty());
  for (size_t i = 0; i < node_ids.size() && i < max_nodes; ++i) {
    ++out.nodes_checked;
    v1::GetNodeRequest get;
    get.set_node_id(node_ids[i]);
    v1::GetNodeResponse node;
    {
      grpc::ClientContext ctx;
      grpc::Status s = stub->GetNode(&ctx, get, &node);
      if (!s.ok()) return FromGrpc(s, "GetNode");
    }
    if (node.ek_trust() == "simulated-tpm") ++out.nodes_ek_trust_simulated;
    v1::ListVerdictsRequest list;
    list.set_node_id(node_ids[i]);
    list.set_page_size(1000);
    while (true) {
      v1::ListVerdictsResponse page;
      grpc::ClientContext ctx;
      grpc::Status s = stub->ListVerdicts(&ctx, list, &page);
      if (!s.ok()) return FromGrpc(s, "ListVerdicts");
      for (const v1::Verdict& v : page.verdicts()) {
        ++out.verdicts;
        ++out.statuses[v1::TrustStatus_Name(v.status())];
        if (v.tpm_simulated()) ++out.verdicts_tpm_simulated;
        if (v.trust_vector().hardware() != 0) ++out.verdicts_with_hardware_claim;
        if (!v.ear_token().empty()) {
          ++out.ear_tokens;
          if (EarSaysSimulated(v.ear_token())) ++out.ear_tokens_tpm_simulated;
        }
      }
      if (page.next_page_token().empty()) break;
      list.set_page_token(page.next_page_token());
    }
  }
  return out;
}

}  // namespace vigil::fleetsim
