#include "verifier/attestation_service.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <array>
#include <atomic>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest.h"
#include "common/escape.h"
#include "verifier/policy_binding.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

using Message = v1::VerifierMessage;

constexpr size_t kNonceBytes = 32;
// Nonces a stream remembers after they stop being outstanding, per kind (answered, superseded).
// Older ones are simply unknown, which is refused all the same: remembering them only names the
// reason more precisely. A node answers one challenge per report, so a long-lived stream would
// otherwise accumulate one entry per report it ever sent.
constexpr size_t kRememberedNonces = 16;

// The last kRememberedNonces nonces of one kind, forgetting the oldest first: a ring of fixed
// arrays (512 bytes), searched linearly only for evidence that did not answer the outstanding
// challenge.
class RecentNonces {
 public:
  void Add(const std::string& nonce) {
    if (nonce.size() != kNonceBytes || Contains(nonce)) return;
    std::memcpy(ring_[next_ % kRememberedNonces].data(), nonce.data(), kNonceBytes);
    ++next_;
  }
  bool Contains(const std::string& nonce) const {
    if (nonce.size() != kNonceBytes) return false;
    const size_t stored = std::min(next_, kRememberedNonces);
    for (size_t i = 0; i < stored; ++i) {
      if (std::memcmp(ring_[i].data(), nonce.data(), kNonceBytes) == 0) return true;
    }
    return false;
  }

 private:
  std::array<std::array<char, kNonceBytes>, kRememberedNonces> ring_;
  size_t next_ = 0;  // how many were ever added; ring_[next_ % kRememberedNonces] goes next
};

// The sequence number of a RuntimeReport payload (0 when it does not decode), read without
// decoding the rest of the report: the acknowledgement carries it whether or not the report is
// logged. As in a full parse, the last occurrence of the field wins; a payload that is not
// well-formed protobuf gives 0.
uint64_t ReportSequence(const std::string& payload) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(payload.data()),
                                            static_cast<int>(payload.size()));
  uint64_t sequence = 0;
  while (uint32_t tag = in.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(v1::RuntimeReport::kSequenceFieldNumber,
                                       WireFormatLite::WIRETYPE_VARINT)) {
      if (!in.ReadVarint64(&sequence)) return 0;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return 0;
    }
  }
  return in.ConsumedEntireMessage() ? sequence : 0;
}

std::string StatusName(v1::TrustStatus status) {
  std::string name = v1::TrustStatus_Name(status);
  constexpr std::string_view kPrefix = "TRUST_";
  return name.rfind(kPrefix, 0) == 0 ? name.substr(kPrefix.size()) : name;
}

v1::Verdict NonceRejection(v1::AppraisalReason reason, const std::string& detail,
                           const v1::Evidence& evidence, absl::Time now) {
  v1::Verdict verdict;
  verdict.set_status(v1::TRUST_REJECTED);
  verdict.add_reasons(reason);
  verdict.set_detail(detail);
  verdict.set_evidence_sha256(HexEncode(Sha256(evidence.payload())));
  verdict.set_appraised_unix_nano(absl::ToUnixNanos(now));
  return verdict;
}

}  // namespace

std::string ReportLogLine(const std::string& node_id, uint64_t sequence,
                          const v1::Verdict& verdict) {
  absl::flat_hash_map<std::string, int> name_count;
  for (const v1::WorkloadVerdict& w : verdict.workloads()) ++name_count[w.identity().name()];
  std::vector<std::string> workloads;
  workloads.reserve(static_cast<size_t>(verdict.workloads_size()));
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    std::string name = EscapeUntrusted(w.identity().name());
    if (name.empty() || name_count[w.identity().name()] > 1) {
      absl::StrAppend(&name, "#", w.workload_id().substr(0, 12));
    }
    workloads.push_back(absl::StrCat(name, ":", StatusName(w.status())));
  }
  return absl::StrCat("report node=", node_id.substr(0, 12), " seq=", sequence,
                      " verdict=", StatusName(verdict.status()), " workloads=",
                      workloads.empty() ? std::string("none") : absl::StrJoin(workloads, ","));
}

namespace {

// One debug line per monitored process of an accepted report (what the quick start shows):
// the status of the workload the process belongs to, or the node's verdict for a process
// no policy selected.
void LogProcesses(const std::string& node_id, const v1::RuntimeReport& report,
                  const v1::Verdict& verdict) {
  std::string node = node_id.substr(0, 12);
  std::string status = StatusName(verdict.status());
  absl::flat_hash_map<int, v1::TrustStatus> workload_status;
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    for (int pid : w.pids()) workload_status.emplace(pid, w.status());
  }
  for (const v1::ProcessSnapshot& p : report.processes()) {
    auto w = workload_status.find(p.pid());
    spdlog::debug(
        "report node={} seq={} pid={} comm={} seccomp={} filters={} nnp={} cap_eff={:#x} "
        "vmlck_kib={} {}={}",
        node, report.sequence(), p.pid(), EscapeUntrusted(p.comm()), p.seccomp().mode(),
        p.seccomp().filter_count(), p.seccomp().no_new_privs() ? 1 : 0,
        p.capabilities().effective(), p.vm_locked_kib(),
        w == workload_status.end() ? "verdict" : "workload",
        w == workload_status.end() ? status : StatusName(w->second));
  }
}

}  // namespace

// One Attest stream, served raw: each read is decoded into in_ (a message that does not decode
// ends the stream INVALID_ARGUMENT) and each queued VerifierMessage is encoded into out_wire_
// as it goes out; everything between those edges deals in the typed messages. Reads are serialized
// by gRPC (one StartRead at a time), and the next read starts only once the evidence just read is
// answered, so the nonce state is touched by one thread at a time: OnReadDone, the constructor, or
// the appraisal pool thread answering. Writes are serialized here: one StartWrite in flight, the
// rest queued. An appraisal runs on the service's AppraisalPool and holds the stream open (holds_):
// Finish waits for it, so OnDone, which deletes the reactor, cannot run while a pool thread still
// uses it.
class AttestationService::Reactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Reactor(AttestationService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {
    absl::StatusOr<PeerIdentity> peer =
        RequireRole(*context, service->options_.trust_domain, SpiffeRole::kNode);
    if (!peer.ok()) {
      spdlog::warn("attest refused from {}: {}", context->peer(),
                   std::string(peer.status().message()));
      RequestFinish(ToGrpcStatus(peer.status()));
      return;
    }
    peer_ = *std::move(peer);
    if (service->options_.is_revoked && service->options_.is_revoked(peer_.name)) {
      spdlog::warn("attest refused from revoked node {}", peer_.name);
      RequestFinish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "this node is revoked; an operator must approve it again"));
      return;
    }
    if (grpc::Status admitted = service->Register(this); !admitted.ok()) {
      RequestFinish(std::move(admitted));
      return;
    }
    registered_ = true;
    service_->sink_->SetConnected(peer_.name, true);
    spdlog::info("node {} connected from {}", peer_.name, context->peer());
    StartPolicyDistribution();
    if (!SendChallenge()) return;
    StartRead(&in_wire_);
  }

  // The node the stream's certificate names (set before the stream is registered).
  const std::string& node_id() const { return peer_.name; }

  // Ends the stream with `status` once the queued writes are out. Later calls are ignored.
  void RequestFinish(grpc::Status status) {
    if (MarkFinishing(status)) Finish(std::move(status));
  }

  // Records that the stream is to end with `status`. True when nothing is being written or
  // appraised, so the caller must call Finish(status) now (and nobody else will); otherwise
  // OnWriteDone or the appraisal finishes after them. Until Finish is called OnDone cannot
  // run, so the reactor stays alive for that caller.
  bool MarkFinishing(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (finish_status_.has_value()) return false;
    finish_status_ = status;
    finished_ = !writing_ && holds_ == 0;
    return finished_;
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The node half-closed the stream, or the call is going away.
      RequestFinish(grpc::Status::OK);
      return;
    }
    if (!Decode()) return;
    switch (in_.body_case()) {
      case v1::NodeMessage::kEvidence:
      case v1::NodeMessage::kRenewal:
        // Costly for the verifier (a store write and a challenge, or a signature): within
        // the node's rate, checked before anything is spent.
        if (absl::Status allowed = service_->admission_.TakeMessage(peer_.name); !allowed.ok()) {
          RequestFinish(ToGrpcStatus(allowed));
          return;
        }
        break;
      default:
        break;
    }
    switch (in_.body_case()) {
      case v1::NodeMessage::kEvidence:
        // The answer, once the verdict is durable, resumes reading (ResumeAfterAppraisal).
        HandleEvidence(in_.evidence());
        return;
      case v1::NodeMessage::kRenewal:
        if (!HandleRenewal(in_.renewal())) return;
        break;
      case v1::NodeMessage::kSpoolBatch:
        // Answered like evidence: reading resumes once the verdict is durable.
        HandleSpoolBatch(in_.spool_batch());
        return;
      default:
        RequestFinish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty NodeMessage"));
        return;
    }
    {
      absl::MutexLock lock(&mu_);
      if (finish_status_.has_value()) return;
    }
    StartRead(&in_wire_);
  }

  void OnWriteDone(bool ok) override {
    WriteDone(ok ? grpc::Status::OK : grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
  }

  // The call went away under the stream: the node cancelled it, or its connection closed
  // (a keepalive ping unanswered, a reset).
  void OnCancel() override { cancelled_ = true; }

  void OnDone() override {
    // First: once RemoveListener returns, no PolicySet change can reach this reactor.
    StopPolicyDistribution();
    if (registered_) {
      service_->Unregister(this);
      service_->sink_->SetConnected(peer_.name, false);
      std::string how = "stream ended";
      if (cancelled_) {
        how = "connection lost or call cancelled";
      } else if (absl::MutexLock lock(&mu_); finish_status_.has_value() && !finish_status_->ok()) {
        how = absl::StrCat(
            "stream ended ",
            absl::StatusCodeToString(static_cast<absl::StatusCode>(finish_status_->error_code())));
      }
      spdlog::info("node {} disconnected ({})", peer_.name, how);
    }
    delete this;
  }

 private:
  // Decodes the message just read into in_. False when it is not a NodeMessage: the stream
  // is then ending INVALID_ARGUMENT.
  bool Decode() {
    const size_t bytes = in_wire_.Length();
    if (grpc::SerializationTraits<v1::NodeMessage>::Deserialize(&in_wire_, &in_).ok()) {
      return true;
    }
    spdlog::warn("node {} sent {} bytes that are not a NodeMessage; ending its stream", peer_.name,
                 bytes);
    RequestFinish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               "the stream carried a message that is not a NodeMessage"));
    return false;
  }

  // Encodes `message` (the front of out_, in flight) into out_wire_ and writes it. A message
  // that cannot be encoded ends the stream INTERNAL, as a failed write would.
  void Write(const Message* message) {
    bool own_buffer = false;
    out_wire_.Clear();  // the encoder writes into an empty buffer only
    grpc::Status encoded =
        grpc::SerializationTraits<Message>::Serialize(*message, &out_wire_, &own_buffer);
    if (!encoded.ok()) {
      spdlog::error("could not encode a message for node {}: {}; ending its stream", peer_.name,
                    EscapeUntrusted(encoded.error_message()));
      WriteDone(
          grpc::Status(grpc::StatusCode::INTERNAL, "the verifier could not encode a message"));
      return;
    }
    bool more = false;
    {
      absl::MutexLock lock(&mu_);
      more = out_.size() > 1;
    }
    // With another message queued behind it (an acknowledgement and the next challenge), this
    // one is buffered (its write completes at once) and goes out with the next: one TLS record
    // and one send for both, and the node wakes once for them.
    StartWrite(&out_wire_, more ? grpc::WriteOptions().set_buffer_hint() : grpc::WriteOptions());
  }

  // The write in flight is done: `result` is OK when it went out, else the status to end the
  // stream with (nothing more is written). Writes the next queued message, or finishes when
  // the stream was told to and nothing holds it.
  void WriteDone(const grpc::Status& result) {
    const Message* next = nullptr;
    std::optional<grpc::Status> finish;
    out_wire_.Clear();  // written: an idle stream keeps no encoded message
    {
      absl::MutexLock lock(&mu_);
      out_.pop_front();
      if (!result.ok()) {
        // The call is broken (cancelled or the peer is gone): nothing more will be written.
        out_.clear();
        if (!finish_status_.has_value()) finish_status_ = result;
      }
      if (!out_.empty()) {
        next = &out_.front();
      } else {
        writing_ = false;
        if (finish_status_.has_value() && !finished_ && holds_ == 0) {
          finished_ = true;
          finish = finish_status_;
        }
      }
    }
    if (next != nullptr) Write(next);
    if (finish.has_value()) Finish(*std::move(finish));
  }

  // Queues `message`; starts writing when nothing is in flight. Dropped once finishing.
  void Enqueue(Message message) {
    const Message* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      start = EnqueueLocked(std::move(message));
    }
    if (start != nullptr) Write(start);
  }

  // Queues `message` under mu_; returns the message to Write (after releasing mu_)
  // when nothing was in flight, else null.
  const Message* EnqueueLocked(Message message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_status_.has_value()) return nullptr;
    out_.push_back(std::move(message));  // deque: references to queued items stay valid
    if (writing_) return nullptr;
    writing_ = true;
    return &out_.front();
  }

  // Policy distribution: the current bundle now, then every change. The listener is added
  // before the current bundle is read, and both queue under mu_, so the node receives the
  // bundles in the order of the changes and ends on the current one.
  void StartPolicyDistribution() {
    PolicySet* policies = service_->options_.policies;
    if (policies == nullptr) return;
    listener_id_ = policies->AddListener(
        [this](std::shared_ptr<const PolicySnapshot> snapshot) { QueuePolicy(snapshot.get()); });
    QueuePolicy(nullptr);
  }

  void StopPolicyDistribution() {
    if (listener_id_ == 0) return;
    service_->options_.policies->RemoveListener(listener_id_);
    listener_id_ = 0;
  }

  // Queues the bundle of `snapshot` (null: the current one, read under mu_) unless it is
  // empty or the bundle sent last. Runs on the stream's threads and on the thread that
  // changed the PolicySet.
  void QueuePolicy(const PolicySnapshot* snapshot) {
    const Message* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      std::shared_ptr<const PolicySnapshot> current;
      if (snapshot == nullptr) {
        current = service_->options_.policies->Current();
        snapshot = current.get();
      }
      const v1::PolicyBundle& bundle = snapshot->bundle;
      if (bundle.content().empty() || finish_status_.has_value() ||
          !policy_log_.Sent(bundle.sha256())) {
        return;
      }
      Message message;
      *message.mutable_policy() = bundle;
      start = EnqueueLocked(std::move(message));
      spdlog::info("node {}: sent policy bundle {} ({})", peer_.name, bundle.sha256().substr(0, 12),
                   absl::StrJoin(bundle.policy_ids(), ", "));
    }
    if (start != nullptr) Write(start);
  }

  // Issues a fresh nonce, retiring the outstanding one, queued after `before` when given (the
  // acknowledgement it follows, so the two go out together). False when the stream is ending
  // (then it must not read on). Called only where the stream cannot finish meanwhile (the
  // constructor, or with an appraisal hold), so mu_ is still there to read afterwards.
  bool SendChallenge(std::optional<Message> before = std::nullopt) {
    std::string nonce(kNonceBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), kNonceBytes) != 1) {
      spdlog::error("RAND_bytes failed; ending the stream of node {}", peer_.name);
      if (before.has_value()) Enqueue(*std::move(before));  // still answered, then the end
      RequestFinish(grpc::Status(grpc::StatusCode::INTERNAL, "no randomness for a nonce"));
      return false;
    }
    if (outstanding_.has_value() && !outstanding_answered_) {
      superseded_.Add(outstanding_->nonce);
    }
    const AttestationOptions& options = service_->options_;
    outstanding_ =
        IssuedChallenge{nonce, options.clock() + options.nonce_ttl, options.pcr_selection, {}};
    outstanding_answered_ = false;

    Message message;
    v1::Challenge* challenge = message.mutable_challenge();
    challenge->set_nonce(nonce);
    challenge->set_expires_unix_nano(absl::ToUnixNanos(outstanding_->expires));
    challenge->set_report_interval_ms(
        static_cast<uint32_t>(absl::ToInt64Milliseconds(options.report_interval)));
    for (uint32_t pcr : options.pcr_selection) challenge->add_pcr_selection(pcr);
    const Message* start = nullptr;
    {
      // One step with the policy log: a bundle is queued either before this challenge (and
      // is the one it accepts) or after it (and is added to what it accepts).
      absl::MutexLock lock(&mu_);
      if (before.has_value()) start = EnqueueLocked(*std::move(before));
      policy_log_.ChallengeIssued();
      const Message* challenge_start = EnqueueLocked(std::move(message));
      if (start == nullptr) start = challenge_start;
    }
    if (start != nullptr) Write(start);
    absl::MutexLock lock(&mu_);
    return !finish_status_.has_value();
  }

  // Answers `evidence`: a fresh answer to the outstanding challenge is appraised on the
  // pool, anything else is refused at once. Either way the stream is held (holds_) and reads
  // on only after the verdict is durable and acknowledged (Answer).
  void HandleEvidence(const v1::Evidence& evidence) {
    const AttestationOptions& options = service_->options_;
    absl::Time now = options.clock();
    {
      // The stream may have been told to finish (shutdown, revocation) while this read was
      // in flight: Finish is then called or about to be, and OnDone follows this callback,
      // so nothing may outlive it. The evidence is dropped unanswered, as any evidence
      // arriving on a closing stream is.
      absl::MutexLock lock(&mu_);
      if (finish_status_.has_value()) return;
      ++holds_;
    }
    v1::Verdict verdict;
    if (outstanding_.has_value() && !outstanding_answered_ &&
        ConstantTimeEquals(evidence.nonce(), outstanding_->nonce)) {
      outstanding_answered_ = true;
      answered_.Add(outstanding_->nonce);
      if (now > outstanding_->expires) {
        verdict = NonceRejection(v1::NONCE_EXPIRED, "the nonce expired before the evidence came",
                                 evidence, now);
      } else {
        // The bundles sent up to now are all the node can have applied before answering.
        appraised_ = *outstanding_;
        {
          absl::MutexLock lock(&mu_);
          policy_log_.Bind(&appraised_);
        }
        StartAppraisal(evidence);
        return;
      }
    } else if (answered_.Contains(evidence.nonce())) {
      verdict = NonceRejection(v1::NONCE_REUSED, "the nonce was already answered", evidence, now);
    } else if (superseded_.Contains(evidence.nonce())) {
      verdict = NonceRejection(v1::NONCE_EXPIRED, "the nonce was replaced by a newer challenge",
                               evidence, now);
    } else {
      verdict = NonceRejection(v1::NONCE_UNKNOWN, "the nonce was never issued on this stream",
                               evidence, now);
    }
    verdict.set_node_id(peer_.name);
    if (service_->options_.is_tpm_simulated && service_->options_.is_tpm_simulated(peer_.name)) {
      MarkTpmSimulated(verdict);
    }
    Answer(evidence, std::move(verdict));
  }

  // Appraises `evidence` (the fresh answer to the outstanding challenge) on the pool, which
  // answers. When the pool's queue is full the appraisal is held until a place frees: the
  // stream reads nothing meanwhile, so HTTP/2 flow control holds its node back.
  void StartAppraisal(const v1::Evidence& evidence) {
    bool submitted = service_->pool_->Submit([this, &evidence] {
      v1::Verdict verdict =
          service_->appraiser_->Appraise(AppraisalInput{peer_.name, &appraised_, &evidence});
      Answer(evidence, std::move(verdict));
    });
    if (submitted) return;
    RequestFinish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "verifier is shutting down"));
    ResumeAfterAppraisal(false);
  }

  // Releases the hold HandleEvidence took: reads the next message when `read_on` and the
  // stream is not finishing, and finishes the stream when it was told to meanwhile.
  void ResumeAfterAppraisal(bool read_on) {
    {
      absl::MutexLock lock(&mu_);
      read_on = read_on && !finish_status_.has_value();
    }
    // Still held: the call cannot finish, so starting the read is safe. The appraised message
    // is released first: an idle stream holds no evidence (thousands of streams wait between
    // reports).
    if (read_on) {
      in_ = v1::NodeMessage();
      StartRead(&in_wire_);
    }
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      --holds_;
      if (holds_ == 0 && finish_status_.has_value() && !finished_ && !writing_) {
        finished_ = true;
        finish = finish_status_;
      }
    }
    if (finish.has_value()) Finish(*std::move(finish));
  }

  // Records `verdict` and, once it is durable, acknowledges the evidence, issues the next
  // challenge and reads on (from whichever thread the sink reports durability on). A verdict
  // that could not be stored is never acknowledged: the stream ends UNAVAILABLE and the node
  // sends its evidence again on a new stream.
  void Answer(const v1::Evidence& evidence, v1::Verdict verdict) {
    const uint64_t sequence = ReportSequence(evidence.payload());
    if (verdict.status() != v1::TRUST_REJECTED) {
      if (spdlog::should_log(spdlog::level::info)) {
        spdlog::info("{}", ReportLogLine(peer_.name, sequence, verdict));
      }
      // Decoded again only when each process's line is logged (at debug); the appraiser has
      // its own copy.
      if (v1::RuntimeReport report;
          spdlog::should_log(spdlog::level::debug) && report.ParseFromString(evidence.payload())) {
        LogProcesses(peer_.name, report, verdict);
      }
    } else {
      std::vector<std::string> reasons;
      for (int r : verdict.reasons()) {
        reasons.push_back(v1::AppraisalReason_Name(static_cast<v1::AppraisalReason>(r)));
      }
      spdlog::warn("report node={} seq={} verdict={} reasons={} detail={}",
                   peer_.name.substr(0, 12), sequence, StatusName(verdict.status()),
                   absl::StrJoin(reasons, ","), verdict.detail());
    }
    auto shared = std::make_shared<v1::Verdict>(std::move(verdict));
    service_->sink_->RecordDurable(
        peer_.name, evidence, *shared, [this, shared, sequence](absl::Status stored) {
          // The sink reports durability on its own thread (a store's single writer, which
          // every node's verdict goes through): encoding and writing the answer, and the next
          // challenge, run on the pool instead, ahead of appraisals that have not started.
          service_->pool_->RunCompletion([this, shared, sequence, stored = std::move(stored)] {
            Acknowledge(stored, std::move(*shared), sequence);
          });
        });
  }

  // Answers the evidence whose verdict the sink reported on (`stored`): an acknowledgement
  // carrying `verdict` and a fresh challenge, then reads on; or, when it was not stored, ends
  // the stream unacknowledged.
  void Acknowledge(const absl::Status& stored, v1::Verdict verdict, uint64_t sequence) {
    if (!stored.ok()) {
      spdlog::error("verdict for node {} not stored ({}); ending its stream unacknowledged",
                    peer_.name.substr(0, 12), std::string(stored.message()));
      RequestFinish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the verifier could not store the verdict; send again"));
      ResumeAfterAppraisal(false);
      return;
    }
    Message ack;
    ack.mutable_acknowledgement()->set_sequence(sequence);
    *ack.mutable_acknowledgement()->mutable_verdict() = std::move(verdict);
    ack.mutable_acknowledgement()->set_log_entries_acknowledged(
        service_->appraiser_->LogEntriesAcknowledged(peer_.name));
    ResumeAfterAppraisal(SendChallenge(std::move(ack)));
  }

  // Appraises a spooled batch on the pool, stores its verdict (unless it was delivered
  // before) and acknowledges it; reads on only then, as for evidence.
  void HandleSpoolBatch(const v1::SpoolBatch& batch) {
    const SpoolBatchAppraiser* appraiser = service_->options_.spool_batches;
    if (appraiser == nullptr) {
      RequestFinish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                 "this verifier does not take spooled batches"));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      if (finish_status_.has_value()) return;
      ++holds_;
    }
    bool submitted = service_->pool_->Submit([this, &batch, appraiser] {
      auto result =
          std::make_shared<SpoolBatchAppraiser::Result>(appraiser->Appraise(peer_.name, batch));
      const uint64_t sequence = batch.sequence();
      auto acknowledge = [this, result, sequence, appraiser](absl::Status stored) {
        appraiser->Settle(peer_.name, *result, stored.ok());
        if (!stored.ok()) {
          RequestFinish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     "the verifier could not store the verdict; send again"));
          ResumeAfterAppraisal(false);
          return;
        }
        Message ack;
        ack.mutable_spool_ack()->set_sequence(sequence);
        ack.mutable_spool_ack()->set_accepted(result->accepted);
        *ack.mutable_spool_ack()->mutable_verdict() = std::move(result->verdict);
        Enqueue(std::move(ack));
        ResumeAfterAppraisal(true);
      };
      if (result->duplicate) {
        acknowledge(absl::OkStatus());
        return;
      }
      service_->sink_->RecordDurable(
          peer_.name, result->evidence, result->verdict,
          [this, acknowledge = std::move(acknowledge)](absl::Status stored) mutable {
            service_->pool_->RunCompletion(
                [acknowledge = std::move(acknowledge), stored = std::move(stored)]() mutable {
                  acknowledge(std::move(stored));
                });
          });
    });
    if (submitted) return;
    RequestFinish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "verifier is shutting down"));
    ResumeAfterAppraisal(false);
  }

  bool HandleRenewal(const v1::CertificateRenewalRequest& request) {
    if (!service_->options_.renewer) {
      RequestFinish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                 "this verifier does not renew certificates on the stream"));
      return false;
    }
    // The certificate is read from the call only now: most streams never renew, and a copy
    // held per stream would cost every connected node its certificate's size.
    std::string peer_cert_pem;
    if (auto auth = context_->auth_context(); auth != nullptr) {
      for (const grpc::string_ref& pem : auth->FindPropertyValues("x509_pem_cert")) {
        peer_cert_pem.assign(pem.data(), pem.size());
      }
    }
    absl::StatusOr<v1::CertificateRenewal> renewal =
        service_->options_.renewer(peer_, peer_cert_pem, request);
    if (!renewal.ok()) {
      RequestFinish(ToGrpcStatus(renewal.status()));
      return false;
    }
    Message message;
    *message.mutable_renewal() = *std::move(renewal);
    Enqueue(std::move(message));
    return true;
  }

  AttestationService* const service_;
  grpc::CallbackServerContext* const context_;  // valid until OnDone
  PeerIdentity peer_;
  bool registered_ = false;
  std::atomic<bool> cancelled_ = false;  // set by OnCancel, read by OnDone
  grpc::ByteBuffer in_wire_;             // the message being read, decoded into in_
  v1::NodeMessage in_;

  // Read side (see the class comment).
  std::optional<IssuedChallenge> outstanding_;
  bool outstanding_answered_ = false;
  IssuedChallenge appraised_;  // what the appraisal in flight answers, policies bound
  RecentNonces answered_;
  RecentNonces superseded_;

  absl::Mutex mu_;
  std::deque<Message> out_ ABSL_GUARDED_BY(mu_);  // front() is in flight while writing_
  grpc::ByteBuffer out_wire_;  // out_.front() encoded; used only by the write in flight
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int holds_ ABSL_GUARDED_BY(mu_) = 0;  // appraisals in flight (at most one)
  StreamPolicyLog policy_log_ ABSL_GUARDED_BY(mu_);
  uint64_t listener_id_ = 0;  // PolicySet listener; 0 when none
};

AttestationService::AttestationService(AttestationOptions options, EvidenceAppraiser* appraiser,
                                       ResultSink* sink)
    : options_(std::move(options)),
      appraiser_(appraiser),
      sink_(sink),
      admission_(options_.limits, options_.clock),
      pool_(std::make_unique<AppraisalPool>(options_.appraisal_threads, options_.appraisal_queue)) {
}

// Queued appraisals run (draining) before the pool's threads are joined; the streams they
// answer are already finishing when the server shut down first, as it must.
AttestationService::~AttestationService() { pool_->Shutdown(); }

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* AttestationService::Attest(
    grpc::CallbackServerContext* context) {
  return new Reactor(this, context);
}

void AttestationService::CloseStreams() {
  const grpc::Status closing(grpc::StatusCode::UNAVAILABLE, "verifier is shutting down");
  // Finish is called outside mu_: its completion may run OnDone, which takes mu_. A reactor
  // that MarkFinishing told us to finish cannot reach OnDone before we do, so it is alive.
  std::vector<Reactor*> finish_now;
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    for (Reactor* r : streams_) {
      if (r->MarkFinishing(closing)) finish_now.push_back(r);
    }
  }
  for (Reactor* r : finish_now) r->Finish(closing);
}

void AttestationService::CloseNode(const std::string& node_id, const grpc::Status& status) {
  std::vector<Reactor*> finish_now;
  {
    absl::MutexLock lock(&mu_);
    for (Reactor* r : streams_) {
      if (r->node_id() == node_id && r->MarkFinishing(status)) finish_now.push_back(r);
    }
  }
  for (Reactor* r : finish_now) r->Finish(status);
}

size_t AttestationService::OpenStreams() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

grpc::Status AttestationService::Register(Reactor* reactor) {
  absl::MutexLock lock(&mu_);
  if (closing_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "verifier is shutting down");
  if (absl::Status admitted = admission_.Open(reactor->node_id()); !admitted.ok()) {
    return ToGrpcStatus(admitted);
  }
  streams_.insert(reactor);
  return grpc::Status::OK;
}

void AttestationService::Unregister(Reactor* reactor) {
  absl::MutexLock lock(&mu_);
  streams_.erase(reactor);
  admission_.Close(reactor->node_id());
}

}  // namespace vigil::verifier
