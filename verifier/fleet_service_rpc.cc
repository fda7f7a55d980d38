// The Fleet API's RPC edge: each handler checks the caller's role, calls the plain method and
// converts; WatchVerdicts is a write reactor woken by the store's commits.

#include <initializer_list>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/spiffe.h"
#include "spdlog/spdlog.h"
#include "verifier/fleet_service.h"
#include "verifier/peer_identity.h"

namespace vigil::verifier {
namespace {

constexpr std::initializer_list<SpiffeRole> kOperator = {SpiffeRole::kOperator};
constexpr std::initializer_list<SpiffeRole> kOperatorAuditor = {SpiffeRole::kOperator,
                                                                SpiffeRole::kAuditor};
constexpr std::initializer_list<SpiffeRole> kOperatorOrchestrator = {SpiffeRole::kOperator,
                                                                     SpiffeRole::kOrchestrator};

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& st) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(st));
  return reactor;
}

// Checks the caller has one of `roles`, then runs `call(peer)`, which fills the response and
// returns the call's status.
template <typename Call>
grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context,
                                const std::string& trust_domain,
                                std::initializer_list<SpiffeRole> roles, Call call) {
  absl::StatusOr<PeerIdentity> peer = RequireRole(*context, trust_domain, roles);
  if (!peer.ok()) return Finish(context, peer.status());
  return Finish(context, call(*peer));
}

// Stores `result` into `*response` when it holds a value; returns its status.
template <typename T>
absl::Status Deliver(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return result.status();
  *response = *std::move(result);
  return absl::OkStatus();
}

// Who made an operator action, for the audit log: "<role>/<name>" as in the SPIFFE ID.
std::string Actor(const PeerIdentity& peer) {
  return absl::StrCat(std::string(SpiffeRoleName(peer.role)), "/", peer.name);
}

// A WatchVerdicts call refused before it started.
class RefusedWatch final : public grpc::ServerWriteReactor<v1::VerdictChange> {
 public:
  explicit RefusedWatch(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

FleetService::WatchReader::WatchReader() : thread_([this] { Loop(); }) {}

FleetService::WatchReader::~WatchReader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void FleetService::WatchReader::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void FleetService::WatchReader::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping, and every posted task ran
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
}

const grpc::Status kClosing(grpc::StatusCode::UNAVAILABLE,
                            "the verifier is shutting down; resume from your last cursor");

// One watcher. At most one store read (on the WatchReader) or one write is in flight, and
// at most one page of changes is held. The store's commit callback only marks the watcher
// dirty and, when it is idle, posts a read. Finish is called only when neither a read nor a
// write is in flight, so OnDone (which deletes the reactor) never races either; OnDone
// destroys the subscription first, after which the store never calls back.
class FleetService::WatchReactor final : public grpc::ServerWriteReactor<v1::VerdictChange> {
 public:
  WatchReactor(FleetService* service, std::string cursor, std::string node_id)
      : service_(service), node_id_(std::move(node_id)) {
    // Subscribe before fixing the start, so no commit falls between the two. Not under mu_:
    // the store calls Wake holding its own lock.
    subscription_ = service_->store_->Subscribe([this] { Wake(); });
    if (cursor.empty()) cursor = service_->store_->LatestCursor();
    // The initial metadata tells the client the watch has its start: every change stored
    // from then on will reach it.
    StartSendInitialMetadata();
    const bool open = service_->AddWatcher(this);
    std::lock_guard<std::mutex> lock(mu_);
    cursor_ = std::move(cursor);
    started_ = true;
    if (!open) {
      closing_ = true;
      FinishLocked(kClosing);
      return;
    }
    ScheduleReadLocked();
  }

  // CloseWatchers: like a cancellation, but the client is told UNAVAILABLE.
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    if (!writing_ && !reading_) FinishLocked(kClosing);
  }

  void OnSendInitialMetadataDone(bool /*ok*/) override {}

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok || cancelled_) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    if (closing_) {
      FinishLocked(kClosing);
      return;
    }
    if (!pending_.empty()) {
      WriteNextLocked();
    } else if (more_ || dirty_) {
      ScheduleReadLocked();
    }
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    if (!writing_ && !reading_) FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    service_->RemoveWatcher(this);
    // Waits out a Read or Wake that still holds the lock after finishing.
    { std::lock_guard<std::mutex> lock(mu_); }
    subscription_.reset();
    delete this;
  }

 private:
  // The store committed changes (on its writer thread: must not block on the store).
  void Wake() {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    dirty_ = true;
    if (started_ && !writing_ && !reading_ && pending_.empty()) ScheduleReadLocked();
  }

  void ScheduleReadLocked() {
    if (finished_ || reading_) return;
    if (cancelled_ || closing_) {
      if (!writing_) FinishLocked(cancelled_ ? grpc::Status::CANCELLED : kClosing);
      return;
    }
    reading_ = true;
    dirty_ = false;
    service_->watch_reader_.Post([this] { Read(); });
  }

  // On the WatchReader thread.
  void Read() {
    std::string cursor;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cursor = cursor_;
    }
    const size_t limit = service_->options_.watch_page_size;
    absl::StatusOr<ChangesPage> page = service_->store_->ChangesAfter(cursor, node_id_, limit);
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = false;
    if (cancelled_ || closing_) {
      FinishLocked(cancelled_ ? grpc::Status::CANCELLED : kClosing);
      return;
    }
    if (!page.ok()) {
      FinishLocked(ToGrpcStatus(page.status()));
      return;
    }
    more_ = page->changes.size() >= limit;
    cursor_ = std::move(page->cursor);
    for (v1::VerdictChange& c : page->changes) pending_.push_back(std::move(c));
    if (!pending_.empty()) {
      WriteNextLocked();
    } else if (dirty_) {
      ScheduleReadLocked();
    }
  }

  void WriteNextLocked() {
    current_ = std::move(pending_.front());
    pending_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    pending_.clear();
    Finish(status);
  }

  FleetService* const service_;
  const std::string node_id_;
  std::unique_ptr<Subscription> subscription_;

  std::mutex mu_;
  std::string cursor_;                     // where the next read resumes; guarded by mu_
  std::deque<v1::VerdictChange> pending_;  // read, not yet written; guarded by mu_
  v1::VerdictChange current_;              // being written; guarded by writing_
  bool writing_ = false;                   // guarded by mu_
  bool reading_ = false;                   // guarded by mu_
  bool dirty_ = false;      // a commit since the last read was posted; guarded by mu_
  bool more_ = false;       // the last read filled its page; guarded by mu_
  bool cancelled_ = false;  // guarded by mu_
  bool closing_ = false;    // CloseWatchers asked it to end; guarded by mu_
  bool finished_ = false;   // guarded by mu_
  bool started_ = false;    // cursor_ is set; guarded by mu_
};

bool FleetService::AddWatcher(WatchReactor* watcher) {
  std::lock_guard<std::mutex> lock(watchers_mu_);
  if (watchers_closed_) return false;
  watchers_.insert(watcher);
  return true;
}

void FleetService::RemoveWatcher(WatchReactor* watcher) {
  std::lock_guard<std::mutex> lock(watchers_mu_);
  watchers_.erase(watcher);
}

void FleetService::CloseWatchers() {
  // A watcher stays registered until its OnDone, which waits for watchers_mu_: each one is
  // alive while it is closed here.
  std::lock_guard<std::mutex> lock(watchers_mu_);
  watchers_closed_ = true;
  for (WatchReactor* w : watchers_) w->Close();
}

grpc::ServerUnaryReactor* FleetService::ListNodes(grpc::CallbackServerContext* context,
                                                  const v1::ListNodesRequest* request,
                                                  v1::ListNodesResponse* response) {
  return Serve(context, options_.trust_domain, kAnyClientRole,
               [&](const PeerIdentity&) { return Deliver(ListNodes(*request), response); });
}

grpc::ServerUnaryReactor* FleetService::GetNode(grpc::CallbackServerContext* context,
                                                const v1::GetNodeRequest* request,
                                                v1::GetNodeResponse* response) {
  return Serve(context, options_.trust_domain, kAnyClientRole,
               [&](const PeerIdentity&) { return Deliver(GetNode(request->node_id()), response); });
}

grpc::ServerUnaryReactor* FleetService::GetLatestEvidence(
    grpc::CallbackServerContext* context, const v1::GetLatestEvidenceRequest* request,
    v1::GetLatestEvidenceResponse* response) {
  return Serve(context, options_.trust_domain, kOperatorAuditor, [&](const PeerIdentity&) {
    return Deliver(GetLatestEvidence(request->node_id()), response);
  });
}

grpc::ServerUnaryReactor* FleetService::ListVerdicts(grpc::CallbackServerContext* context,
                                                     const v1::ListVerdictsRequest* request,
                                                     v1::ListVerdictsResponse* response) {
  return Serve(context, options_.trust_domain, kAnyClientRole,
               [&](const PeerIdentity&) { return Deliver(ListVerdicts(*request), response); });
}

grpc::ServerWriteReactor<v1::VerdictChange>* FleetService::WatchVerdicts(
    grpc::CallbackServerContext* context, const v1::WatchVerdictsRequest* request) {
  absl::StatusOr<PeerIdentity> peer = RequireRole(*context, options_.trust_domain, kAnyClientRole);
  if (!peer.ok()) return new RefusedWatch(peer.status());
  if (!request->node_id().empty() && request->node_id().size() != 64) {
    return new RefusedWatch(absl::InvalidArgumentError(
        "node_id must be empty or the 64-character lowercase hex id of a node"));
  }
  return new WatchReactor(this, request->cursor(), request->node_id());
}

grpc::ServerUnaryReactor* FleetService::CheckAdmission(grpc::CallbackServerContext* context,
                                                       const v1::CheckAdmissionRequest* request,
                                                       v1::CheckAdmissionResponse* response) {
  return Serve(context, options_.trust_domain, kOperatorOrchestrator, [&](const PeerIdentity&) {
    return Deliver(CheckAdmission(*request, absl::Now()), response);
  });
}

grpc::ServerUnaryReactor* FleetService::ExportAssessment(grpc::CallbackServerContext* context,
                                                         const v1::ExportAssessmentRequest* request,
                                                         v1::ExportAssessmentResponse* response) {
  return Serve(context, options_.trust_domain, kOperatorAuditor, [&](const PeerIdentity&) {
    return Deliver(ExportAssessment(*request, options_.max_page_bytes), response);
  });
}

grpc::ServerUnaryReactor* FleetService::GetJwks(grpc::CallbackServerContext* context,
                                                const v1::GetJwksRequest* /*request*/,
                                                v1::GetJwksResponse* response) {
  return Serve(context, options_.trust_domain, kAnyClientRole,
               [&](const PeerIdentity&) { return Deliver(GetJwks(), response); });
}

grpc::ServerUnaryReactor* FleetService::PutPolicy(grpc::CallbackServerContext* context,
                                                  const v1::PutPolicyRequest* request,
                                                  v1::PutPolicyResponse* response) {
  return Serve(context, options_.trust_domain, kOperator, [&](const PeerIdentity& peer) {
    return Deliver(PutPolicy(request->yaml(), Actor(peer)), response);
  });
}

grpc::ServerUnaryReactor* FleetService::ListPolicies(grpc::CallbackServerContext* context,
                                                     const v1::ListPoliciesRequest* /*request*/,
                                                     v1::ListPoliciesResponse* response) {
  return Serve(context, options_.trust_domain, kOperatorAuditor,
               [&](const PeerIdentity&) { return Deliver(ListPolicies(), response); });
}

grpc::ServerUnaryReactor* FleetService::ApproveNode(grpc::CallbackServerContext* context,
                                                    const v1::ApproveNodeRequest* request,
                                                    v1::ApproveNodeResponse* /*response*/) {
  return Serve(context, options_.trust_domain, kOperator, [&](const PeerIdentity& peer) {
    return ApproveNode(request->node_id(), Actor(peer));
  });
}

grpc::ServerUnaryReactor* FleetService::RevokeNode(grpc::CallbackServerContext* context,
                                                   const v1::RevokeNodeRequest* request,
                                                   v1::RevokeNodeResponse* /*response*/) {
  return Serve(context, options_.trust_domain, kOperator, [&](const PeerIdentity& peer) {
    return RevokeNode(request->node_id(), request->reason(), Actor(peer));
  });
}

grpc::ServerUnaryReactor* FleetService::ListAudit(grpc::CallbackServerContext* context,
                                                  const v1::ListAuditRequest* request,
                                                  v1::ListAuditResponse* response) {
  return Serve(context, options_.trust_domain, kOperatorAuditor,
               [&](const PeerIdentity&) { return Deliver(ListAudit(*request), response); });
}

}  // namespace vigil::verifier
