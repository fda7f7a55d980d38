#include "bench/fleetsim/fleet.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/enrollment_exchange.h"
#include "common/keepalive.h"
#include "common/measurement_log.h"
#include "common/status_macros.h"
#include "vigil/v1/attestation.grpc.pb.h"
#include "vigil/v1/enrollment.grpc.pb.h"

namespace vigil::fleetsim {
namespace {

// An error reason for the summary: the status code, and the message's start.
std::string Reason(const grpc::Status& s) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int code = static_cast<int>(s.error_code());
  const char* name = code >= 0 && code <= 16 ? kNames[code] : "?";
  return absl::StrCat("stream ended ", name, ": ", s.error_message().substr(0, 80));
}

double Percentile(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

// p50, p99 and max of `v` (reordered).
void Summarize(std::vector<float>& v, double* p50, double* p99, double* max) {
  *p50 = Percentile(v, 0.50);
  *p99 = Percentile(v, 0.99);
  *max = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

}  // namespace

// One simulated node: its TPM, its identity and its Attest stream (a callback reactor).
class Fleet::Node final : public grpc::ClientBidiReactor<v1::NodeMessage, v1::VerifierMessage> {
 public:
  Node(Fleet* fleet, size_t index) : fleet_(fleet), index_(index) {}

  absl::Status Enroll(v1::Enrollment::Stub& stub) {
    const EkAlgorithm algorithm =
        fleet_->options_.rsa_every > 0 && index_ % fleet_->options_.rsa_every == 0
            ? EkAlgorithm::kRsa2048
            : EkAlgorithm::kEccP256;
    ASSIGN_OR_RETURN(tpm_, SimulatedTpm::Create(algorithm, *fleet_->options_.ek_ca));
    ASSIGN_OR_RETURN(KeyAndCsr key_and_csr, MakeKeyAndCsr(tpm_->node_id()));
    ASSIGN_OR_RETURN(chain_pem_,
                     ExchangeEnrollment(stub, *tpm_, key_and_csr.csr_pem,
                                        fleet_->options_.enroll_address, absl::Seconds(60)));
    key_pem_ = std::move(key_and_csr.key_pem);
    for (const StartMeasurement& m : StartSequence()) {
      tpm_->Measure(m.event_type, m.content, m.digest);
    }
    return absl::OkStatus();
  }

  const std::string& node_id() const { return tpm_->node_id(); }
  size_t index() const { return index_; }

  // Opens the Attest stream on the node's own channel with its own certificate.
  void Open() {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = fleet_->options_.ca_pem;
    ssl.pem_private_key = key_pem_;
    ssl.pem_cert_chain = chain_pem_;
    grpc::ChannelArguments args;
    if (!fleet_->options_.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(fleet_->options_.tls_server_name);
    }
    // Each node is its own TLS connection, as it would be from its own machine.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // Flow control as a vigil-node's Attest channel has it.
    ApplyFixedFlowControl(args);
    channel_ =
        grpc::CreateCustomChannel(fleet_->options_.attest_address, grpc::SslCredentials(ssl), args);
    stub_ = v1::Attestation::NewStub(channel_);
    opened_ = true;
    stub_->async()->Attest(&ctx_, this);
    StartRead(&in_);
    StartCall();
  }

  void Cancel() { ctx_.TryCancel(); }
  bool opened() const { return opened_; }

  // The worker's part: the report, its quote and the evidence, sent on the stream.
  void Answer() {
    std::unique_lock<std::mutex> lock(mu_);
    if (done_ || !challenge_pending_) return;
    if (writing_) {
      answer_after_write_ = true;
      return;
    }
    const absl::Duration interval = absl::Nanoseconds(fleet_->interval_ns_.load());
    event_carry_ += fleet_->options_.events_per_second * absl::ToDoubleSeconds(interval);
    const auto events = static_cast<uint32_t>(event_carry_);
    event_carry_ -= events;
    ++sequence_;
    sent_compliant_ = fleet_->ReportCompliant(index_, sequence_);
    std::string payload =
        fleet_->Sentinel(index_)
            ? fleet_->mix_.SentinelReport(index_, !sent_compliant_, tpm_->node_id(), sequence_,
                                          policy_digest_, events)
            : fleet_->mix_.Report(index_, tpm_->node_id(), sequence_, policy_digest_, events);
    const Sha256Digest qualifying = Sha256Concat({nonce_, DigestBytes(Sha256(payload))});
    absl::StatusOr<v1::Quote> quote = tpm_->Quote(pcrs_, DigestBytes(qualifying));
    if (!quote.ok()) {
      lock.unlock();
      fleet_->AddError(absl::StrCat("quote: ", quote.status().message()));
      return;
    }
    out_.Clear();
    v1::Evidence* e = out_.mutable_evidence();
    e->set_nonce(nonce_);
    e->set_payload(std::move(payload));
    *e->mutable_quote() = *std::move(quote);
    for (size_t i = log_acked_; i < tpm_->log().size(); ++i) *e->add_log_entries() = tpm_->log()[i];
    challenge_pending_ = false;
    writing_ = true;
    sent_at_ = absl::Now();
    if (fleet_->Sentinel(index_) && !sent_compliant_) {
      fleet_->SentViolation(tpm_->node_id(), sequence_, sent_at_);
    }
    lock.unlock();
    StartWrite(&out_);
  }

  // Schedules the answer to the challenge held (mu_ held), `interval` after the previous one (the
  // first at a random point of the first interval after `released`).
  void ScheduleAnswer(absl::Time released) {
    const absl::Duration interval = absl::Nanoseconds(fleet_->interval_ns_.load());
    absl::Time due;
    if (last_due_ == absl::InfinitePast()) {
      std::uniform_real_distribution<double> spread(0, 1);
      std::mt19937_64 rng(index_ * 0x9e3779b97f4a7c15ull + 1);
      due = released + spread(rng) * interval;
    } else {
      due = last_due_ + interval;
    }
    // A node that fell behind answers at once rather than in a burst.
    last_due_ = std::max(due, absl::Now());
    fleet_->Schedule(last_due_, this);
  }

  // Called once released: nodes holding their first challenge schedule it.
  void OnReleased(absl::Time released) {
    std::lock_guard<std::mutex> lock(mu_);
    if (challenge_pending_ && !done_) ScheduleAnswer(released);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    bool first_challenge = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      switch (in_.body_case()) {
        case v1::VerifierMessage::kPolicy: {
          // The node measures the bundle it is sent and reports under it from then on.
          const Sha256Digest digest = Sha256(in_.policy().content());
          tpm_->Measure(kEventPolicyBundle, "vigil-fleetsim policy bundle", DigestBytes(digest));
          policy_digest_ = HexEncode(digest);
          policy_measured_ = true;
          break;
        }
        case v1::VerifierMessage::kChallenge: {
          if (!policy_measured_) {
            tpm_->Measure(kEventNoPolicy, "no policy bundle",
                          DigestBytes(Sha256(kNoPolicyDigestInput)));
            policy_measured_ = true;
          }
          nonce_ = in_.challenge().nonce();
          pcrs_.assign(in_.challenge().pcr_selection().begin(),
                       in_.challenge().pcr_selection().end());
          challenge_pending_ = true;
          if (!got_challenge_) {
            got_challenge_ = true;
            first_challenge = true;
          }
          absl::Time released;
          if (fleet_->Released(&released)) ScheduleAnswer(released);
          break;
        }
        case v1::VerifierMessage::kAcknowledgement: {
          const v1::Acknowledgement& ack = in_.acknowledgement();
          log_acked_ = ack.log_entries_acknowledged();
          const v1::Verdict& v = ack.verdict();
          fleet_->RecordAck(sent_compliant_, absl::Now() - sent_at_,
                            v1::TrustStatus_Name(v.status()), v.tpm_simulated(),
                            v.status() == v1::TRUST_AFFIRMING);
          break;
        }
        default:
          break;
      }
    }
    if (first_challenge) fleet_->OnConnected();
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    bool again = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      again = ok && answer_after_write_;
      answer_after_write_ = false;
    }
    if (again) fleet_->Schedule(absl::Now(), this);
  }

  void OnDone(const grpc::Status& status) override {
    bool was_connected = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      was_connected = got_challenge_;
    }
    fleet_->OnEnded(status, was_connected);
  }

 private:
  Fleet* const fleet_;
  const size_t index_;
  std::unique_ptr<SimulatedTpm> tpm_;
  std::string key_pem_;
  std::string chain_pem_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Attestation::Stub> stub_;
  grpc::ClientContext ctx_;
  bool opened_ = false;
  v1::VerifierMessage in_;
  v1::NodeMessage out_;

  std::mutex mu_;
  bool done_ = false;
  bool got_challenge_ = false;
  bool challenge_pending_ = false;
  bool writing_ = false;
  bool answer_after_write_ = false;
  bool policy_measured_ = false;
  std::string nonce_;
  std::vector<uint32_t> pcrs_;
  std::string policy_digest_;
  uint64_t sequence_ = 0;
  bool sent_compliant_ = true;  // whether the report in flight is a compliant one
  uint64_t log_acked_ = 0;
  double event_carry_ = 0;
  absl::Time sent_at_;
  absl::Time last_due_ = absl::InfinitePast();
};

Fleet::Fleet(FleetOptions options)
    : options_(std::move(options)), mix_(options_.noncompliant_percent) {
  for (size_t i = 0; i < options_.nodes; ++i) nodes_.push_back(std::make_unique<Node>(this, i));
  for (size_t i = 0; i < std::max<size_t>(1, options_.workers); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

Fleet::~Fleet() { Stop(); }

absl::Status Fleet::Enroll() {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options_.ca_pem;
  grpc::ChannelArguments args;
  if (!options_.tls_server_name.empty()) args.SetSslTargetNameOverride(options_.tls_server_name);
  auto channel =
      grpc::CreateCustomChannel(options_.enroll_address, grpc::SslCredentials(ssl), args);
  auto stub = v1::Enrollment::NewStub(channel);
  std::atomic<size_t> next{0};
  std::mutex failed_mu;
  absl::Status failed;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < std::max<size_t>(1, options_.enroll_concurrency); ++t) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < nodes_.size(); i = next++) {
        absl::Status st = nodes_[i]->Enroll(*stub);
        if (!st.ok()) {
          std::lock_guard<std::mutex> lock(failed_mu);
          if (failed.ok()) failed = st;
          next = nodes_.size();
          return;
        }
        ++enrolled_;
      }
    });
  }
  absl::Time last_progress = absl::Now();
  while (enrolled_.load() < nodes_.size()) {
    {
      std::lock_guard<std::mutex> lock(failed_mu);
      if (!failed.ok()) break;
    }
    absl::SleepFor(absl::Milliseconds(50));
    if (absl::Now() - last_progress >= absl::Seconds(1)) {
      last_progress = absl::Now();
      std::fprintf(stderr, "vigil-fleetsim: enrolled %zu/%zu\n", enrolled_.load(), nodes_.size());
    }
  }
  for (std::thread& t : threads) t.join();
  if (!failed.ok()) {
    AddError(absl::StrCat("enrollment: ", failed.message().substr(0, 100)));
    return failed;
  }
  for (const auto& n : nodes_) node_ids_.push_back(n->node_id());
  std::fprintf(stderr, "vigil-fleetsim: enrolled %zu/%zu\n", enrolled_.load(), nodes_.size());
  return absl::OkStatus();
}

absl::Status Fleet::Connect() {
  size_t opened = 0;
  absl::Time last_progress = absl::Now();
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    const size_t settled = connected_.load() + ended_.load();
    while (opened < nodes_.size() && opened - std::min(opened, settled) < options_.connect_window) {
      Node* n = nodes_[opened++].get();
      lock.unlock();
      n->Open();
      lock.lock();
    }
    if (opened == nodes_.size() && connected_.load() + ended_.load() >= nodes_.size()) break;
    cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (absl::Now() - last_progress >= absl::Seconds(1)) {
      last_progress = absl::Now();
      std::fprintf(stderr, "vigil-fleetsim: connected %zu/%zu\n", connected_.load(), nodes_.size());
    }
  }
  std::fprintf(stderr, "vigil-fleetsim: connected %zu/%zu\n", connected_.load(), nodes_.size());
  if (connected_.load() < nodes_.size()) {
    return absl::UnavailableError(absl::StrCat(nodes_.size() - connected_.load(),
                                               " streams ended before their first challenge"));
  }
  return absl::OkStatus();
}

bool Fleet::Released(absl::Time* at) {
  std::lock_guard<std::mutex> lock(mu_);
  *at = released_at_;
  return released_;
}

void Fleet::Release(absl::Duration interval) {
  SetInterval(interval);
  absl::Time now = absl::Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    released_at_ = now;
  }
  for (const auto& n : nodes_) n->OnReleased(now);
}

void Fleet::SetInterval(absl::Duration interval) {
  interval_ns_ = absl::ToInt64Nanoseconds(interval);
}

void Fleet::Schedule(absl::Time due, Node* node) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    due_.emplace(due, node);
  }
  cv_.notify_all();
}

void Fleet::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (due_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const absl::Time first = due_.begin()->first;
    const absl::Time now = absl::Now();
    if (first > now) {
      cv_.wait_for(lock, std::chrono::nanoseconds(absl::ToInt64Nanoseconds(first - now)));
      continue;
    }
    Node* n = due_.begin()->second;
    due_.erase(due_.begin());
    lock.unlock();
    n->Answer();
    lock.lock();
  }
}

void Fleet::OnConnected() {
  ++connected_;
  cv_.notify_all();
}

void Fleet::OnEnded(const grpc::Status& status, bool was_connected) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      const std::string reason = Reason(status);
      ++all_errors_[reason];
      ++window_.errors[reason];
    }
  }
  if (was_connected) --connected_;
  ++ended_;
  cv_.notify_all();
}

void Fleet::AddError(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++all_errors_[reason];
  ++window_.errors[reason];
}

bool Fleet::ReportCompliant(size_t index, uint64_t sequence) const {
  return Sentinel(index) ? sequence % 2 == 1 : mix_.Compliant(index);
}

void Fleet::SentViolation(const std::string& node_id, uint64_t sequence, absl::Time at) {
  std::lock_guard<std::mutex> lock(mu_);
  violations_[{node_id, sequence}] = at;
  ++window_.violations_sent;
}

absl::Status Fleet::WatchChanges(const std::string& address, const CertAndKey& identity) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options_.ca_pem;
  ssl.pem_private_key = identity.key_pem;
  ssl.pem_cert_chain = identity.cert_pem;
  grpc::ChannelArguments args;
  if (!options_.tls_server_name.empty()) args.SetSslTargetNameOverride(options_.tls_server_name);
  watch_stub_ =
      v1::Fleet::NewStub(grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args));
  // A Fleet round trip first, so a refused identity is an error here, not a silent watcher.
  grpc::ClientContext probe;
  probe.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ListPoliciesResponse policies;
  grpc::Status st = watch_stub_->ListPolicies(&probe, v1::ListPoliciesRequest(), &policies);
  if (!st.ok()) {
    return absl::UnavailableError(absl::StrCat("WatchVerdicts client: ", st.error_message()));
  }
  watch_ctx_ = std::make_unique<grpc::ClientContext>();
  watcher_ = std::thread([this] { WatchLoop(); });
  return absl::OkStatus();
}

void Fleet::WatchLoop() {
  std::unique_ptr<grpc::ClientReader<v1::VerdictChange>> reader =
      watch_stub_->WatchVerdicts(watch_ctx_.get(), v1::WatchVerdictsRequest());
  v1::VerdictChange change;
  while (reader->Read(&change)) {
    // The node's own status (not a workload's) turned contraindicated by a sentinel's report.
    if (!change.workload_id().empty() || change.status() != v1::TRUST_CONTRAINDICATED) continue;
    const absl::Time now = absl::Now();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = violations_.find({change.node_id(), change.verdict().report_sequence()});
    if (it == violations_.end()) continue;
    if (it->second < window_start_) {  // sent before this window: not its sample
      violations_.erase(it);
      continue;
    }
    detections_ms_.push_back(static_cast<float>(absl::ToDoubleMilliseconds(now - it->second)));
    ++window_.violations_detected;
    violations_.erase(it);
  }
  grpc::Status st = reader->Finish();
  std::lock_guard<std::mutex> lock(mu_);
  if (!stopping_) {
    ++all_errors_[absl::StrCat("WatchVerdicts ended: ", st.error_message().substr(0, 80))];
  }
}

uint64_t Fleet::AwaitDetections(absl::Time sent_before, absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    uint64_t outstanding = 0;
    for (const auto& [key, sent] : violations_) {
      if (sent >= window_start_ && sent < sent_before) ++outstanding;
    }
    if (outstanding == 0 || absl::Now() >= deadline) return outstanding;
    lock.unlock();
    absl::SleepFor(absl::Milliseconds(20));
    lock.lock();
  }
}

void Fleet::RecordAck(bool compliant, absl::Duration latency, const std::string& status,
                      bool simulated, bool affirming) {
  acknowledged_total_.fetch_add(1, std::memory_order_relaxed);
  latency_total_ns_.fetch_add(absl::ToInt64Nanoseconds(latency), std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  latencies_ms_.push_back(static_cast<float>(absl::ToDoubleMilliseconds(latency)));
  ++window_.acknowledged;
  ++window_.statuses[status];
  if (!simulated) ++window_.not_marked_simulated;
  if (compliant && !affirming) ++window_.compliant_not_affirmed;
  if (!compliant && affirming) ++window_.noncompliant_affirmed;
}

void Fleet::StartWindow() {
  std::lock_guard<std::mutex> lock(mu_);
  window_ = WindowStats();
  latencies_ms_.clear();
  detections_ms_.clear();
  window_start_ = absl::Now();
}

WindowStats Fleet::TakeWindow() {
  std::lock_guard<std::mutex> lock(mu_);
  WindowStats out = window_;
  out.seconds = absl::ToDoubleSeconds(absl::Now() - window_start_);
  Summarize(latencies_ms_, &out.p50_ms, &out.p99_ms, &out.max_ms);
  Summarize(detections_ms_, &out.detect_p50_ms, &out.detect_p99_ms, &out.detect_max_ms);
  return out;
}

std::map<std::string, uint64_t> Fleet::AllErrors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return all_errors_;
}

void Fleet::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    due_.clear();
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  if (watcher_.joinable()) {
    watch_ctx_->TryCancel();
    watcher_.join();
  }
  size_t opened = 0;
  for (const auto& n : nodes_) {
    if (n->opened()) {
      ++opened;
      n->Cancel();
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  while (ended_.load() < opened) cv_.wait_for(lock, std::chrono::milliseconds(50));
}

}  // namespace vigil::fleetsim
