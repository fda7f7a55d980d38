#pragma once

#include <cstddef>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace vigil::verifier {

/// A fixed set of threads running appraisals off gRPC's callback threads, fed by a bounded
/// queue, so a slow appraisal for one node never holds up another node's stream. Tasks run in
/// submission order as threads free up. Beyond the queue's bound a task is held, in arrival
/// order, and enters the queue as places free: the caller (an Attest stream, which reads
/// nothing more until its evidence is answered) bounds how many tasks can be held. Completions
/// (the work that answers a stream once its verdict is durable) run before queued tasks.
class AppraisalPool {
 public:
  /// `threads` 0 means one per core (std::thread::hardware_concurrency, at least 1);
  /// `queue_capacity` (at least 1) bounds the tasks queued for a thread.
  AppraisalPool(size_t threads, size_t queue_capacity);
  /// Shutdown().
  ~AppraisalPool();

  AppraisalPool(const AppraisalPool&) = delete;
  AppraisalPool& operator=(const AppraisalPool&) = delete;

  /// Queues `task`, or holds it until the queue has room when it is full. False, and `task`
  /// is dropped unrun, only when the pool is shutting down.
  bool Submit(absl::AnyInvocable<void() &&> task);

  /// Runs `task` on a pool thread ahead of every queued or held task; once the pool is
  /// shutting down, on the calling thread. Meant for short work that finishes what a task
  /// started (writing a stream's answer), so that it runs neither on the thread that
  /// reported durability (the store's single writer) nor behind new appraisals.
  void RunCompletion(absl::AnyInvocable<void() &&> task);

  /// Refuses new tasks, runs every task already queued or held, then joins the threads.
  /// Idempotent.
  void Shutdown();

  size_t threads() const { return threads_.size(); }
  size_t queue_capacity() const { return capacity_; }
  /// Tasks held now because the queue was full when they came.
  size_t held() const;

 private:
  void Work();

  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> completions_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::AnyInvocable<void() &&>> held_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace vigil::verifier
