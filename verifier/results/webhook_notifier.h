#pragma once

// Webhooks: POSTs each VerdictChange, as JSON, to configured HTTP(S) targets, optionally
// signed with HMAC-SHA256 (header `X-Vigil-Signature: sha256=<hex>`). Notify() never
// blocks: each target has its own bounded queue (the oldest change is dropped, and counted,
// when it is full) drained by its own thread, which retries failed deliveries with
// exponential backoff and jitter.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vigil/v1/fleet.pb.h"

namespace vigil::verifier {

/// One receiver of verdict changes.
struct WebhookTarget {
  /// http://host[:port][/path] or https://...; no user:password@ part.
  std::string url;
  /// HMAC-SHA256 key for X-Vigil-Signature; empty sends no signature. A secret: never logged.
  std::string secret;
};

struct WebhookConfig {
  std::vector<WebhookTarget> targets;
  /// Changes waiting per target before the oldest is dropped.
  size_t queue_capacity = 1024;
  /// Attempts per change and target (the first one included) before it is abandoned.
  int max_attempts = 8;
  /// Backoff before the second attempt; it doubles per attempt up to max_backoff, and each
  /// wait is drawn uniformly from [backoff/2, backoff].
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(60);
  /// Connect, read and write timeout of each attempt.
  absl::Duration timeout = absl::Seconds(10);
  /// PEM CA bundle that https targets' certificates must chain to; empty uses the system's.
  std::string ca_file;
};

/// What happened to one target's deliveries so far.
struct WebhookStats {
  uint64_t delivered = 0;
  /// Attempts that failed (connection error, timeout, non-2xx answer).
  uint64_t failed_attempts = 0;
  /// Changes given up on after max_attempts.
  uint64_t abandoned = 0;
  /// Changes dropped unsent because the queue was full.
  uint64_t dropped = 0;
};

/// The JSON body posted for `change`: {"verdict_change": <proto3 JSON>, "ear_token": "..."}.
absl::StatusOr<std::string> WebhookBody(const v1::VerdictChange& change);

/// "sha256=<lowercase hex HMAC-SHA256(secret, body)>".
std::string WebhookSignature(std::string_view secret, std::string_view body);

class WebhookNotifier {
 public:
  /// Checks every target URL (scheme http or https, a host, a valid port, no credentials)
  /// and starts one delivery thread per target. Fails with kInvalidArgument naming the
  /// target's position and what is wrong.
  static absl::StatusOr<std::unique_ptr<WebhookNotifier>> Create(WebhookConfig config);

  /// Stops the threads; changes still queued are not sent.
  ~WebhookNotifier();
  WebhookNotifier(const WebhookNotifier&) = delete;
  WebhookNotifier& operator=(const WebhookNotifier&) = delete;

  /// Queues `change` for every target and returns at once.
  void Notify(const v1::VerdictChange& change);

  /// Counters of target `index` (in configuration order).
  WebhookStats stats(size_t index) const;

 private:
  class Worker;
  WebhookNotifier() = default;
  // Declared before the workers, which hold a reference to it, so it outlives them.
  std::shared_ptr<const WebhookConfig> config_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace vigil::verifier
