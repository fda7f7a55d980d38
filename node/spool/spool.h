#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "node/spool/batch_format.h"

namespace vigil::node::spool {

/// The spool's loss and refusal counters. Kept in <dir>/spool.state across node restarts.
struct SpoolCounters {
  /// Batches (and the events in them) dropped, oldest first, to stay under the size bound.
  uint64_t dropped_batches = 0;
  uint64_t dropped_events = 0;
  /// Batch files that did not decode (torn, rotted or altered): moved to <dir>/corrupt/.
  uint64_t corrupt_batches = 0;
  /// Batches the verifier refused (their digest matched no measurement): moved to
  /// <dir>/refused/.
  uint64_t refused_batches = 0;

  friend bool operator==(const SpoolCounters&, const SpoolCounters&) = default;
};

/// A bounded, append-only directory of batch files (batch_format.h), one per batch, named
/// by sequence. Each batch is written to a temporary file, fsync'd, renamed into place and
/// the directory fsync'd, so a crash leaves whole batches only. Batches leave the spool
/// only when the verifier acknowledged them (Remove), when the size bound drops the oldest,
/// or when they are set aside (corrupt, refused). Thread-safe.
class Spool {
 public:
  struct Options {
    /// The spool directory; created (0700) when missing.
    std::string dir;
    /// Upper bound on the bytes of the batch files held.
    uint64_t max_bytes = 256ull << 20;
  };

  /// Opens the spool: creates the directory, proves it writable (FailedPrecondition naming
  /// the path otherwise), reads the counters and lists the batches already there (a node
  /// restart keeps its spool). Batches are decoded only when read.
  static absl::StatusOr<std::unique_ptr<Spool>> Open(Options options);

  /// Writes a new batch with the next sequence number and returns it, first dropping the
  /// oldest batches (counted) until it fits under max_bytes. A batch larger than max_bytes
  /// on its own is ResourceExhausted and changes nothing.
  absl::StatusOr<uint64_t> Append(int64_t written_unix_nano, uint64_t log_recnum, uint32_t events,
                                  const std::string& payload);

  /// The sequences held, oldest first.
  std::vector<uint64_t> Sequences() const;
  /// The oldest batch held, if any.
  std::optional<uint64_t> Oldest() const;

  /// Reads and decodes batch `sequence`. NotFound when it is not held. A batch that does not
  /// decode (or whose header names another sequence) is moved to <dir>/corrupt/, counted,
  /// logged, and DataLoss is returned: the caller skips it.
  absl::StatusOr<Batch> Read(uint64_t sequence);

  /// Deletes batch `sequence` (the verifier acknowledged it). OK when it is not held.
  absl::Status Remove(uint64_t sequence);

  /// Moves batch `sequence` to <dir>/refused/ and counts it (the verifier refused it).
  absl::Status SetAside(uint64_t sequence, const std::string& why);

  SpoolCounters counters() const;
  /// Bytes of the batch files held.
  uint64_t bytes() const;
  size_t size() const;
  const std::string& dir() const { return options_.dir; }

 private:
  explicit Spool(Options options) : options_(std::move(options)) {}
  absl::Status Load();
  absl::Status DropOldestLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves a held batch to <dir>/<subdir>/ and forgets it.
  absl::Status MoveAsideLocked(uint64_t sequence, const std::string& subdir)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SaveCountersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string PathOf(uint64_t sequence) const;

  const Options options_;
  mutable absl::Mutex mu_;
  // sequence -> file size.
  std::map<uint64_t, uint64_t> batches_ ABSL_GUARDED_BY(mu_);
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  SpoolCounters counters_ ABSL_GUARDED_BY(mu_);
};

/// What <dir>/spool.state keeps: the counters and the next sequence number (so numbers are
/// not reused after the spool emptied and the node restarted).
struct SpoolState {
  SpoolCounters counters;
  uint64_t next_sequence = 1;
};

/// Parses spool.state ("name value" lines; unknown names ignored). Untrusted: a malformed
/// line is InvalidArgument.
absl::StatusOr<SpoolState> ParseSpoolState(std::string_view text);
std::string SerializeSpoolState(const SpoolState& state);

}  // namespace vigil::node::spool
