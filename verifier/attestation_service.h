#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "verifier/appraisal_pool.h"
#include "verifier/evidence_appraiser.h"
#include "verifier/peer_identity.h"
#include "verifier/policy_set.h"
#include "verifier/result_sink.h"
#include "verifier/simulated_tpm.h"
#include "verifier/spool_batch_appraiser.h"
#include "verifier/stream_admission.h"
#include "vigil/v1/attestation.grpc.pb.h"

namespace vigil::verifier {

/// Renews a node's certificate from a CertificateRenewalRequest (supplied by the CA side).
/// `peer_certificate_pem` is the verified certificate the node presented on the stream.
using CertificateRenewer = std::function<absl::StatusOr<v1::CertificateRenewal>(
    const PeerIdentity& node, std::string_view peer_certificate_pem,
    const v1::CertificateRenewalRequest& request)>;

/// How the Attest stream behaves.
/// The line the verifier logs (at info) for each accepted report: the node (the first 12
/// characters of its id), the report's sequence, the verdict and each workload's status, a
/// workload that shares its name with another (or has none) told apart by a prefix of its
/// stable id, as in the EAR's submodules. One line per report, not per process: at fleet scale
/// (thousands of reports a second) the log stays readable, and nothing decodes the report again.
std::string ReportLogLine(const std::string& node_id, uint64_t sequence,
                          const v1::Verdict& verdict);

struct AttestationOptions {
  /// Peer certificates must be in this SPIFFE trust domain.
  std::string trust_domain;
  /// Sent in every Challenge.
  absl::Duration report_interval = absl::Seconds(5);
  /// A nonce is refused (NONCE_EXPIRED) once this long has passed since it was issued.
  absl::Duration nonce_ttl = absl::Seconds(60);
  std::vector<uint32_t> pcr_selection;
  /// Answers renewal requests; when empty, a renewal request ends the stream UNIMPLEMENTED.
  CertificateRenewer renewer;
  /// Threads appraising evidence (0: one per core) and how much evidence may be queued for
  /// them across all streams; beyond that, a stream's evidence is held until a place frees
  /// (the stream reads nothing meanwhile, so HTTP/2 flow control holds its node back): at
  /// most one evidence per open stream waits, bounded by StreamLimits::max_streams.
  size_t appraisal_threads = 0;
  size_t appraisal_queue = 1024;
  /// The policies to distribute (not owned; null: the verifier sends no policy bundle).
  /// Each stream sends the current bundle, when it has content, before its first Challenge,
  /// and every later bundle as the set changes; see IssuedChallenge::policy_sha256 for the
  /// digests evidence may then carry.
  PolicySet* policies = nullptr;
  /// Whether an operator revoked the node: a revoked node's stream is refused
  /// PERMISSION_DENIED when it opens. Null: no node is ever revoked.
  std::function<bool(const std::string& node_id)> is_revoked;
  /// Whether the node's TPM is simulated: its nonce rejections (which no appraiser sees) are
  /// marked too (MarkTpmSimulated). Null: never.
  IsTpmSimulated is_tpm_simulated;
  /// Bounds on streams and on each node's rate of costly messages (see StreamLimits); a
  /// stream over a bound is refused or ended RESOURCE_EXHAUSTED.
  StreamLimits limits;
  /// Appraises the batches a node spooled during an outage (not owned; null: a SpoolBatch
  /// ends the stream UNIMPLEMENTED). Each is appraised on the pool, its verdict stored like
  /// evidence's, and answered with a SpoolBatchAck.
  const SpoolBatchAppraiser* spool_batches = nullptr;
  /// The time source for nonce expiry and the rate limit (tests substitute their own).
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

/// The Attestation service: one long-lived bidi stream per node. The verifier speaks first
/// with a Challenge and keeps exactly one unanswered nonce outstanding per stream. Each
/// Evidence is checked for nonce freshness (NONCE_UNKNOWN, NONCE_REUSED, NONCE_EXPIRED are
/// TRUST_REJECTED; a nonce replaced by a newer challenge before it was answered counts as
/// expired), appraised with the node_id of the peer certificate, recorded in the
/// ResultSink and, once the sink reports the verdict durable, answered with an
/// Acknowledgement followed by a fresh Challenge. Appraisal
/// runs on an AppraisalPool, off gRPC's callback threads; a stream reads its next message
/// only after its evidence is answered. Only a node certificate may open the stream
/// (PERMISSION_DENIED otherwise). The method is served raw so that a message that does not
/// decode as a NodeMessage ends the stream INVALID_ARGUMENT (the typed API would report it as
/// a half-close); the reactor decodes and encodes at its edges and otherwise deals in
/// NodeMessage and VerifierMessage. With AttestationOptions::policies, a stream sends the node
/// its policy bundle when it opens and whenever the policies change (docs/appraisal.md,
/// "Policy binding"). Destroy the service after the server has shut down.
class AttestationService final
    : public v1::Attestation::WithRawCallbackMethod_Attest<v1::Attestation::Service> {
 public:
  /// `appraiser` and `sink` are not owned and must outlive the service.
  AttestationService(AttestationOptions options, EvidenceAppraiser* appraiser, ResultSink* sink);
  ~AttestationService() override;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Attest(
      grpc::CallbackServerContext* context) override;

  /// Graceful shutdown, first step: refuses new streams and asks every open stream to finish
  /// with UNAVAILABLE once the messages already queued for it are written.
  void CloseStreams();

  /// Ends every open stream of `node_id` with `status` (e.g. PERMISSION_DENIED when an
  /// operator revoked the node) once the messages queued for it are written.
  void CloseNode(const std::string& node_id, const grpc::Status& status);

  /// How many Attest streams are open.
  size_t OpenStreams() const;

  /// How many streams' appraisals are held because the appraisal queue was full.
  size_t HeldAppraisals() const { return pool_->held(); }

  /// Streams and messages refused by the limits so far.
  AttestationCounters counters() const { return admission_.counters(); }

 private:
  class Reactor;

  // Admits the stream: OK, UNAVAILABLE when the service is closing, RESOURCE_EXHAUSTED when
  // a StreamLimits bound refuses it. Only an admitted stream is Unregistered.
  grpc::Status Register(Reactor* reactor);
  void Unregister(Reactor* reactor);

  const AttestationOptions options_;
  EvidenceAppraiser* const appraiser_;
  ResultSink* const sink_;
  StreamAdmission admission_;
  // Drained by the destructor before any other member goes away.
  std::unique_ptr<AppraisalPool> pool_;

  mutable absl::Mutex mu_;
  absl::flat_hash_set<Reactor*> streams_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vigil::verifier
