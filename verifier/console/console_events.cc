#include "verifier/console/console_events.h"

#include "absl/strings/str_cat.h"

namespace vigil::verifier::console {

Events::Events(Store* store, size_t max_streams, size_t page_size)
    : store_(store), max_streams_(max_streams), page_size_(page_size) {
  // On the store's writer thread: only bumps a counter and wakes the waiting streams.
  subscription_ = store_->Subscribe([this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++generation_;
    }
    changed_.notify_all();
  });
}

Events::~Events() {
  Close();
  subscription_.reset();
}

void Events::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  changed_.notify_all();
}

size_t Events::open_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

absl::StatusOr<std::unique_ptr<Events::Stream>> Events::Open(const std::string& cursor) {
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return absl::CancelledError("the console is stopping");
    if (open_ >= max_streams_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the console serves at most ", max_streams_, " live streams"));
    }
    ++open_;
    generation = generation_;
  }
  // The generation was fixed before the start cursor: a commit in between is read again,
  // never missed. A resumed cursor must be one the store issued.
  std::string start = store_->LatestCursor();
  if (!cursor.empty() && store_->ChangesAfter(cursor, "", 1).ok()) start = cursor;
  std::unique_ptr<Stream> stream(new Stream(this, std::move(start), generation));
  // A resumed stream may have changes waiting already.
  stream->more_ = stream->cursor_ != store_->LatestCursor();
  return stream;
}

Events::Stream::~Stream() {
  std::lock_guard<std::mutex> lock(events_->mu_);
  --events_->open_;
}

absl::StatusOr<std::vector<v1::VerdictChange>> Events::Stream::Next(absl::Duration wait) {
  {
    std::unique_lock<std::mutex> lock(events_->mu_);
    if (!more_) {
      events_->changed_.wait_for(lock, absl::ToChronoNanoseconds(wait), [this] {
        return events_->closed_ || events_->generation_ != seen_;
      });
    }
    if (events_->closed_) return absl::CancelledError("the console is stopping");
    if (!more_ && events_->generation_ == seen_) return std::vector<v1::VerdictChange>();
    seen_ = events_->generation_;
  }
  absl::StatusOr<ChangesPage> page =
      events_->store_->ChangesAfter(cursor_, "", events_->page_size_);
  if (!page.ok()) {
    if (page.status().code() == absl::StatusCode::kOutOfRange) {
      cursor_ = events_->store_->LatestCursor();
      more_ = false;
    }
    return page.status();
  }
  more_ = page->changes.size() >= events_->page_size_;
  cursor_ = std::move(page->cursor);
  return std::move(page->changes);
}

}  // namespace vigil::verifier::console
