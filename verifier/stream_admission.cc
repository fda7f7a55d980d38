#include "verifier/stream_admission.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vigil::verifier {
namespace {

// At most one warning line per kind of refusal this often.
constexpr absl::Duration kLogEvery = absl::Seconds(10);
// Idle nodes are forgotten at most this often (the sweep walks every node).
constexpr absl::Duration kSweepEvery = absl::Seconds(10);

constexpr const char* kKindNames[] = {"total stream limit", "per-node stream limit",
                                      "per-node rate limit"};

}  // namespace

TokenBucket::TokenBucket(double rate, double burst, absl::Time now)
    : rate_(rate), burst_(std::max(burst, 1.0)), tokens_(burst_), last_(now) {}

void TokenBucket::Refill(absl::Time now) {
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * rate_);
    last_ = now;
  }
}

bool TokenBucket::TryTake(absl::Time now) {
  Refill(now);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

bool TokenBucket::Full(absl::Time now) {
  Refill(now);
  return tokens_ >= burst_;
}

StreamAdmission::StreamAdmission(StreamLimits limits, std::function<absl::Time()> clock)
    : limits_(limits), clock_(std::move(clock)) {}

bool StreamAdmission::TakeToken(Node& node, absl::Time now) const {
  return limits_.evidence_per_second <= 0 || node.bucket.TryTake(now);
}

absl::Status StreamAdmission::Open(const std::string& node_id) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  SweepIdle(now);
  if (limits_.max_streams > 0 && open_ >= limits_.max_streams) {
    return Refuse(kTotal, node_id,
                  absl::StrCat("the verifier holds its limit of ", limits_.max_streams,
                               " Attest streams; reconnect later or to another verifier"));
  }
  auto [it, inserted] = nodes_.try_emplace(
      node_id, Node{0, TokenBucket(limits_.evidence_per_second, limits_.evidence_burst, now)});
  Node& node = it->second;
  if (limits_.max_streams_per_node > 0 && node.streams >= limits_.max_streams_per_node) {
    return Refuse(kPerNode, node_id,
                  absl::StrCat("this node already has ", node.streams,
                               " open Attest streams, the verifier's limit"));
  }
  if (!TakeToken(node, now)) {
    return Refuse(kRate, node_id,
                  "this node opens streams and sends evidence faster than the verifier's "
                  "per-node rate limit; reconnect later");
  }
  ++node.streams;
  ++open_;
  return absl::OkStatus();
}

void StreamAdmission::Close(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || it->second.streams == 0) return;
  --it->second.streams;
  --open_;
}

absl::Status StreamAdmission::TakeMessage(const std::string& node_id) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  // A node with an open stream is always present; be strict if it is not.
  if (it == nodes_.end() || !TakeToken(it->second, now)) {
    return Refuse(kRate, node_id,
                  "this node sends evidence faster than the verifier's per-node rate limit; "
                  "reconnect later");
  }
  return absl::OkStatus();
}

absl::Status StreamAdmission::Refuse(Kind kind, const std::string& node_id, std::string message) {
  switch (kind) {
    case kTotal:
      ++counters_.streams_refused_total;
      break;
    case kPerNode:
      ++counters_.streams_refused_per_node;
      break;
    default:
      ++counters_.rate_limited;
      break;
  }
  RefusalLog& log = logs_[kind];
  ++log.since_logged;
  const absl::Time now = clock_();
  if (now - log.last_logged >= kLogEvery) {
    spdlog::warn("attest: {} refused {} time(s) since the last report; latest node {}",
                 kKindNames[kind], log.since_logged, node_id.substr(0, 12));
    log.last_logged = now;
    log.since_logged = 0;
  }
  return absl::ResourceExhaustedError(std::move(message));
}

void StreamAdmission::SweepIdle(absl::Time now) {
  if (now - last_sweep_ < kSweepEvery) return;
  last_sweep_ = now;
  absl::erase_if(nodes_, [&](auto& entry) {
    Node& node = entry.second;
    return node.streams == 0 && (limits_.evidence_per_second <= 0 || node.bucket.Full(now));
  });
}

AttestationCounters StreamAdmission::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

size_t StreamAdmission::open() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

}  // namespace vigil::verifier
