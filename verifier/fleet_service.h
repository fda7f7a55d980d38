#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "verifier/node_registry.h"
#include "verifier/policy_set.h"
#include "verifier/results/ear_signer.h"
#include "verifier/store/store.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil::verifier {

/// What the Fleet API serves from, and its limits.
struct FleetServiceOptions {
  /// The SPIFFE trust domain of client certificates.
  std::string trust_domain;
  /// Required.
  Store* store = nullptr;
  /// May be null for a verifier without enrollment: then no node is enrolled,
  /// GetLatestEvidence has no AK and ApproveNode is unavailable.
  NodeRegistry* registry = nullptr;
  /// The policies the Attest streams send to nodes; PutPolicy installs into it. Null: a
  /// stored policy reaches nodes only after a restart loads it.
  PolicySet* policies = nullptr;
  /// Null when the verifier signs no results (GetJwks is then FAILED_PRECONDITION).
  const EarSigner* signer = nullptr;
  /// Called after a revocation is stored, with the node id: the verifier closes the node's
  /// open Attest stream. May be empty.
  std::function<void(const std::string& node_id)> on_revoked;
  /// How an enrolled node's EK was trusted when no operator approval is on record
  /// ("certificate" or "tofu"; "" when the verifier cannot tell).
  std::string unapproved_ek_trust;
  /// CheckAdmission: results older than this are stale when the request gives no max_age_ms.
  absl::Duration default_admission_max_age = absl::Seconds(60);
  /// ExportAssessment refuses (RESOURCE_EXHAUSTED) a range holding more verdicts.
  size_t max_export_verdicts = 100000;
  /// WatchVerdicts holds at most this many changes per watcher in memory.
  size_t watch_page_size = 64;
  /// A ListNodes or ListVerdicts page ends before its nodes or verdicts would pass this many
  /// bytes (each node carries its latest verdict), so it fits a client's default 4 MiB
  /// message limit (the verifier lowers it to 3/4 of a smaller --max-message-bytes); an
  /// ExportAssessment document larger than this is refused over the RPC (RESOURCE_EXHAUSTED;
  /// the console's download has no such limit).
  size_t max_page_bytes = 3 << 20;
};

/// The Fleet API for operators and relying parties (proto/vigil/v1/fleet.proto): nodes and
/// their results, verdict history and status-change watches, admission decisions, OSCAL
/// export, the EAR keys, policies, approvals, revocations and the audit log. Only client
/// certificates may call it, each call only with the roles fleet.proto names; others get
/// PERMISSION_DENIED. The logic lives in the plain methods below; the RPC handlers only
/// check the caller and convert. Every operator action is written to the audit log.
class FleetService final : public v1::Fleet::CallbackService {
 public:
  /// `options.store` is required; every pointer must outlive the service. The service must
  /// outlive the server it is registered with.
  explicit FleetService(FleetServiceOptions options);
  ~FleetService() override;

  FleetService(const FleetService&) = delete;
  FleetService& operator=(const FleetService&) = delete;

  // The plain methods below share their names with the RPC handlers; keep the generated
  // overloads visible rather than hidden.
  using v1::Fleet::CallbackService::ApproveNode;
  using v1::Fleet::CallbackService::CheckAdmission;
  using v1::Fleet::CallbackService::ExportAssessment;
  using v1::Fleet::CallbackService::GetJwks;
  using v1::Fleet::CallbackService::GetLatestEvidence;
  using v1::Fleet::CallbackService::GetNode;
  using v1::Fleet::CallbackService::ListAudit;
  using v1::Fleet::CallbackService::ListNodes;
  using v1::Fleet::CallbackService::ListPolicies;
  using v1::Fleet::CallbackService::ListVerdicts;
  using v1::Fleet::CallbackService::PutPolicy;
  using v1::Fleet::CallbackService::RevokeNode;

  /// Nodes that reported, connected, enrolled or were revoked, ordered by node_id.
  v1::ListNodesResponse ListNodes() const;
  /// One page of them, as the ListNodes RPC serves it: at most `page_size` nodes (0: 500, at
  /// most 1000) after `page_token` (a node id: the last of the previous page), fewer when
  /// the page would pass the options' max_page_bytes (never none while nodes remain).
  /// Reads the verdicts of that page's nodes only.
  absl::StatusOr<v1::ListNodesResponse> ListNodes(const v1::ListNodesRequest& request) const;
  /// ListNodes' nodes by id and hostname only (empty for a node that never reported), ordered
  /// by node_id, without reading any verdict: what finding a node by name needs.
  std::vector<NodeName> NodeNames() const;
  /// One node. INVALID_ARGUMENT for a malformed id, NOT_FOUND when the verifier knows
  /// nothing of it.
  absl::StatusOr<v1::GetNodeResponse> GetNode(const std::string& node_id) const;
  /// NOT_FOUND when the node never sent evidence.
  absl::StatusOr<v1::GetLatestEvidenceResponse> GetLatestEvidence(const std::string& node_id) const;
  /// The store's verdicts for the request's filters and page.
  absl::StatusOr<v1::ListVerdictsResponse> ListVerdicts(
      const v1::ListVerdictsRequest& request) const;
  /// The admission decision from the stored latest verdict (docs/results.md, "Admission").
  /// INVALID_ARGUMENT for a malformed node id or a negative max_age_ms. `now` is the time
  /// ages are measured at.
  absl::StatusOr<v1::CheckAdmissionResponse> CheckAdmission(
      const v1::CheckAdmissionRequest& request, absl::Time now) const;
  /// OSCAL assessment-results for [since, until). INVALID_ARGUMENT for an empty or
  /// reversed range, RESOURCE_EXHAUSTED when it holds more than max_export_verdicts or when
  /// the document would pass `max_bytes` (0: no limit; the RPC passes max_page_bytes).
  absl::StatusOr<v1::ExportAssessmentResponse> ExportAssessment(
      const v1::ExportAssessmentRequest& request, size_t max_bytes = 0) const;
  /// FAILED_PRECONDITION when the verifier signs no results.
  absl::StatusOr<v1::GetJwksResponse> GetJwks() const;
  /// Parses, stores and installs one RuntimePolicy document, and audits it. INVALID_ARGUMENT
  /// (every error as "line L, column C: message") when it does not parse or is not exactly
  /// one document; FAILED_PRECONDITION unless its revision is greater than the current
  /// one's. Nothing changes on failure. Lint warnings come back in the same form.
  absl::StatusOr<v1::PutPolicyResponse> PutPolicy(const std::string& yaml,
                                                  const std::string& actor);
  absl::StatusOr<v1::ListPoliciesResponse> ListPolicies() const;
  /// Approves the EK for enrollment, clears a revocation of the node, and audits it.
  /// INVALID_ARGUMENT unless `node_id` is 64 lowercase hex characters.
  absl::Status ApproveNode(const std::string& node_id, const std::string& actor);
  /// Revokes the node (stored with `reason`), withdraws its EK approval, calls on_revoked,
  /// then audits it. INVALID_ARGUMENT for a malformed id; NOT_FOUND for a node that never
  /// enrolled, reported or was approved.
  absl::Status RevokeNode(const std::string& node_id, const std::string& reason,
                          const std::string& actor);
  absl::StatusOr<v1::ListAuditResponse> ListAudit(const v1::ListAuditRequest& request) const;

  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* context,
                                      const v1::ListNodesRequest* request,
                                      v1::ListNodesResponse* response) override;
  grpc::ServerUnaryReactor* GetNode(grpc::CallbackServerContext* context,
                                    const v1::GetNodeRequest* request,
                                    v1::GetNodeResponse* response) override;
  grpc::ServerUnaryReactor* GetLatestEvidence(grpc::CallbackServerContext* context,
                                              const v1::GetLatestEvidenceRequest* request,
                                              v1::GetLatestEvidenceResponse* response) override;
  grpc::ServerUnaryReactor* ListVerdicts(grpc::CallbackServerContext* context,
                                         const v1::ListVerdictsRequest* request,
                                         v1::ListVerdictsResponse* response) override;
  grpc::ServerWriteReactor<v1::VerdictChange>* WatchVerdicts(
      grpc::CallbackServerContext* context, const v1::WatchVerdictsRequest* request) override;

  /// Graceful shutdown, first step: ends every open WatchVerdicts stream with UNAVAILABLE
  /// once the change being written (if any) is out, so the server need not wait out its
  /// grace period for watches that never end by themselves. A watcher resumes from its last
  /// cursor elsewhere. Watches opened afterwards end at once.
  void CloseWatchers();
  grpc::ServerUnaryReactor* CheckAdmission(grpc::CallbackServerContext* context,
                                           const v1::CheckAdmissionRequest* request,
                                           v1::CheckAdmissionResponse* response) override;
  grpc::ServerUnaryReactor* ExportAssessment(grpc::CallbackServerContext* context,
                                             const v1::ExportAssessmentRequest* request,
                                             v1::ExportAssessmentResponse* response) override;
  grpc::ServerUnaryReactor* GetJwks(grpc::CallbackServerContext* context,
                                    const v1::GetJwksRequest* request,
                                    v1::GetJwksResponse* response) override;
  grpc::ServerUnaryReactor* PutPolicy(grpc::CallbackServerContext* context,
                                      const v1::PutPolicyRequest* request,
                                      v1::PutPolicyResponse* response) override;
  grpc::ServerUnaryReactor* ListPolicies(grpc::CallbackServerContext* context,
                                         const v1::ListPoliciesRequest* request,
                                         v1::ListPoliciesResponse* response) override;
  grpc::ServerUnaryReactor* ApproveNode(grpc::CallbackServerContext* context,
                                        const v1::ApproveNodeRequest* request,
                                        v1::ApproveNodeResponse* response) override;
  grpc::ServerUnaryReactor* RevokeNode(grpc::CallbackServerContext* context,
                                       const v1::RevokeNodeRequest* request,
                                       v1::RevokeNodeResponse* response) override;
  grpc::ServerUnaryReactor* ListAudit(grpc::CallbackServerContext* context,
                                      const v1::ListAuditRequest* request,
                                      v1::ListAuditResponse* response) override;

 private:
  // A node the store or the registry knows: its latest report's hostname ("" for none) and
  // whether it is enrolled. No verdict is read.
  struct KnownNode {
    std::string hostname;
    bool enrolled = false;
  };
  std::map<std::string, KnownNode> KnownNodes() const;

  /// Runs watchers' store reads one after another on a thread of its own, so neither the
  /// store's writer thread (which wakes watchers) nor gRPC's threads wait on the store.
  class WatchReader {
   public:
    WatchReader();
    /// Runs every task posted before it returns.
    ~WatchReader();
    void Post(std::function<void()> task);

   private:
    void Loop();

    std::mutex mu_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> tasks_;  // guarded by mu_
    bool stopping_ = false;                    // guarded by mu_
    std::thread thread_;
  };
  class WatchReactor;

  absl::Status Audit(const std::string& actor, const std::string& action, const std::string& target,
                     const std::string& detail);

  // Registers a new watch; false once CloseWatchers ran (the watch must end at once).
  bool AddWatcher(WatchReactor* watcher);
  void RemoveWatcher(WatchReactor* watcher);

  const FleetServiceOptions options_;
  Store* const store_;
  WatchReader watch_reader_;
  // Open watches (taken before a watch's own lock, never after it).
  std::mutex watchers_mu_;
  std::set<WatchReactor*> watchers_;  // guarded by watchers_mu_
  bool watchers_closed_ = false;      // guarded by watchers_mu_
};

}  // namespace vigil::verifier
