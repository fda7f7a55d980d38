#include "verifier/appraisal_pool.h"

#include <algorithm>

namespace vigil::verifier {

AppraisalPool::AppraisalPool(size_t threads, size_t queue_capacity)
    : capacity_(std::max<size_t>(queue_capacity, 1)) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

AppraisalPool::~AppraisalPool() { Shutdown(); }

bool AppraisalPool::Submit(absl::AnyInvocable<void() &&> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  // Behind what is held already, so that tasks keep their arrival order.
  if (queue_.size() >= capacity_ || !held_.empty()) {
    held_.push_back(std::move(task));
  } else {
    queue_.push_back(std::move(task));
  }
  return true;
}

void AppraisalPool::RunCompletion(absl::AnyInvocable<void() &&> task) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      completions_.push_back(std::move(task));
      return;
    }
  }
  std::move(task)();
}

size_t AppraisalPool::held() const {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

void AppraisalPool::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void AppraisalPool::Work() {
  while (true) {
    absl::AnyInvocable<void() &&> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty() || !completions_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (!completions_.empty()) {
        task = std::move(completions_.front());
        completions_.pop_front();
      } else if (!queue_.empty()) {
        task = std::move(queue_.front());
        queue_.pop_front();
        if (!held_.empty()) {  // a place freed: the longest-held task takes it
          queue_.push_back(std::move(held_.front()));
          held_.pop_front();
        }
      } else {
        return;  // stopping, and everything queued and held has run
      }
    }
    std::move(task)();
  }
}

}  // namespace vigil::verifier
