#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/security/credentials.h>
#include <grpcpp/support/status.h>
#include <grpcpp/support/sync_stream.h>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/keepalive.h"
#include "common/tls.h"
#include "node/agent/evidence_sealer.h"
#include "node/agent/policy_applier.h"
#include "node/agent/report_builder.h"
#include "node/agent/spool_link.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::node {

/// Channel credentials for one connection attempt, called on every (re)connect. Credentials
/// from MakeNodeChannelCredentials watch their files, so one object can be returned every
/// time: a certificate renewed on disk is presented from the next handshake on.
using CredentialsFactory =
    std::function<absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>()>;

/// Mutual-TLS credentials from PEM files: the CA that signed the verifier's certificate,
/// and the node's certificate chain and private key, re-read every `refresh_interval`
/// (common/tls.h). TLS 1.3 only. Fails, naming the file, when a file is unusable now.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeNodeChannelCredentials(
    const std::string& ca_cert_path, const std::string& cert_path, const std::string& key_path,
    absl::Duration refresh_interval = kDefaultTlsRefreshInterval);

/// Same-key renewal of the node certificate on the Attest stream.
struct CertificateRenewalOptions {
  /// The node's certificate (replaced atomically on renewal) and its key. Renewal is off
  /// while cert_path is empty.
  std::string cert_path;
  std::string key_path;
  /// The Vigil CA a renewed certificate must verify against.
  std::string ca_cert_path;
  /// Ask for a new certificate once less than this fraction of the current one's lifetime
  /// is left.
  double renew_below_fraction = 1.0 / 3.0;
  /// After a failed or refused renewal, the next request waits this long.
  absl::Duration retry_interval = absl::Minutes(1);
};

/// How the client talks to the verifier.
struct AttestClientOptions {
  /// host:port of the verifier's mutual-TLS listener.
  std::string address;
  /// Further verifiers (host:port), tried in turn after `address`. Each time a stream ends
  /// or cannot be opened the client moves on to the next address, round robin; the backoff
  /// delay applies once per full cycle of failed attempts (the next address after a failure
  /// is tried at once, until every address failed since the last healthy stream).
  std::vector<std::string> fallback_addresses;
  /// HTTP/2 keepalive on the channel: a verifier that stops answering pings (its host
  /// frozen, the network gone without a reset) ends the stream after time + timeout, and
  /// the client moves to the next address.
  KeepaliveOptions keepalive;
  CredentialsFactory credentials;
  /// Upper bound on any message in either direction; reports are built to fit.
  int max_message_bytes = 4 << 20;
  /// Used when a Challenge carries no report_interval_ms.
  absl::Duration default_report_interval = absl::Seconds(10);
  /// Reports that events bring forward come at most this often; the first event after a
  /// quiet spell of at least this long is reported at once.
  absl::Duration min_report_gap = absl::Seconds(1);
  /// The longest the client waits between looks at the event source. The event source
  /// wakes the client as soon as events worth a report arrive (EventSource::SetWakeup),
  /// so this only bounds the wait.
  absl::Duration event_poll_interval = absl::Milliseconds(100);
  /// Reconnection: exponential backoff with full jitter, reset after a healthy stream; the
  /// exponent counts full cycles through the addresses.
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(30);
  /// At shutdown, how long to wait for the verifier to close the stream after the node
  /// half-closed it before cancelling.
  absl::Duration shutdown_grace = absl::Seconds(2);
  CertificateRenewalOptions renewal;
};

/// The delay before reconnection attempt `attempt` (0-based): uniform in
/// [0, min(max_backoff, initial_backoff * 2^attempt)] ("full jitter").
absl::Duration FullJitterBackoff(int attempt, absl::Duration initial, absl::Duration max,
                                 absl::BitGenRef gen);

/// The node's side of the Attest stream: waits for each Challenge, builds a report,
/// serializes it once, seals it with the challenge and sends it as Evidence; applies each
/// policy bundle the verifier sends, in stream order, before answering later challenges;
/// logs each acknowledgement's verdict; reconnects with backoff when the stream ends.
class AttestClient {
 public:
  /// `builder` and `sealer` must outlive the client; so must `policies`, which applies the
  /// verifier's policy bundles (null: bundles are logged and ignored), and `spool`, which
  /// keeps what is observed while no stream is up and is sent once one is healthy again
  /// (null: no spool).
  AttestClient(AttestClientOptions options, ReportBuilder* builder, EvidenceSealer* sealer,
               PolicyApplier* policies = nullptr, SpoolLink* spool = nullptr);

  /// Streams until Shutdown() is called, reconnecting as needed (to the next address when
  /// there are several). Returns OK after a clean shutdown; an error only when the options
  /// are unusable.
  absl::Status Run();

  /// Thread-safe: half-closes the current stream, waits briefly for the verifier to close
  /// it, and makes Run() return.
  void Shutdown();

  /// What the client has done so far (for logs and tests).
  struct Stats {
    uint64_t streams_opened = 0;
    /// The address of the stream open now, or of the last one.
    std::string address;
    /// Whether a stream is up and the verifier has acknowledged evidence on it.
    bool connected = false;
    uint64_t evidence_sent = 0;
    uint64_t acks_received = 0;
    v1::TrustStatus last_status = v1::TRUST_STATUS_UNSPECIFIED;
    uint64_t renewals_requested = 0;
    uint64_t renewals_installed = 0;
    uint64_t renewals_failed = 0;
    /// Policy bundles received, and those refused (bad digest, unparsable, not measured).
    uint64_t policies_received = 0;
    uint64_t policies_refused = 0;
    /// Spool batches written while the verifier was unreachable, sent from the backlog, and
    /// answered (accepted or refused).
    uint64_t batches_spooled = 0;
    uint64_t batches_sent = 0;
    uint64_t batches_answered = 0;
    /// Reports sent on a stream that ended before their acknowledgement, written to the spool
    /// (not counted in batches_spooled).
    uint64_t unacknowledged_spooled = 0;
  };
  Stats stats() const;

 private:
  using Stream = grpc::ClientReaderWriterInterface<v1::NodeMessage, v1::VerifierMessage>;

  // What one stream carries from one turn of its loop to the next.
  struct StreamState {
    // The verifier's latest challenge, until evidence answers it.
    std::optional<v1::Challenge> challenge;
    absl::Duration interval;
    absl::Time last_report = absl::InfinitePast();
    // The last report that events brought forward.
    absl::Time last_event_report = absl::InfinitePast();
    // Events worth a report since the last report.
    size_t interesting = 0;
    // The payload of the evidence sent and not acknowledged yet (one at a time: the nonce
    // protocol allows no more), spooled if the stream ends first.
    std::optional<std::string> unacknowledged;
    // At most one renewal request per stream, answered or not.
    bool renewal_in_flight = false;
    absl::Time renew_at = absl::InfiniteFuture();
  };

  // One stream to `address` from open to end. Sets `*healthy` once an acknowledgement
  // arrived.
  absl::Status RunStream(const std::string& address, bool* healthy);
  // Takes one verifier message: a challenge (held until answered), an acknowledgement, a
  // policy bundle or a renewed certificate.
  void HandleMessage(v1::VerifierMessage& message, StreamState* state, bool* healthy);
  void HandleAcknowledgement(const v1::Acknowledgement& ack);
  // Applies a policy bundle, in stream order.
  void HandlePolicy(const v1::PolicyBundle& bundle);
  void HandleRenewal(const v1::CertificateRenewal& renewal, StreamState* state);
  // Asks for a renewed certificate when one is due and none is asked for yet on this stream.
  // False when the stream can no longer be written.
  bool MaybeRequestRenewal(Stream* stream, StreamState* state);
  // After the stream ended: applies the acknowledgements it received but the loop did not
  // take, then spools the report still unacknowledged, if any.
  void KeepUnacknowledged(std::deque<v1::VerifierMessage> left, StreamState* state, bool* healthy);
  // Polls the events and answers the held challenge once a report is due (the interval
  // elapsed, or events came and the minimum gap elapsed). False when the stream can no
  // longer be written.
  bool MaybeReport(Stream* stream, StreamState* state);
  // Counts a renewal request the stream ended without answering (status `status`);
  // UNIMPLEMENTED turns renewal off until restart.
  void NoteUnansweredRenewal(const grpc::Status& status);
  // How long the stream loop may wait for messages or events: until the next periodic or
  // event-triggered report is due while a challenge is held, at most event_poll_interval.
  absl::Duration NextWait(bool holding_challenge, absl::Time periodic_due,
                          absl::Time early_due) const;
  // Waits `delay` or until Shutdown(), writing a spool batch every spool window meanwhile.
  // True when shut down.
  bool WaitSpooling(absl::Duration delay);
  // Sends the next spooled batch once the stream is healthy and none awaits its answer.
  // False when the stream can no longer be written.
  bool MaybeSendSpool(Stream* stream, bool healthy);
  // The largest payload a report may have to fit in one message.
  size_t PayloadLimit() const;
  // Builds, seals and returns the next evidence for `challenge`.
  absl::StatusOr<v1::NodeMessage> NextEvidence(const v1::Challenge& challenge);
  // When the certificate on disk is due for renewal (InfiniteFuture when renewal is off).
  absl::StatusOr<absl::Time> RenewalDue() const;
  // A CertificateRenewalRequest whose CSR is signed by the node's existing key.
  absl::StatusOr<v1::NodeMessage> RenewalRequest() const;
  // Checks a CertificateRenewal (chain verifies against the CA, same SPIFFE URI, same key)
  // and replaces the certificate file with it.
  absl::Status InstallRenewal(const v1::CertificateRenewal& renewal);

  const AttestClientOptions options_;
  ReportBuilder* builder_;
  EvidenceSealer* sealer_;
  PolicyApplier* policies_;
  SpoolLink* spool_;
  uint64_t log_acknowledged_ = 0;
  // When the next spool batch is due while no stream is up (InfinitePast: not spooling).
  absl::Time next_batch_ = absl::InfinitePast();
  // Renewal state, touched only by the thread in Run(). Survives reconnects so a refusing
  // verifier is asked at most once per retry_interval.
  absl::Time next_renewal_attempt_ = absl::InfinitePast();
  bool renewal_unsupported_ = false;

  mutable absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Set by the event source's wake-up, cleared by the stream loop when it looks.
  bool events_signalled_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::node
