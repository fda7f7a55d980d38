#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/connection>
#include <pqxx/transaction_base>

#include "absl/status/statusor.h"
#include "verifier/result_sink.h"
#include "verifier/store/store.h"
#include "verifier/store/store_internal.h"

namespace vigil::verifier {

/// The Store in PostgreSQL, shared by every verifier replica that opens the same database.
///
/// Writes: one writer thread owns a connection and commits whatever is queued in one
/// transaction (group commit; each write in its own savepoint), then runs the durability
/// callbacks. When the server cannot be reached (or a commit's outcome is unknown) the
/// batch is retried with backoff (100 ms doubling to 5 s) until it commits, so no callback
/// reports a verdict durable that is not; the outage is logged once and its end once.
/// Write-through calls (policies, revocations, audit records) fail with UNAVAILABLE during
/// an outage instead of waiting.
///
/// Status changes get their ids inside a commit-ordered section: a transaction that
/// stores changes takes an advisory lock just before inserting them and holds it through
/// COMMIT, so change ids become visible in increasing order across replicas and a reader
/// resuming after cursor N never misses a change with a smaller id committed later. The
/// same transaction sends pg_notify('vigil_verdict_changes'); a listener thread with a
/// connection of its own LISTENs and runs the Subscribe callbacks, so watchers on every
/// replica wake for every replica's commits.
///
/// Reads go to PostgreSQL on a reader connection. ListNodes and FindNode fall back to what
/// this replica last read or committed when the server is unreachable; the other reads
/// return UNAVAILABLE then. A node is connected while this replica has a stream of it
/// open, or another live replica's writer connection recorded one (node_streams joined
/// with pg_stat_activity, so a killed replica's streams stop counting at once).
class PostgresStore final : public Store, public ResultSink {
 public:
  using Options = StoreOptions;

  /// Connects to `url` (a libpq URL), applies the pending schema migrations under an
  /// advisory lock and starts the writer and the listener. UNAVAILABLE naming host, port and
  /// database (never the password) when the server cannot be reached.
  static absl::StatusOr<std::unique_ptr<PostgresStore>> Open(const std::string& url,
                                                             Options options);
  static absl::StatusOr<std::unique_ptr<PostgresStore>> Open(const std::string& url) {
    return Open(url, Options{});
  }

  /// Commits what is queued (giving up on writes still waiting for an unreachable server:
  /// their callbacks get UNAVAILABLE), stops the threads and closes the connections.
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // ResultSink
  void Record(const std::string& node_id, const v1::Evidence& evidence,
              const v1::Verdict& verdict) override;
  void RecordDurable(const std::string& node_id, const v1::Evidence& evidence,
                     const v1::Verdict& verdict,
                     std::function<void(absl::Status)> on_durable) override {
    RecordVerdict(node_id, evidence, verdict, std::move(on_durable));
  }

  // Store
  void RecordVerdict(const std::string& node_id, const v1::Evidence& evidence,
                     const v1::Verdict& verdict, DurableCallback on_durable) override;
  void SetConnected(const std::string& node_id, bool connected) override;
  std::vector<NodeResultSummary> ListNodes() const override;
  std::optional<NodeResultSummary> FindNode(const std::string& node_id) const override;
  std::vector<NodeName> NodeNames() const override;
  absl::StatusOr<LatestResult> Latest(const std::string& node_id) const override;
  absl::StatusOr<VerdictPage> ListVerdicts(const VerdictQuery& query) const override;
  absl::StatusOr<ChangesPage> ChangesAfter(const std::string& cursor, const std::string& node_id,
                                           size_t limit) const override;
  std::string LatestCursor() const override;
  std::unique_ptr<Subscription> Subscribe(std::function<void()> on_commit) override;
  absl::StatusOr<v1::PolicyInfo> PutPolicy(const v1::PolicyInfo& policy) override;
  absl::StatusOr<std::vector<v1::PolicyInfo>> ListPolicies() const override;
  absl::StatusOr<std::vector<v1::PolicyInfo>> PolicyRevisions(
      const std::string& name) const override;
  absl::Status RevokeNode(const std::string& node_id, const std::string& actor,
                          const std::string& reason) override;
  absl::Status ClearRevocation(const std::string& node_id) override;
  absl::Status AppendAudit(const v1::AuditRecord& record) override;
  absl::StatusOr<AuditPage> ListAudit(uint32_t page_size,
                                      const std::string& page_token) const override;
  absl::Status Flush() override;
  absl::StatusOr<RetentionResult> ApplyRetention() override;

 private:
  struct Change {
    std::string node_id, workload_id, workload_name;
    v1::TrustStatus previous, current;
    int64_t appraised_unix_nano;
    std::string verdict_bytes;
  };
  // What one transaction produced, published only after it committed.
  struct Batch {
    std::vector<Change> changes;
    std::vector<std::function<void()>> publish;  // run with mu_ held
  };
  using Apply = std::function<absl::Status(pqxx::transaction_base&, Batch&)>;
  struct Op {
    Apply apply;
    DurableCallback done;
    // Retried across an outage until it commits; otherwise failed with UNAVAILABLE.
    bool retry = true;
  };
  class Listener;

  PostgresStore(std::string url, Options options);
  void Enqueue(Op op);
  absl::Status RunWriteThrough(Apply apply);
  void WriterLoop();
  // Commits `ops` (retrying what may be retried while the server is unreachable).
  void CommitWithRetry(std::vector<Op>& ops);
  // One attempt; false when the attempt failed transiently (nothing was reported).
  bool TryCommit(std::vector<Op>& ops, absl::Status* transient);
  absl::Status ApplyVerdict(pqxx::transaction_base& tx, Batch& batch,
                            const store_internal::VerdictRecord& r);
  absl::StatusOr<RetentionResult> RetentionPass(pqxx::transaction_base& tx);
  void ListenLoop();
  // Runs `body` with the reader connection (reconnecting when it was lost).
  template <typename T, typename F>
  absl::StatusOr<T> Read(const char* what, F&& body) const;
  std::vector<NodeResultSummary> MergeLocal(std::map<std::string, NodeResultSummary> nodes) const;
  void CacheNodes(std::vector<store_internal::CachedNode> nodes, bool complete) const;

  const std::string url_;
  const Options options_;

  std::unique_ptr<pqxx::connection> writer_conn_;  // the writer thread's
  std::atomic<int> writer_pid_{0};                 // its backend pid (0: none)

  mutable std::mutex reader_mu_;
  mutable std::unique_ptr<pqxx::connection> reader_conn_;  // guarded by reader_mu_

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::vector<Op> queue_;                                             // guarded by mu_
  std::map<std::string, int> open_streams_;                           // guarded by mu_
  std::map<std::string, int64_t> local_seen_;                         // guarded by mu_
  mutable std::map<std::string, store_internal::CachedNode> cached_;  // guarded by mu_
  mutable int64_t last_change_id_ = 0;                                // guarded by mu_
  absl::Status write_error_;                                          // guarded by mu_
  bool stopping_ = false;                                             // guarded by mu_
  bool outage_ = false;         // guarded by mu_: the writer is retrying a batch
  bool streams_dirty_ = false;  // guarded by mu_: rewrite node_streams after a reconnect

  store_internal::Subscribers subscribers_;

  int wake_fd_ = -1;  // an eventfd that stops the listener
  std::thread writer_;
  std::thread listener_;
};

}  // namespace vigil::verifier
