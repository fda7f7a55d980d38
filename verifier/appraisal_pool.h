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
/// submission order as threads free up.
class AppraisalPool {
 public:
  /// `threads` 0 means one per core (std::thread::hardware_concurrency, at least 1);
  /// `queue_capacity` (at least 1) bounds the tasks waiting for a thread.
  AppraisalPool(size_t threads, size_t queue_capacity);
  /// Shutdown().
  ~AppraisalPool();

  AppraisalPool(const AppraisalPool&) = delete;
  AppraisalPool& operator=(const AppraisalPool&) = delete;

  /// Queues `task`. False, and `task` is dropped unrun, when the queue is full or the pool is
  /// shutting down: the caller decides what the refusal means.
  bool TrySubmit(absl::AnyInvocable<void() &&> task);

  /// Refuses new tasks, runs every task already queued, then joins the threads. Idempotent.
  void Shutdown();

  size_t threads() const { return threads_.size(); }
  size_t queue_capacity() const { return capacity_; }

 private:
  void Work();

  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace vigil::verifier
