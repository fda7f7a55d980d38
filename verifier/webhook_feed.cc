#include "verifier/webhook_feed.h"

#include <spdlog/spdlog.h>

namespace vigil::verifier {
namespace {

constexpr size_t kChangesPerRead = 256;

}  // namespace

WebhookFeed::WebhookFeed(Store* store, WebhookNotifier* notifier)
    : store_(store), notifier_(notifier), cursor_(store->LatestCursor()) {
  subscription_ = store_->Subscribe([this] {
    absl::MutexLock lock(&mu_);
    pending_ = true;
  });
  thread_ = std::thread([this] { Run(); });
}

WebhookFeed::~WebhookFeed() {
  subscription_.reset();  // no more wake-ups once this returns
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void WebhookFeed::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ || stop_; };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      pending_ = false;
    }
    while (true) {
      absl::StatusOr<ChangesPage> page = store_->ChangesAfter(cursor_, "", kChangesPerRead);
      if (!page.ok()) {
        // Retention removed changes the feed had not read: those are gone; go on from now.
        spdlog::warn("webhooks: {}; resuming from the newest change",
                     std::string(page.status().message()));
        cursor_ = store_->LatestCursor();
        break;
      }
      for (const v1::VerdictChange& change : page->changes) notifier_->Notify(change);
      cursor_ = page->cursor;
      if (page->changes.size() < kChangesPerRead) break;
    }
  }
}

}  // namespace vigil::verifier
