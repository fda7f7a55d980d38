#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/statusor.h"
#include "verifier/node_registry.h"
#include "verifier/store/store.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil::verifier {

/// The Fleet API for operators and relying parties: every known node with its latest
/// verdict, a node's latest evidence with its AK (so it can be checked again elsewhere), and
/// operator approval of EKs. Only client certificates may call it; a node certificate gets
/// PERMISSION_DENIED. The logic lives in the plain methods below; the RPC handlers only
/// check the caller and convert.
class FleetService final : public v1::Fleet::CallbackService {
 public:
  /// `store` is required; `registry` may be null for a verifier without enrollment (then
  /// no node is enrolled, GetLatestEvidence has no AK and ApproveNode is unavailable).
  /// Both must outlive the service.
  FleetService(std::string trust_domain, Store* store, NodeRegistry* registry);

  // The plain methods below share their names with the RPC handlers; keep the generated
  // overloads visible rather than hidden.
  using v1::Fleet::CallbackService::ApproveNode;
  using v1::Fleet::CallbackService::GetLatestEvidence;
  using v1::Fleet::CallbackService::ListNodes;

  /// Nodes that reported, connected or enrolled, ordered by node_id.
  v1::ListNodesResponse ListNodes() const;
  /// NOT_FOUND when the node never sent evidence.
  absl::StatusOr<v1::GetLatestEvidenceResponse> GetLatestEvidence(const std::string& node_id) const;
  /// Approves the EK for enrollment and clears a revocation of the node. INVALID_ARGUMENT
  /// unless `node_id` is 64 lowercase hex characters.
  absl::Status ApproveNode(const std::string& node_id, const std::string& approved_by);

  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* context,
                                      const v1::ListNodesRequest* request,
                                      v1::ListNodesResponse* response) override;
  grpc::ServerUnaryReactor* GetLatestEvidence(grpc::CallbackServerContext* context,
                                              const v1::GetLatestEvidenceRequest* request,
                                              v1::GetLatestEvidenceResponse* response) override;
  grpc::ServerUnaryReactor* ApproveNode(grpc::CallbackServerContext* context,
                                        const v1::ApproveNodeRequest* request,
                                        v1::ApproveNodeResponse* response) override;

 private:
  const std::string trust_domain_;
  Store* const store_;
  NodeRegistry* const registry_;
};

}  // namespace vigil::verifier
