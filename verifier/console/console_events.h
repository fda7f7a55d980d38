#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "verifier/store/store.h"

namespace vigil::verifier::console {

/// The console's live updates: the store's status changes, read the way WatchVerdicts reads
/// them (one Subscribe for all streams wakes them; each reads ChangesAfter from its own
/// cursor, at most a page at a time), for a bounded number of streams. Thread-safe.
class Events {
 public:
  /// One client's event stream. Destroying it frees its place.
  class Stream {
   public:
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    /// Waits up to `wait` for changes after the stream's cursor, then returns them (oldest
    /// first, at most a page; empty when the wait ran out). OUT_OF_RANGE when retention
    /// removed changes the stream had not read (it then resumes from the newest);
    /// CANCELLED once the console closes.
    absl::StatusOr<std::vector<v1::VerdictChange>> Next(absl::Duration wait);
    /// Where the stream resumes (the last change's cursor).
    const std::string& cursor() const { return cursor_; }

   private:
    friend class Events;
    Stream(Events* events, std::string cursor, uint64_t generation)
        : events_(events), cursor_(std::move(cursor)), seen_(generation) {}

    Events* const events_;
    std::string cursor_;
    uint64_t seen_;      // the commit generation last read at
    bool more_ = false;  // the last read filled its page
  };

  /// `store` must outlive this. At most `max_streams` streams at once, each reading at most
  /// `page_size` changes at a time.
  Events(Store* store, size_t max_streams, size_t page_size);
  /// Closes, then stops listening to the store.
  ~Events();

  /// A stream from `cursor` (a Last-Event-ID) when the store knows it, else from the newest
  /// change. RESOURCE_EXHAUSTED when max_streams are open; CANCELLED once closed.
  absl::StatusOr<std::unique_ptr<Stream>> Open(const std::string& cursor);
  /// Ends every stream's wait and refuses new ones (the listener is stopping).
  void Close();
  size_t open_streams() const;

 private:
  Store* const store_;
  const size_t max_streams_;
  const size_t page_size_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  uint64_t generation_ = 0;  // commits with changes seen; guarded by mu_
  size_t open_ = 0;          // guarded by mu_
  bool closed_ = false;      // guarded by mu_
  std::unique_ptr<Subscription> subscription_;
};

}  // namespace vigil::verifier::console
