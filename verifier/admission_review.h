#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "verifier/fleet_service.h"

namespace vigil::verifier {

/// How the Kubernetes admission webhook decides (docs/admission.md).
struct AdmissionReviewOptions {
  /// The pod label naming the Vigil workload an agent pod runs as; a pod with it is admitted
  /// only while that workload's latest result on the pod's node affirms (when the node has
  /// reported it at all).
  std::string workload_label = "vigil.dev/workload";
  /// Results older than this are stale (deny); zero means the Fleet API's default.
  absl::Duration max_age = absl::ZeroDuration();
  /// Unscheduled labelled pods remembered until their binding: at most this many, each for
  /// at most `pending_ttl`.
  size_t max_pending_pods = 65536;
  absl::Duration pending_ttl = absl::Minutes(15);
};

/// The answer to one HTTP request carrying an AdmissionReview.
struct AdmissionHttpResponse {
  /// 200 with an AdmissionReview response, or 400 when the request is not an
  /// AdmissionReview v1 (the API server then applies the webhook's failurePolicy).
  int http_status = 200;
  std::string content_type = "application/json";
  std::string body;
};

/// Answers Kubernetes AdmissionReview v1 requests for pods from the verifier's results.
///
/// - A pod created with `spec.nodeName` set, and a pod's `binding` subresource (the
///   scheduler placing it on a node), are admitted only when the node's latest result allows
///   admission (FleetService::CheckAdmission: affirming, fresh, not revoked) and, for a pod
///   labelled with `workload_label`, when that workload's latest result on the node affirms
///   too (a workload the node has not reported yet is a warning, not a denial).
/// - A pod created without a node is admitted; its workload label is remembered (bounded,
///   in memory) so that its binding checks the workload too.
/// - Everything else (other operations, other resources) is admitted unchanged.
///
/// The Kubernetes node name is matched to a Vigil node by the hostname in the node's latest
/// quoted report (case-insensitive, the full name or its first label), or is the node id
/// itself; no match or several matches deny. Thread-safe.
class AdmissionReviewer {
 public:
  /// `fleet` must outlive the reviewer.
  AdmissionReviewer(const FleetService* fleet, AdmissionReviewOptions options);

  /// Answers one request body; `now` is the time result ages are measured at.
  AdmissionHttpResponse Review(absl::string_view body, absl::Time now);

  /// The Vigil node id for Kubernetes node `node_name`, or NOT_FOUND / FAILED_PRECONDITION
  /// (ambiguous) naming why.
  absl::StatusOr<std::string> ResolveNode(absl::string_view node_name) const;

 private:
  struct Decision {
    bool allowed = true;
    /// "node NAME (ID…)" once the node is resolved: the reasons are about it.
    std::string subject;
    std::vector<std::string> reasons;
    std::vector<std::string> warnings;
  };

  Decision DecideForNode(const std::string& node_name, const std::string& workload,
                         absl::Time now) const;
  void RememberPendingPod(const std::string& key, const std::string& workload, absl::Time now);
  std::string TakePendingPod(const std::string& key, absl::Time now);

  const FleetService* const fleet_;
  const AdmissionReviewOptions options_;

  struct PendingPod {
    std::string workload;
    absl::Time expires;
    std::list<std::string>::iterator order;
  };
  absl::Mutex mu_;
  std::unordered_map<std::string, PendingPod> pending_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> pending_order_ ABSL_GUARDED_BY(mu_);  // oldest first
};

}  // namespace vigil::verifier
