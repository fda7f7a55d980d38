#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "verifier/result_sink.h"
#include "verifier/store/sqlite_util.h"
#include "verifier/store/store.h"
#include "verifier/store/store_internal.h"

namespace vigil::verifier {

/// The Store in one SQLite file (WAL). One writer thread owns the write connection and
/// commits everything queued in one transaction with synchronous=FULL (one fsync per
/// batch), then publishes to readers and runs the callbacks. Readers use their own
/// connection and only see committed transactions. The file may be shared with the node
/// registry's tables, whose writes then ride in the store's batches (Join). See
/// docs/store.md.
class SqliteStore final : public Store, public ResultSink {
 public:
  using Options = StoreOptions;
  using RetentionResult = verifier::RetentionResult;

  /// Opens or creates the database at `path` (file 0600 from the start, missing parent
  /// directories 0700), runs the pending schema migrations in one transaction (refusing a
  /// schema newer than this build knows), loads the node summaries (every node
  /// disconnected) and starts the writer.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                           Options options);
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path) {
    return Open(path, Options{});
  }

  /// Commits what is queued, stops the writer and closes the database.
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  /// The schema version this build writes.
  static int LatestSchemaVersion();

  /// Another writer of this database file whose writes ride in the store's transactions
  /// (Join): one connection and one commit for both, where two connections' commits would
  /// each cost an fsync and drop the other connection's page cache.
  class JoinedWriter {
   public:
    virtual ~JoinedWriter() = default;
    /// Runs on the store's writer thread inside each batch's transaction, on `db` (the
    /// store's writer connection), after the batch's own writes and in a savepoint of its
    /// own: an error undoes these writes alone and the batch commits.
    virtual absl::Status WriteIn(sqlite3* db) = 0;
    /// Follows every WriteIn once its transaction ended: OK when its writes committed, the
    /// error otherwise (WriteIn's, or the transaction's). Must not block.
    virtual void Committed(absl::Status status) = 0;
    /// No WriteIn follows: statements prepared on `db` must be finalized now. Runs on the
    /// writer thread (Join) or in the store's destructor once the writer stopped.
    virtual void Leave(sqlite3* db) = 0;
  };
  /// Joins `writer` to every batch from the next on, or with nullptr makes the one joined
  /// leave (its Leave called before this returns). Waits for the batch under way; `writer`
  /// must stay valid until it left.
  absl::Status Join(JoinedWriter* writer);
  /// Commits a batch soon even when no write is queued (so the joined writer's pending
  /// writes go out) and calls `done` with its result; "store: closing" once the store is
  /// being destroyed.
  void CommitSoon(DurableCallback done);

  // ResultSink: Record queues like RecordVerdict and logs a write that failed.
  void Record(const std::string& node_id, const v1::Evidence& evidence,
              const v1::Verdict& verdict) override;
  // ResultSink: RecordDurable is RecordVerdict.
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
  bool IsRevoked(const std::string& node_id) const override;
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
  // The statuses change detection compares with: the node's overall status and, per
  // workload_id, the workload's last status and name.
  struct NodeStatus {
    v1::TrustStatus status = v1::TRUST_STATUS_UNSPECIFIED;
    std::map<std::string, std::pair<v1::TrustStatus, std::string>> workloads;
  };
  using VerdictRecord = store_internal::VerdictRecord;
  // A node as readers see it: its summary (latest_verdict left empty) and the history row
  // of its latest verdict (0: none), which readers read from the database when asked. The
  // verdict's bytes are most of what a node would cost in memory, and every report replaces
  // them, so they are not kept here.
  struct CachedSummary {
    NodeResultSummary summary;
    int64_t latest_verdict_id = 0;
  };
  // A stored verdict as readers see it once its transaction committed.
  struct PublishedVerdict {
    std::string node_id;
    std::string hostname;
    int64_t verdict_id;  // its history row
    int64_t seen_unix_nano;
  };
  // What one transaction produced, published to readers only after it committed.
  struct Batch {
    std::map<std::string, NodeStatus> statuses;
    std::vector<PublishedVerdict> verdicts;
    std::vector<std::function<void()>> publish;  // run with mu_ held, after `verdicts`
    int64_t last_change_id = 0;
  };
  using Apply = std::function<absl::Status(Batch&)>;
  // One queued write: a verdict (the common case, held as bytes) or any other write.
  struct Op {
    Apply apply;  // unused for a verdict
    DurableCallback done;
    std::unique_ptr<VerdictRecord> verdict;
  };
  struct Statements;

  SqliteStore(sqlite::Db writer, sqlite::Db reader, Options options);
  absl::Status Load();
  void Enqueue(Op op);
  // Queues `apply` and waits until its transaction committed (or failed).
  absl::Status RunWriteThrough(Apply apply);
  void WriterLoop();
  void CommitBatch(std::vector<Op>& ops);
  // Writes the verdict of `r` and moves its bytes on to the batch's publish step.
  absl::Status ApplyVerdict(Batch& batch, VerdictRecord& r);
  // Appends one status change about `r`'s node; `change_id` gets its id.
  absl::Status InsertChange(const VerdictRecord& r, const std::string& workload_id,
                            const std::string& workload_name, v1::TrustStatus previous,
                            v1::TrustStatus current, int64_t appraised, int64_t* change_id);
  absl::StatusOr<RetentionResult> RetentionPass();
  CachedSummary& NodeLocked(const std::string& node_id);
  // `nodes` with their latest verdicts read from the history rows they name (on the reader
  // connection).
  std::vector<NodeResultSummary> WithLatestVerdicts(std::vector<CachedSummary> nodes) const;

  const Options options_;
  // Declared before the connections: outlives them (their commits report to it).
  std::shared_ptr<sqlite::WalCheckpointer> checkpointer_;
  sqlite::Db writer_db_;                           // the writer thread's (and Open's/destructor's)
  std::unique_ptr<Statements> statements_;         // on writer_db_
  std::map<std::string, NodeStatus> node_status_;  // the writer thread's
  JoinedWriter* joined_ = nullptr;                 // the writer thread's (Join)

  sqlite::Db reader_db_;  // guarded by reader_mu_
  mutable std::mutex reader_mu_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::vector<Op> queue_;                           // guarded by mu_
  std::map<std::string, CachedSummary> summaries_;  // guarded by mu_
  std::map<std::string, int> open_streams_;         // guarded by mu_
  int64_t last_change_id_ = 0;                      // guarded by mu_
  absl::Status write_error_;                        // guarded by mu_
  bool stopping_ = false;                           // guarded by mu_

  store_internal::Subscribers subscribers_;

  std::thread writer_;
};

}  // namespace vigil::verifier
