#include "node/agent/attest_client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <deque>
#include <iterator>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "node/procfs/procfs.h"
#include "spdlog/spdlog.h"
#include "vigil/v1/attestation.grpc.pb.h"

namespace vigil::node {
namespace {

// Room left in a message for the quote, PCR values and log entries beside the payload.
constexpr int kEvidenceOverheadBytes = 64 << 10;

std::string DescribeVerdict(const v1::Verdict& v) {
  std::vector<std::string> reasons;
  for (int r : v.reasons()) reasons.push_back(v1::AppraisalReason_Name(r));
  std::string out = v1::TrustStatus_Name(v.status());
  if (!reasons.empty()) absl::StrAppend(&out, " [", absl::StrJoin(reasons, ", "), "]");
  if (!v.detail().empty()) absl::StrAppend(&out, ": ", v.detail());
  return out;
}

// The single SPIFFE URI SAN of a node certificate.
absl::StatusOr<std::string> OnlyUriSan(X509* cert, const std::string& what) {
  ASSIGN_OR_RETURN(std::vector<std::string> uris, UriSans(cert));
  if (uris.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", uris.size(), " URI SANs; a node certificate has one"));
  }
  return uris[0];
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeNodeChannelCredentials(
    const std::string& ca_cert_path, const std::string& cert_path, const std::string& key_path,
    absl::Duration refresh_interval) {
  if (ca_cert_path.empty() || cert_path.empty() || key_path.empty()) {
    return absl::InvalidArgumentError(
        "mutual TLS needs the CA certificate, the node certificate and its key");
  }
  return MakeMutualTlsChannelCredentials(
      TlsFiles{ca_cert_path, cert_path, key_path, refresh_interval});
}

absl::Duration FullJitterBackoff(int attempt, absl::Duration initial, absl::Duration max,
                                 absl::BitGenRef gen) {
  absl::Duration ceiling = initial;
  for (int i = 0; i < attempt && ceiling < max; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, max);
  return absl::Nanoseconds(
      absl::Uniform<int64_t>(absl::IntervalClosed, gen, 0, absl::ToInt64Nanoseconds(ceiling)));
}

AttestClient::AttestClient(AttestClientOptions options, ReportBuilder* builder,
                           EvidenceSealer* sealer, PolicyApplier* policies, SpoolLink* spool)
    : options_(std::move(options)),
      builder_(builder),
      sealer_(sealer),
      policies_(policies),
      spool_(spool) {}

void AttestClient::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

AttestClient::Stats AttestClient::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::Status AttestClient::Run() {
  if (options_.address.empty() ||
      std::any_of(options_.fallback_addresses.begin(), options_.fallback_addresses.end(),
                  [](const std::string& a) { return a.empty(); })) {
    return absl::InvalidArgumentError("no verifier address");
  }
  if (!options_.credentials) return absl::InvalidArgumentError("no channel credentials");
  // Events worth a report wake the stream loop at once instead of at its next look.
  builder_->SetEventWakeup([this] {
    absl::MutexLock lock(&mu_);
    events_signalled_ = true;
  });
  absl::Cleanup no_wakeup = [this] { builder_->SetEventWakeup(nullptr); };
  std::vector<std::string> addresses = {options_.address};
  addresses.insert(addresses.end(), options_.fallback_addresses.begin(),
                   options_.fallback_addresses.end());
  absl::BitGen gen;
  size_t current = 0;
  int cycles = 0;                  // full cycles of failed attempts since the last healthy stream
  size_t failed_in_cycle = 0;      // failed attempts in the cycle under way
  bool stopped_in_outage = false;  // stopped while no stream was up
  while (true) {
    const std::string& address = addresses[current];
    bool healthy = false;
    absl::Status st = RunStream(address, &healthy);
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_) {
        stopped_in_outage = !healthy;
        break;
      }
    }
    // Whatever ended the stream, the next attempt goes to the next address.
    current = (current + 1) % addresses.size();
    absl::Duration delay = absl::ZeroDuration();
    if (healthy) {
      cycles = 0;
      failed_in_cycle = 0;
      delay = FullJitterBackoff(0, options_.initial_backoff, options_.max_backoff, gen);
      // The verifier closes streams when it restarts or sheds load: expected, not an alarm.
      spdlog::info("attest stream to {} ended ({}); connecting to {} in {}", address, st.ToString(),
                   addresses[current], absl::FormatDuration(delay));
    } else {
      if (++failed_in_cycle >= addresses.size()) {
        failed_in_cycle = 0;
        delay = FullJitterBackoff(cycles, options_.initial_backoff, options_.max_backoff, gen);
        cycles = std::min(cycles + 1, 64);  // the ceiling stops doubling at max_backoff anyway
      }
      spdlog::warn("attest stream to {} failed: {}; trying {} in {}", address, st.ToString(),
                   addresses[current], absl::FormatDuration(delay));
    }
    if (WaitSpooling(delay)) {
      stopped_in_outage = true;
      break;
    }
  }
  if (spool_ != nullptr && stopped_in_outage) {
    // What was observed since the last batch goes to the spool too, not away with the process.
    if (absl::Status st = spool_->RecordBatch(PayloadLimit()); !st.ok()) {
      spdlog::error("last spool batch not written: {}", st.ToString());
    } else {
      absl::MutexLock lock(&mu_);
      ++stats_.batches_spooled;
    }
  }
  spdlog::info("attest client stopped");
  return absl::OkStatus();
}

absl::Duration AttestClient::NextWait(bool holding_challenge, absl::Time periodic_due,
                                      absl::Time early_due) const {
  absl::Duration wait = options_.event_poll_interval;
  if (!holding_challenge) return wait;
  return std::clamp(std::min(periodic_due, early_due) - absl::Now(), absl::ZeroDuration(), wait);
}

bool AttestClient::WaitSpooling(absl::Duration delay) {
  const absl::Time deadline = absl::Now() + delay;
  while (true) {
    absl::Time wake = deadline;
    if (spool_ != nullptr) {
      if (next_batch_ == absl::InfinitePast()) next_batch_ = absl::Now() + spool_->window();
      wake = std::min(wake, next_batch_);
    }
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&shutdown_), wake - absl::Now());
      if (shutdown_) return true;
    }
    const absl::Time now = absl::Now();
    if (spool_ != nullptr && now >= next_batch_) {
      next_batch_ = now + spool_->window();
      if (absl::Status st = spool_->RecordBatch(PayloadLimit()); !st.ok()) {
        spdlog::error("spool batch not written: {}", st.ToString());
      } else {
        absl::MutexLock lock(&mu_);
        ++stats_.batches_spooled;
      }
    }
    if (now >= deadline) return false;
  }
}

bool AttestClient::MaybeSendSpool(Stream* stream, bool healthy) {
  if (spool_ == nullptr || !healthy) return true;
  std::optional<v1::NodeMessage> batch = spool_->NextMessage(log_acknowledged_);
  if (!batch.has_value()) return true;
  if (!stream->Write(*batch)) return false;
  absl::MutexLock lock(&mu_);
  ++stats_.batches_sent;
  return true;
}

size_t AttestClient::PayloadLimit() const {
  return static_cast<size_t>(std::max(options_.max_message_bytes - kEvidenceOverheadBytes,
                                      options_.max_message_bytes / 2));
}

absl::StatusOr<v1::NodeMessage> AttestClient::NextEvidence(const v1::Challenge& challenge) {
  v1::RuntimeReport report = builder_->Build(PayloadLimit());
  if (spool_ != nullptr) spool_->Stamp(&report);
  // Serialized exactly once: these bytes are what the quote binds and what is sent.
  std::string payload;
  if (!report.SerializeToString(&payload)) return absl::InternalError("report serialization");
  ASSIGN_OR_RETURN(v1::Evidence evidence,
                   sealer_->Seal(std::move(payload), challenge, log_acknowledged_));
  v1::NodeMessage msg;
  *msg.mutable_evidence() = std::move(evidence);
  spdlog::debug("report {}: {} processes, {} events, {} gaps", report.sequence(),
                report.processes_size(), report.events_size(), report.observation_gaps_size());
  return msg;
}

absl::StatusOr<absl::Time> AttestClient::RenewalDue() const {
  const CertificateRenewalOptions& r = options_.renewal;
  if (r.cert_path.empty() || renewal_unsupported_) return absl::InfiniteFuture();
  ASSIGN_OR_RETURN(std::string pem, ReadFileToString(r.cert_path));
  ASSIGN_OR_RETURN(X509Ptr cert, CertificateFromPem(pem));
  ASSIGN_OR_RETURN(Validity validity, CertificateValidity(cert.get()));
  double fraction = std::clamp(r.renew_below_fraction, 0.0, 1.0);
  return validity.not_after - (validity.not_after - validity.not_before) * fraction;
}

absl::StatusOr<v1::NodeMessage> AttestClient::RenewalRequest() const {
  const CertificateRenewalOptions& r = options_.renewal;
  ASSIGN_OR_RETURN(std::string cert_pem, ReadFileToString(r.cert_path));
  ASSIGN_OR_RETURN(X509Ptr cert, CertificateFromPem(cert_pem));
  ASSIGN_OR_RETURN(std::string uri, OnlyUriSan(cert.get(), r.cert_path));
  ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(r.key_path));
  ASSIGN_OR_RETURN(EvpPkeyPtr key, PrivateKeyFromPem(key_pem));
  // The verifier names the certificate from the connected identity; the CN is cosmetic.
  ASSIGN_OR_RETURN(std::string csr, MakeCsrForKey(key.get(), uri.substr(uri.rfind('/') + 1)));
  v1::NodeMessage msg;
  msg.mutable_renewal()->set_csr_pem(std::move(csr));
  return msg;
}

absl::Status AttestClient::InstallRenewal(const v1::CertificateRenewal& renewal) {
  const CertificateRenewalOptions& r = options_.renewal;
  if (r.cert_path.empty()) return absl::FailedPreconditionError("renewal is off on this node");
  ASSIGN_OR_RETURN(X509Ptr leaf, CertificateFromPem(renewal.certificate_chain_pem()));
  ASSIGN_OR_RETURN(std::string leaf_pem, CertificateToPem(leaf.get()));
  ASSIGN_OR_RETURN(std::string ca_pem, ReadFileToString(r.ca_cert_path));
  RETURN_IF_ERROR(VerifyCertificate(leaf_pem, ca_pem));
  ASSIGN_OR_RETURN(std::string current_pem, ReadFileToString(r.cert_path));
  ASSIGN_OR_RETURN(X509Ptr current, CertificateFromPem(current_pem));
  ASSIGN_OR_RETURN(std::string current_uri, OnlyUriSan(current.get(), r.cert_path));
  ASSIGN_OR_RETURN(std::string renewed_uri, OnlyUriSan(leaf.get(), "renewed certificate"));
  if (renewed_uri != current_uri) {
    return absl::PermissionDeniedError(
        absl::StrCat("renewed certificate names ", renewed_uri, ", not ", current_uri));
  }
  ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(r.key_path));
  ASSIGN_OR_RETURN(EvpPkeyPtr key, PrivateKeyFromPem(key_pem));
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    return absl::InvalidArgumentError("renewed certificate is not for this node's key");
  }
  // Leaf then CA, as enrollment writes it; the next connect presents it.
  return ReplacePrivateFileAtomically(r.cert_path, absl::StrCat(leaf_pem, ca_pem));
}

absl::Status AttestClient::RunStream(const std::string& address, bool* healthy) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds, options_.credentials());
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  ApplyKeepalive(options_.keepalive, args);
  ApplyFixedFlowControl(args);
  auto channel = grpc::CreateCustomChannel(address, creds, args);
  auto stub = v1::Attestation::NewStub(channel);
  grpc::ClientContext ctx;
  auto stream = stub->Attest(&ctx);
  {
    absl::MutexLock lock(&mu_);
    ++stats_.streams_opened;
    stats_.address = address;
  }

  // A reader thread hands verifier messages to this thread, which alone writes.
  std::deque<v1::VerifierMessage> inbox;  // guarded by mu_
  bool read_done = false;                 // guarded by mu_
  std::thread reader([&] {
    v1::VerifierMessage m;
    while (stream->Read(&m)) {
      absl::MutexLock lock(&mu_);
      inbox.push_back(std::move(m));
    }
    absl::MutexLock lock(&mu_);
    read_done = true;
  });

  StreamState state;
  state.interval = options_.default_report_interval;
  if (absl::StatusOr<absl::Time> due = RenewalDue(); due.ok()) {
    state.renew_at = *due;
  } else {
    spdlog::warn("cannot tell when to renew the node certificate: {}", due.status().ToString());
  }
  bool shutting_down = false;
  bool write_failed = false;
  while (true) {
    std::deque<v1::VerifierMessage> got;
    {
      absl::MutexLock lock(&mu_);
      auto woken = [&]() { return shutdown_ || read_done || !inbox.empty() || events_signalled_; };
      mu_.AwaitWithTimeout(
          absl::Condition(&woken),
          NextWait(state.challenge.has_value(), state.last_report + state.interval,
                   state.interesting > 0 ? state.last_event_report + options_.min_report_gap
                                         : absl::InfiniteFuture()));
      events_signalled_ = false;
      got.swap(inbox);
      shutting_down = shutdown_;
      if (shutting_down) {
        // Left for after the stream ended, with what arrives meanwhile (acknowledgements).
        inbox.insert(inbox.begin(), std::make_move_iterator(got.begin()),
                     std::make_move_iterator(got.end()));
        break;
      }
      if (read_done && got.empty()) break;
    }
    for (v1::VerifierMessage& m : got) HandleMessage(m, &state, healthy);
    if (*healthy) next_batch_ = absl::InfinitePast();  // the outage, if any, is over
    if (!MaybeRequestRenewal(stream.get(), &state) || !MaybeReport(stream.get(), &state) ||
        !MaybeSendSpool(stream.get(), *healthy)) {
      write_failed = true;
      break;
    }
  }

  if (shutting_down && !write_failed) {
    // Half-close and give the verifier a moment to end the stream with a status.
    stream->WritesDone();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&read_done), options_.shutdown_grace);
  }
  bool done;
  {
    absl::MutexLock lock(&mu_);
    done = read_done;
  }
  if (!done) ctx.TryCancel();
  reader.join();
  grpc::Status st = stream->Finish();
  {
    absl::MutexLock lock(&mu_);
    stats_.connected = false;
  }
  if (spool_ != nullptr) spool_->StreamEnded();
  {
    std::deque<v1::VerifierMessage> left;
    {
      absl::MutexLock lock(&mu_);
      left.swap(inbox);
    }
    KeepUnacknowledged(std::move(left), &state, healthy);
  }
  if (state.renewal_in_flight) NoteUnansweredRenewal(st);
  if (!st.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
  }
  return write_failed ? absl::UnavailableError("write to the stream failed") : absl::OkStatus();
}

void AttestClient::HandleMessage(v1::VerifierMessage& message, StreamState* state, bool* healthy) {
  if (message.has_challenge()) {
    state->challenge = std::move(*message.mutable_challenge());
    if (state->challenge->report_interval_ms() > 0) {
      state->interval = absl::Milliseconds(state->challenge->report_interval_ms());
    }
  } else if (message.has_acknowledgement()) {
    *healthy = true;
    state->unacknowledged.reset();
    HandleAcknowledgement(message.acknowledgement());
  } else if (message.has_policy()) {
    HandlePolicy(message.policy());
  } else if (message.has_renewal()) {
    HandleRenewal(message.renewal(), state);
  } else if (message.has_spool_ack() && spool_ != nullptr) {
    spool_->HandleAck(message.spool_ack());
    absl::MutexLock lock(&mu_);
    ++stats_.batches_answered;
  }
}

void AttestClient::HandleAcknowledgement(const v1::Acknowledgement& ack) {
  log_acknowledged_ = ack.log_entries_acknowledged();
  spdlog::info("report {} appraised: {}", ack.sequence(), DescribeVerdict(ack.verdict()));
  absl::MutexLock lock(&mu_);
  ++stats_.acks_received;
  stats_.connected = true;
  stats_.last_status = ack.verdict().status();
}

void AttestClient::HandlePolicy(const v1::PolicyBundle& bundle) {
  // Applied here, in stream order: a challenge read after the bundle is answered under it,
  // and one read before may be too (the verifier accepts both).
  absl::Status applied = policies_ != nullptr
                             ? policies_->Apply(bundle)
                             : absl::FailedPreconditionError("this node applies no bundles");
  if (!applied.ok()) spdlog::error("policy bundle not applied: {}", applied.ToString());
  absl::MutexLock lock(&mu_);
  ++stats_.policies_received;
  if (!applied.ok()) ++stats_.policies_refused;
}

void AttestClient::HandleRenewal(const v1::CertificateRenewal& renewal, StreamState* state) {
  state->renewal_in_flight = false;
  absl::Status installed = InstallRenewal(renewal);
  absl::MutexLock lock(&mu_);
  if (installed.ok()) {
    ++stats_.renewals_installed;
    state->renew_at = RenewalDue().value_or(absl::InfiniteFuture());
    spdlog::info(
        "node certificate renewed until {}; used from the next connection",
        absl::FormatTime(absl::FromUnixNanos(renewal.not_after_unix_nano()), absl::UTCTimeZone()));
  } else {
    ++stats_.renewals_failed;
    spdlog::error("renewed certificate refused: {}", installed.ToString());
  }
}

bool AttestClient::MaybeRequestRenewal(Stream* stream, StreamState* state) {
  if (state->renewal_in_flight || absl::Now() < state->renew_at ||
      absl::Now() < next_renewal_attempt_) {
    return true;
  }
  next_renewal_attempt_ = absl::Now() + options_.renewal.retry_interval;
  absl::StatusOr<v1::NodeMessage> request = RenewalRequest();
  if (!request.ok()) {
    spdlog::error("cannot request certificate renewal: {}", request.status().ToString());
    absl::MutexLock lock(&mu_);
    ++stats_.renewals_failed;
    return true;
  }
  if (!stream->Write(*request)) return false;
  state->renewal_in_flight = true;
  spdlog::info("node certificate is due for renewal; asked the verifier");
  absl::MutexLock lock(&mu_);
  ++stats_.renewals_requested;
  return true;
}

bool AttestClient::MaybeReport(Stream* stream, StreamState* state) {
  state->interesting += builder_->PollEvents();
  if (!state->challenge.has_value()) return true;
  absl::Time now = absl::Now();
  // The interval counts from any report; the gap only from the last report that events
  // brought forward, so the first event after a quiet spell goes out at once.
  bool periodic = now - state->last_report >= state->interval;
  bool early = state->interesting > 0 && now - state->last_event_report >= options_.min_report_gap;
  if (!periodic && !early) return true;
  state->last_report = now;
  if (!periodic) state->last_event_report = now;
  state->interesting = 0;
  auto msg = NextEvidence(*state->challenge);
  if (!msg.ok()) {
    // Keep the challenge: it was not answered. Try again at the next interval.
    spdlog::error("could not build evidence: {}", msg.status().ToString());
    return true;
  }
  state->challenge.reset();
  // Kept until acknowledged: from here on the verifier may or may not have it.
  state->unacknowledged = msg->evidence().payload();
  if (!stream->Write(*msg)) return false;
  absl::MutexLock lock(&mu_);
  ++stats_.evidence_sent;
  return true;
}

void AttestClient::KeepUnacknowledged(std::deque<v1::VerifierMessage> left, StreamState* state,
                                      bool* healthy) {
  // Read before the stream ended (the verifier answered while the node was half-closing).
  for (v1::VerifierMessage& m : left) {
    if (m.has_acknowledgement() || m.has_spool_ack()) HandleMessage(m, state, healthy);
  }
  if (!state->unacknowledged.has_value()) return;
  if (spool_ == nullptr) {
    spdlog::warn(
        "the stream ended before the last report's acknowledgement; without a spool "
        "its events are lost");
    return;
  }
  // The verifier may have stored its verdict and lost only the acknowledgement: then the
  // batch adds a second verdict for the same payload. At least once, never lost.
  if (absl::Status st = spool_->RecordUnacknowledged(*state->unacknowledged); !st.ok()) {
    spdlog::error("unacknowledged report not spooled, its events are lost: {}", st.ToString());
    return;
  }
  state->unacknowledged.reset();
  absl::MutexLock lock(&mu_);
  ++stats_.unacknowledged_spooled;
}

void AttestClient::NoteUnansweredRenewal(const grpc::Status& status) {
  // The stream ended before the answer: the verifier refused or the call broke.
  absl::MutexLock lock(&mu_);
  ++stats_.renewals_failed;
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    renewal_unsupported_ = true;
    spdlog::warn("the verifier does not renew certificates: renewal is off until restart");
  } else {
    spdlog::error("certificate renewal failed: {}", status.error_message());
  }
}

}  // namespace vigil::node
