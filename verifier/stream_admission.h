#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vigil::verifier {

/// Bounds on Attest streams and on what one node may send over them. Zero turns a bound off.
struct StreamLimits {
  /// Attest streams open at once, across all nodes.
  size_t max_streams = 20000;
  /// Attest streams one node may hold open at once. Two, so that a node reconnecting while
  /// the verifier still holds its previous, silently dead stream (until keepalive reaps it)
  /// gets in; a further stream is refused, never swapped for an older one.
  size_t max_streams_per_node = 2;
  /// Per-node token bucket: tokens added per second and the bucket's size. Opening a
  /// stream, each Evidence and each certificate renewal request take one token, before any
  /// appraisal, store write, fresh challenge or signature is spent on them.
  double evidence_per_second = 5;
  double evidence_burst = 20;
};

/// Refusals so far, by kind (for logs, tests and metrics).
struct AttestationCounters {
  /// Streams refused because max_streams were open.
  uint64_t streams_refused_total = 0;
  /// Streams refused because their node held max_streams_per_node.
  uint64_t streams_refused_per_node = 0;
  /// Streams refused at open, or ended, because their node was out of tokens.
  uint64_t rate_limited = 0;
};

/// A token bucket: `rate` tokens per second up to `burst`, starting full.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst, absl::Time now);
  /// Takes one token if there is one.
  bool TryTake(absl::Time now);
  /// Whether the bucket has refilled to its size (it then holds no memory of the past).
  bool Full(absl::Time now);

 private:
  void Refill(absl::Time now);

  double rate_;
  double burst_;
  double tokens_;
  absl::Time last_;
};

/// Admission of Attest streams and of the messages on them, per StreamLimits. Each refusal
/// is a RESOURCE_EXHAUSTED status naming the bound, a counter, and a warning logged once per
/// burst of refusals of its kind (at most one line per kind every ten seconds, with the
/// number refused since the last line). Thread-safe.
class StreamAdmission {
 public:
  StreamAdmission(StreamLimits limits, std::function<absl::Time()> clock);

  /// A new stream of `node_id`: OK (the stream is counted open until Close) or
  /// RESOURCE_EXHAUSTED.
  absl::Status Open(const std::string& node_id);
  /// The end of a stream Open admitted.
  void Close(const std::string& node_id);
  /// One costly message (evidence, renewal request) from `node_id`, which has a stream
  /// open: OK or RESOURCE_EXHAUSTED.
  absl::Status TakeMessage(const std::string& node_id);

  AttestationCounters counters() const;
  /// Streams open now.
  size_t open() const;

 private:
  struct Node {
    size_t streams = 0;
    TokenBucket bucket;
  };
  enum Kind { kTotal, kPerNode, kRate, kKinds };
  struct RefusalLog {
    absl::Time last_logged = absl::InfinitePast();
    uint64_t since_logged = 0;
  };

  // Counts a refusal of `kind` and logs it if its kind was quiet long enough.
  absl::Status Refuse(Kind kind, const std::string& node_id, std::string message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TakeToken(Node& node, absl::Time now) const;
  // Forgets nodes without streams whose bucket refilled: they would start afresh anyway.
  void SweepIdle(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StreamLimits limits_;
  const std::function<absl::Time()> clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Node> nodes_ ABSL_GUARDED_BY(mu_);
  size_t open_ ABSL_GUARDED_BY(mu_) = 0;
  AttestationCounters counters_ ABSL_GUARDED_BY(mu_);
  RefusalLog logs_[kKinds] ABSL_GUARDED_BY(mu_);
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace vigil::verifier
