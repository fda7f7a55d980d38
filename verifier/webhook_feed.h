#pragma once

// Feeds the store's status changes to the webhook notifier: every change committed after
// the feed started is handed to WebhookNotifier::Notify once, in order, by a thread of its
// own that the store's commit notification wakes, so appraisal never waits for it.

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "verifier/results/webhook_notifier.h"
#include "verifier/store/store.h"

namespace vigil::verifier {

class WebhookFeed {
 public:
  /// `store` and `notifier` must outlive the feed.
  WebhookFeed(Store* store, WebhookNotifier* notifier);
  /// Stops the feed; changes not yet handed over are not sent.
  ~WebhookFeed();

  WebhookFeed(const WebhookFeed&) = delete;
  WebhookFeed& operator=(const WebhookFeed&) = delete;

 private:
  void Run();

  Store* const store_;
  WebhookNotifier* const notifier_;
  absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::string cursor_;  // touched by the feed thread only
  std::unique_ptr<Subscription> subscription_;
  std::thread thread_;
};

}  // namespace vigil::verifier
