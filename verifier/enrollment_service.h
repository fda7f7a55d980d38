#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pki.h"
#include "verifier/ek_verifier.h"
#include "verifier/node_registry.h"
#include "verifier/pending_enrollments.h"
#include "vigil/v1/enrollment.grpc.pb.h"

namespace vigil::verifier {

/// Enrollment by credential activation (DESIGN.md §4.2-4.3), without gRPC: Begin checks
/// the EK, the AK and the CSR and returns a credential only the TPM holding both keys can
/// activate; Complete checks the activated secret (constant time, one attempt), stores the
/// EK/AK/node binding and issues the node certificate. Thread-safe. The pending enrollments
/// live in the registry's table (NodeRegistry::pending_enrollments): with PostgreSQL,
/// replicas share them, so a Complete may reach any replica and succeeds at most once.
class Enroller {
 public:
  struct Options {
    /// How long a BeginEnrollment answer stays valid.
    absl::Duration pending_ttl = absl::Minutes(5);
    /// At most this many enrollments may be pending at once.
    size_t max_pending = 1024;
    /// At most this many per EK. An EK certificate is public, so anyone holding a copy can
    /// begin enrollments for it; a Begin beyond this bound evicts that EK's oldest pending
    /// enrollment (the TPM's owner retrying always gets an answer) and never takes a slot
    /// from another EK.
    size_t max_pending_per_ek = 4;
    /// Lifetime of issued node certificates.
    absl::Duration node_cert_lifetime = absl::Hours(24);
    /// Whether an operator revoked the node (`vigilctl nodes revoke`); a revoked node may
    /// not enroll until it is approved again. Empty: no node is revoked.
    std::function<bool(const std::string& node_id)> is_revoked;
    /// The time source of expiry (tests inject one).
    std::function<absl::Time()> clock = &absl::Now;
  };

  /// `ca`, `registry` and `ek_verifier` must outlive the enroller.
  Enroller(const CaMaterial* ca, NodeRegistry* registry, const EkVerifier* ek_verifier,
           Options options);

  /// INVALID_ARGUMENT for undecodable or unfit keys, names or CSRs; PERMISSION_DENIED when
  /// the node is revoked; FAILED_PRECONDITION when the EK is not trusted; RESOURCE_EXHAUSTED
  /// when max_pending enrollments of other EKs are pending; UNAVAILABLE when the shared
  /// table cannot be reached.
  absl::StatusOr<v1::BeginEnrollmentResponse> Begin(const v1::BeginEnrollmentRequest& request);

  /// NOT_FOUND for an unknown, expired or already attempted enrollment_id;
  /// PERMISSION_DENIED for a wrong secret (the enrollment is then void) or a node revoked
  /// since Begin.
  absl::StatusOr<v1::CompleteEnrollmentResponse> Complete(
      const v1::CompleteEnrollmentRequest& request);

  /// Number of enrollments waiting for CompleteEnrollment (expired ones included until the
  /// next Begin sweeps them; with PostgreSQL every replica's). 0 when it cannot be read.
  size_t pending() const;

  /// How many Begins were refused because the table was full, and how many pending
  /// enrollments a later Begin for the same EK evicted.
  size_t refused_full() const;
  size_t evicted_per_ek() const;

 private:
  PendingLimits limits() const;

  const CaMaterial* const ca_;
  NodeRegistry* const registry_;
  const EkVerifier* const ek_verifier_;
  const Options options_;
  PendingEnrollments* const pending_;
  /// This replica's refusals and evictions.
  std::atomic<size_t> refused_full_{0};
  std::atomic<size_t> evicted_per_ek_{0};
};

/// The Enrollment gRPC service (unary callback handlers) over an Enroller. Served on the
/// server-authenticated enrollment listener.
class EnrollmentService final : public v1::Enrollment::CallbackService {
 public:
  explicit EnrollmentService(Enroller* enroller) : enroller_(enroller) {}

  grpc::ServerUnaryReactor* BeginEnrollment(grpc::CallbackServerContext* context,
                                            const v1::BeginEnrollmentRequest* request,
                                            v1::BeginEnrollmentResponse* response) override;
  grpc::ServerUnaryReactor* CompleteEnrollment(grpc::CallbackServerContext* context,
                                               const v1::CompleteEnrollmentRequest* request,
                                               v1::CompleteEnrollmentResponse* response) override;

 private:
  Enroller* const enroller_;
};

}  // namespace vigil::verifier
