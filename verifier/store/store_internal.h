#pragma once

// What SqliteStore and PostgresStore share beyond the Store interface: the writer thread's
// loop, change subscriptions, and the small rules both apply the same way.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "verifier/store/store.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier::store_internal {

int64_t NowUnixNanos();

/// What the node's own report says its hostname is (informational; empty when the payload
/// is not a RuntimeReport). Reads the one field from the wire, without parsing the report.
std::string HostnameOf(const v1::Evidence& evidence);

/// A verdict as a store writes it: serialized once, on the thread that recorded it, beside the
/// few fields the store indexes, so the writer thread never copies, walks or destroys the
/// verdict's message tree (a verdict carries every rule outcome with its controls).
struct VerdictRecord {
  struct Workload {
    std::string workload_id;
    std::string name;
    v1::TrustStatus status = v1::TRUST_STATUS_UNSPECIFIED;
  };
  std::string node_id;
  std::string hostname;
  /// The serialized Evidence and Verdict.
  std::string evidence;
  std::string verdict;
  v1::TrustStatus status = v1::TRUST_STATUS_UNSPECIFIED;
  /// The verdict's appraisal time (0 when it has none: the store uses the time it writes).
  int64_t appraised_unix_nano = 0;
  std::string evidence_sha256;
  std::string policy_digest;
  bool from_spool = false;
  std::vector<Workload> workloads;
};

VerdictRecord MakeVerdictRecord(const std::string& node_id, const v1::Evidence& evidence,
                                const v1::Verdict& verdict);

/// `bytes` as the stores keep a large blob: one LZ4 block behind two bytes no serialized
/// message starts with (a field number is never 0) and the uncompressed size, when that is
/// shorter; `bytes` itself otherwise. A verdict repeats each rule's controls, expectation and
/// workload id in every outcome, and a report each process's near-identical snapshot, so the
/// block is a fraction of the message, and LZ4 compresses at several GB/s: less for the writers,
/// the WAL, the checkpointer and the cache of latest verdicts to carry, for a few microseconds.
std::string CompressStored(std::string bytes);

/// The bytes CompressStored was given: `stored` itself, or the block expanded into `buffer`.
/// Nullopt when the block is corrupt or claims a size its length cannot hold.
std::optional<std::string_view> ExpandStored(std::string_view stored, std::string& buffer);

/// A verdict's bytes as the stores keep them. Verdict.rules repeats every workload's rule
/// outcomes (flattened, after any rule about the node itself): the stored form leaves those
/// copies out, behind two bytes no serialized message starts with, and DecodeStoredVerdict puts
/// them back. A verdict whose rules do not end with its workloads' outcomes is kept whole.
/// Either is then compressed (CompressStored).
std::string EncodeStoredVerdict(const v1::Verdict& verdict);

/// Parses a verdict in any stored form (whole, as every verdict before the compact form was,
/// compact, or either compressed). False when the bytes are not one.
bool DecodeStoredVerdict(std::string_view bytes, v1::Verdict& verdict);

/// Evidence as the stores keep a node's latest: serialized and compressed (CompressStored).
std::string EncodeStoredEvidence(const v1::Evidence& evidence);

/// Parses evidence in either stored form (serialized, as before compression, or compressed).
bool DecodeStoredEvidence(std::string_view bytes, v1::Evidence& evidence);

/// A node as a store keeps it in memory: its summary, whose latest verdict stays serialized
/// until a reader asks for it (a parsed verdict is large, and the writer replaces it on every
/// report).
struct CachedNode {
  /// latest_verdict is left empty here.
  NodeResultSummary summary;
  /// The serialized latest verdict; empty when there is none.
  std::string latest_verdict;
};

/// `node`'s summary with its latest verdict parsed.
NodeResultSummary Materialize(const CachedNode& node);

/// A page size as ListVerdicts and ListAudit apply it: 0 is 100, more than 1000 is 1000.
uint32_t PageSize(uint32_t requested);

/// Checks a policy PutPolicy is given and returns it as it is stored (updated_unix_nano set
/// to now when 0).
absl::StatusOr<v1::PolicyInfo> PolicyToStore(const v1::PolicyInfo& policy);

/// After a batch's transaction: when it failed (`batch`), every write's result becomes that
/// error (logged once). Returns the batch's error, else the first write's error, else OK.
absl::Status SettleResults(const absl::Status& batch, std::vector<absl::Status>& results);

/// Runs retention passes until one deletes nothing; their totals.
absl::StatusOr<RetentionResult> RetainUntilDone(
    const std::function<absl::StatusOr<RetentionResult>()>& pass);

/// The Subscribe callbacks of a store.
class Subscribers {
 public:
  /// Adds `on_commit` until the returned Subscription is destroyed (which waits for a
  /// running call of it to end).
  std::unique_ptr<Subscription> Add(std::function<void()> on_commit);
  /// Calls every callback.
  void Notify();

 private:
  class Handle;
  std::mutex mu_;
  uint64_t next_ = 0;                                    // guarded by mu_
  std::map<uint64_t, std::function<void()>> callbacks_;  // guarded by mu_
};

/// The writer thread's loop: waits under `mu` for `queue` to fill (or, when the options set a
/// retention limit, for the next retention pass, which `make_retention` appends to the queue
/// as an operation and may make due again at once through the time point it is given), lets
/// writes gather for the options' commit window once it has one, then commits everything
/// queued with `commit` outside the lock; returns once `stopping` is set and the queue is empty.
template <typename Op, typename MakeRetention, typename Commit>
void RunWriterLoop(std::mutex& mu, std::condition_variable& cv, std::vector<Op>& queue,
                   const bool& stopping, const StoreOptions& options, MakeRetention make_retention,
                   Commit commit) {
  using Clock = std::chrono::steady_clock;
  const bool retention = options.retention_max_age > absl::ZeroDuration() ||
                         options.retention_max_verdicts_per_node > 0;
  const auto interval = absl::ToChronoNanoseconds(options.retention_interval);
  const auto window = absl::ToChronoNanoseconds(options.commit_window);
  Clock::time_point next_retention = Clock::now() + interval;
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    auto ready = [&] { return stopping || !queue.empty(); };
    if (retention) {
      cv.wait_until(lock, next_retention, ready);
    } else {
      cv.wait(lock, ready);
    }
    if (queue.empty() && stopping) return;
    if (window > Clock::duration::zero() && !stopping) {
      // Lets the writes that follow this one join its commit. Sleeps rather than waits on
      // the queue: every enqueue would wake the writer otherwise.
      lock.unlock();
      std::this_thread::sleep_for(window);
      lock.lock();
    }
    if (retention && Clock::now() >= next_retention) {
      // Retention rides in the next transaction like any other write.
      next_retention = Clock::now() + interval;
      queue.push_back(make_retention(&next_retention));
    }
    std::vector<Op> ops;
    ops.swap(queue);
    lock.unlock();
    commit(ops);
    lock.lock();
  }
}

/// Rows retention deletes per table in one pass, so one pass never holds the writer long.
inline constexpr int kRetentionRowsPerPass = 2000;

}  // namespace vigil::verifier::store_internal
