#include "verifier/fleet_service.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "common/spiffe.h"
#include "spdlog/spdlog.h"
#include "verifier/peer_identity.h"

namespace vigil::verifier {
namespace {

bool IsNodeId(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& st) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(st));
  return reactor;
}

}  // namespace

FleetService::FleetService(std::string trust_domain, Store* store, NodeRegistry* registry)
    : trust_domain_(std::move(trust_domain)), store_(store), registry_(registry) {}

v1::ListNodesResponse FleetService::ListNodes() const {
  std::map<std::string, v1::NodeSummary> nodes;
  for (NodeResultSummary& s : store_->ListNodes()) {
    v1::NodeSummary& n = nodes[s.node_id];
    n.set_node_id(s.node_id);
    n.set_hostname(std::move(s.hostname));
    n.set_connected(s.connected);
    *n.mutable_latest_verdict() = std::move(s.latest_verdict);
    n.set_last_seen_unix_nano(s.last_seen_unix_nano);
    n.set_revoked(s.revoked);
  }
  if (registry_ != nullptr) {
    // Enrolled nodes that never reported are listed too.
    for (const EnrolledNode& e : registry_->ListNodes()) {
      v1::NodeSummary& n = nodes[e.node_id];
      n.set_node_id(e.node_id);
      n.set_enrolled(true);
    }
  }
  v1::ListNodesResponse out;
  for (auto& [id, n] : nodes) *out.add_nodes() = std::move(n);
  return out;
}

absl::StatusOr<v1::GetLatestEvidenceResponse> FleetService::GetLatestEvidence(
    const std::string& node_id) const {
  if (node_id.empty()) return absl::InvalidArgumentError("node_id is required");
  absl::StatusOr<LatestResult> latest = store_->Latest(node_id);
  if (!latest.ok()) return latest.status();
  v1::GetLatestEvidenceResponse out;
  out.set_node_id(node_id);
  *out.mutable_evidence() = std::move(latest->evidence);
  *out.mutable_verdict() = std::move(latest->verdict);
  if (registry_ != nullptr) {
    if (std::shared_ptr<NodeState> state = registry_->Find(node_id)) {
      out.set_ak_public(state->node().ak_public);
    }
  }
  return out;
}

absl::Status FleetService::ApproveNode(const std::string& node_id, const std::string& approved_by) {
  if (!IsNodeId(node_id)) {
    return absl::InvalidArgumentError(
        "node_id must be the lowercase hex SHA-256 of the EK public area (64 characters)");
  }
  if (registry_ == nullptr) {
    return absl::FailedPreconditionError("this verifier has no node registry");
  }
  if (absl::Status st = registry_->Approve(node_id); !st.ok()) return st;
  // An approval re-admits a revoked node.
  if (absl::Status st = store_->ClearRevocation(node_id); !st.ok()) return st;
  spdlog::info("node {} approved for enrollment by client {}", node_id, approved_by);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* FleetService::ListNodes(grpc::CallbackServerContext* context,
                                                  const v1::ListNodesRequest* request,
                                                  v1::ListNodesResponse* response) {
  absl::StatusOr<PeerIdentity> peer = RequireRole(*context, trust_domain_, kAnyClientRole);
  if (!peer.ok()) return Finish(context, peer.status());
  *response = ListNodes();
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* FleetService::GetLatestEvidence(
    grpc::CallbackServerContext* context, const v1::GetLatestEvidenceRequest* request,
    v1::GetLatestEvidenceResponse* response) {
  absl::StatusOr<PeerIdentity> peer =
      RequireRole(*context, trust_domain_, {SpiffeRole::kOperator, SpiffeRole::kAuditor});
  if (!peer.ok()) return Finish(context, peer.status());
  absl::StatusOr<v1::GetLatestEvidenceResponse> latest = GetLatestEvidence(request->node_id());
  if (!latest.ok()) return Finish(context, latest.status());
  *response = *std::move(latest);
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* FleetService::ApproveNode(grpc::CallbackServerContext* context,
                                                    const v1::ApproveNodeRequest* request,
                                                    v1::ApproveNodeResponse* response) {
  absl::StatusOr<PeerIdentity> peer = RequireRole(*context, trust_domain_, SpiffeRole::kOperator);
  if (!peer.ok()) return Finish(context, peer.status());
  return Finish(context, ApproveNode(request->node_id(), peer->name));
}

}  // namespace vigil::verifier
