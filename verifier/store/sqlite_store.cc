#include "verifier/store/sqlite_store.h"

#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "verifier/store/sqlite_schema.h"
#include "verifier/store/store_internal.h"
#include "verifier/store/tokens.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {

using sqlite::BindBlob;
using sqlite::BindText;
using sqlite::ColumnBytes;
using sqlite::Exec;
using sqlite::Prepare;
using sqlite::Run;
using sqlite::Stmt;

using store_internal::kRetentionRowsPerPass;
using store_internal::NowUnixNanos;

// The writer's statements, prepared once.
struct SqliteStore::Statements {
  Stmt begin, savepoint, release, rollback_to, commit, rollback;
  Stmt insert_verdict, insert_workload, upsert_node_verdict, upsert_workload_status, insert_change,
      touch_node, set_connected;

  static absl::StatusOr<std::unique_ptr<Statements>> Prepare(sqlite3* db) {
    auto s = std::make_unique<Statements>();
    // The batch's transaction and per-write savepoints, prepared like the writes themselves:
    // they run for every write, and SQL text compiled per call costs more than the write.
    ASSIGN_OR_RETURN(s->begin, sqlite::Prepare(db, "BEGIN IMMEDIATE", true));
    ASSIGN_OR_RETURN(s->savepoint, sqlite::Prepare(db, "SAVEPOINT op", true));
    ASSIGN_OR_RETURN(s->release, sqlite::Prepare(db, "RELEASE op", true));
    ASSIGN_OR_RETURN(s->rollback_to, sqlite::Prepare(db, "ROLLBACK TO op", true));
    ASSIGN_OR_RETURN(s->commit, sqlite::Prepare(db, "COMMIT", true));
    ASSIGN_OR_RETURN(s->rollback, sqlite::Prepare(db, "ROLLBACK", true));
    ASSIGN_OR_RETURN(s->insert_verdict,
                     sqlite::Prepare(db,
                                     "INSERT INTO verdicts (node_id, verdict, appraised_unix_nano, "
                                     "status, evidence_sha256, policy_digest) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                     true));
    ASSIGN_OR_RETURN(s->insert_workload,
                     sqlite::Prepare(db,
                                     "INSERT OR IGNORE INTO verdict_workloads (verdict_id, "
                                     "workload_id, name, status) VALUES (?1, ?2, ?3, ?4)",
                                     true));
    ASSIGN_OR_RETURN(s->upsert_node_verdict,
                     sqlite::Prepare(db,
                                     "INSERT INTO nodes (node_id, hostname, evidence, "
                                     "last_seen_unix_nano, evidence_sha256, latest_verdict_id) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (node_id) "
                                     "DO UPDATE SET hostname = excluded.hostname, evidence = "
                                     "excluded.evidence, last_seen_unix_nano = "
                                     "excluded.last_seen_unix_nano, evidence_sha256 = "
                                     "excluded.evidence_sha256, latest_verdict_id = "
                                     "excluded.latest_verdict_id",
                                     true));
    ASSIGN_OR_RETURN(s->upsert_workload_status,
                     sqlite::Prepare(db,
                                     "INSERT OR REPLACE INTO workload_status (node_id, "
                                     "workload_id, name, status) VALUES (?1, ?2, ?3, ?4)",
                                     true));
    ASSIGN_OR_RETURN(s->insert_change,
                     sqlite::Prepare(db,
                                     "INSERT INTO verdict_changes (node_id, workload_id, "
                                     "workload_name, previous_status, status, appraised_unix_nano, "
                                     "verdict) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                     true));
    ASSIGN_OR_RETURN(s->touch_node,
                     sqlite::Prepare(db,
                                     "INSERT INTO nodes (node_id, last_seen_unix_nano) VALUES "
                                     "(?1, ?2) ON CONFLICT (node_id) DO UPDATE SET "
                                     "last_seen_unix_nano = MAX(last_seen_unix_nano, "
                                     "excluded.last_seen_unix_nano)",
                                     true));
    ASSIGN_OR_RETURN(s->set_connected, sqlite::Prepare(db,
                                                       "UPDATE nodes SET connected = ?2 WHERE "
                                                       "node_id = ?1",
                                                       true));
    return s;
  }
};

int SqliteStore::LatestSchemaVersion() { return sqlite::kStoreSchemaVersion; }

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                               Options options) {
  if (path.empty() || path == ":memory:") {
    return absl::InvalidArgumentError("store: a database file path is required");
  }
  sqlite::OpenOptions open_options;
  open_options.create_parent_dirs = true;
  ASSIGN_OR_RETURN(sqlite::Db writer, sqlite::OpenPrivate(path, open_options));
  // synchronous=FULL: the commit that acknowledges a batch is on stable storage when COMMIT
  // returns. Checkpoints run on the file's checkpointer, not in these commits.
  ASSIGN_OR_RETURN(std::shared_ptr<sqlite::WalCheckpointer> checkpointer,
                   sqlite::MakeDurableWriter(writer.get(), path));
  RETURN_IF_ERROR(Exec(writer.get(), "PRAGMA foreign_keys=ON;"));
  RETURN_IF_ERROR(sqlite::MigrateStoreSchema(writer.get()));
  RETURN_IF_ERROR(Exec(writer.get(), "UPDATE nodes SET connected = 0"));
  ASSIGN_OR_RETURN(sqlite::Db reader, sqlite::OpenPrivate(path, open_options));
  RETURN_IF_ERROR(Exec(reader.get(), "PRAGMA query_only=ON;"));
  std::unique_ptr<SqliteStore> store(
      new SqliteStore(std::move(writer), std::move(reader), options));
  store->checkpointer_ = std::move(checkpointer);
  ASSIGN_OR_RETURN(store->statements_, Statements::Prepare(store->writer_db_.get()));
  RETURN_IF_ERROR(store->Load());
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

SqliteStore::SqliteStore(sqlite::Db writer, sqlite::Db reader, Options options)
    : options_(options), writer_db_(std::move(writer)), reader_db_(std::move(reader)) {}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (joined_ != nullptr) joined_->Leave(writer_db_.get());
  statements_.reset();
}

absl::Status SqliteStore::Load() {
  sqlite3* db = writer_db_.get();
  // The node's latest verdict is its history row (schema version 3 stores it once).
  ASSIGN_OR_RETURN(Stmt nodes, Prepare(db,
                                       "SELECT n.node_id, n.hostname, v.verdict, "
                                       "n.last_seen_unix_nano, n.revoked, n.revoked_by, "
                                       "n.revoked_unix_nano, n.revoked_reason, v.status, v.id "
                                       "FROM nodes n LEFT JOIN verdicts v ON v.id = "
                                       "n.latest_verdict_id"));
  int rc;
  while ((rc = sqlite3_step(nodes.get())) == SQLITE_ROW) {
    CachedSummary node;
    NodeResultSummary& s = node.summary;
    s.node_id = ColumnBytes(nodes.get(), 0);
    s.hostname = ColumnBytes(nodes.get(), 1);
    s.last_seen_unix_nano = sqlite3_column_int64(nodes.get(), 3);
    s.revoked = sqlite3_column_int(nodes.get(), 4) != 0;
    s.revoked_by = ColumnBytes(nodes.get(), 5);
    s.revoked_unix_nano = sqlite3_column_int64(nodes.get(), 6);
    s.revoked_reason = ColumnBytes(nodes.get(), 7);
    // Checked once here; readers read it again from its row when asked.
    if (v1::Verdict check;
        !store_internal::DecodeStoredVerdict(sqlite::ColumnView(nodes.get(), 2), check)) {
      return absl::DataLossError(
          absl::StrCat("store: node ", s.node_id, ": stored verdict does not parse"));
    }
    node.latest_verdict_id = sqlite3_column_int64(nodes.get(), 9);
    const std::string node_id = s.node_id;
    node_status_[node_id].status = static_cast<v1::TrustStatus>(sqlite3_column_int(nodes.get(), 8));
    summaries_[node_id] = std::move(node);
  }
  if (rc != SQLITE_DONE) return sqlite::Error(db, "store: loading nodes");
  ASSIGN_OR_RETURN(Stmt workloads,
                   Prepare(db, "SELECT node_id, workload_id, name, status FROM workload_status"));
  while ((rc = sqlite3_step(workloads.get())) == SQLITE_ROW) {
    node_status_[ColumnBytes(workloads.get(), 0)].workloads[ColumnBytes(workloads.get(), 1)] = {
        static_cast<v1::TrustStatus>(sqlite3_column_int(workloads.get(), 3)),
        ColumnBytes(workloads.get(), 2)};
  }
  if (rc != SQLITE_DONE) return sqlite::Error(db, "store: loading workload statuses");
  ASSIGN_OR_RETURN(Stmt seq, Prepare(db,
                                     "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE "
                                     "name = 'verdict_changes'), 0)"));
  if (sqlite3_step(seq.get()) != SQLITE_ROW) return sqlite::Error(db, "store: reading cursor");
  last_change_id_ = sqlite3_column_int64(seq.get(), 0);
  return absl::OkStatus();
}

SqliteStore::CachedSummary& SqliteStore::NodeLocked(const std::string& node_id) {
  CachedSummary& n = summaries_[node_id];
  n.summary.node_id = node_id;
  return n;
}

void SqliteStore::Enqueue(Op op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(op));
      op.done = nullptr;
    }
  }
  // A store being destroyed takes no more writes.
  if (op.done) op.done(absl::UnavailableError("store: closing"));
  work_cv_.notify_one();
}

absl::Status SqliteStore::Join(JoinedWriter* writer) {
  // On the writer thread, between two joined writes: the batch that runs this skips the
  // joined write when it leaves, and starts with it from the next batch when it joins.
  return RunWriteThrough([this, writer](Batch&) -> absl::Status {
    if (joined_ != nullptr && joined_ != writer) joined_->Leave(writer_db_.get());
    joined_ = writer;
    return absl::OkStatus();
  });
}

void SqliteStore::CommitSoon(DurableCallback done) {
  Enqueue(Op{[](Batch&) { return absl::OkStatus(); }, std::move(done), nullptr});
}

absl::Status SqliteStore::RunWriteThrough(Apply apply) {
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  Enqueue(
      Op{std::move(apply), [done](absl::Status st) { done->set_value(std::move(st)); }, nullptr});
  return result.get();
}

void SqliteStore::Record(const std::string& node_id, const v1::Evidence& evidence,
                         const v1::Verdict& verdict) {
  RecordVerdict(node_id, evidence, verdict, [node_id](absl::Status st) {
    if (!st.ok()) spdlog::error("store: verdict of node {} not stored: {}", node_id, st.ToString());
  });
}

void SqliteStore::RecordVerdict(const std::string& node_id, const v1::Evidence& evidence,
                                const v1::Verdict& verdict, DurableCallback on_durable) {
  // Serialized here, on the caller's thread, so the writer only writes. The writer applies
  // an op once and moves the record's bytes on from there.
  Op op;
  op.verdict = std::make_unique<VerdictRecord>(
      store_internal::MakeVerdictRecord(node_id, evidence, verdict));
  op.done = std::move(on_durable);
  Enqueue(std::move(op));
}

void SqliteStore::SetConnected(const std::string& node_id, bool connected) {
  const int64_t now = NowUnixNanos();
  bool any_open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A node may have several streams (a reconnect racing the old stream's end): it is
    // connected while any of them is open.
    int& open = open_streams_[node_id];
    open = connected ? open + 1 : std::max(0, open - 1);
    any_open = open > 0;
    if (!any_open) open_streams_.erase(node_id);
    NodeResultSummary& s = NodeLocked(node_id).summary;
    s.connected = any_open;
    s.last_seen_unix_nano = std::max(s.last_seen_unix_nano, now);
  }
  Enqueue(Op{[this, node_id, any_open, now](Batch&) -> absl::Status {
               sqlite3* db = writer_db_.get();
               BindText(statements_->touch_node.get(), 1, node_id);
               sqlite3_bind_int64(statements_->touch_node.get(), 2, now);
               RETURN_IF_ERROR(Run(db, statements_->touch_node.get(), "store: node seen"));
               BindText(statements_->set_connected.get(), 1, node_id);
               sqlite3_bind_int(statements_->set_connected.get(), 2, any_open ? 1 : 0);
               return Run(db, statements_->set_connected.get(), "store: node connected");
             },
             nullptr, nullptr});
}

absl::Status SqliteStore::ApplyVerdict(Batch& batch, VerdictRecord& r) {
  sqlite3* db = writer_db_.get();
  Statements& w = *statements_;
  const int64_t now = NowUnixNanos();
  const int64_t appraised = r.appraised_unix_nano != 0 ? r.appraised_unix_nano : now;

  BindText(w.insert_verdict.get(), 1, r.node_id);
  BindBlob(w.insert_verdict.get(), 2, r.verdict);
  sqlite3_bind_int64(w.insert_verdict.get(), 3, appraised);
  sqlite3_bind_int(w.insert_verdict.get(), 4, r.status);
  BindText(w.insert_verdict.get(), 5, r.evidence_sha256);
  BindText(w.insert_verdict.get(), 6, r.policy_digest);
  RETURN_IF_ERROR(Run(db, w.insert_verdict.get(), "store: insert verdict"));
  const int64_t verdict_id = sqlite3_last_insert_rowid(db);
  for (const VerdictRecord::Workload& wv : r.workloads) {
    sqlite3_bind_int64(w.insert_workload.get(), 1, verdict_id);
    BindText(w.insert_workload.get(), 2, wv.workload_id);
    BindText(w.insert_workload.get(), 3, wv.name);
    sqlite3_bind_int(w.insert_workload.get(), 4, wv.status);
    RETURN_IF_ERROR(Run(db, w.insert_workload.get(), "store: insert workload verdict"));
  }
  // A spooled batch's verdict is history: what the node observed during an outage must not
  // replace what it reports now (admission and status decide on the latest).
  if (r.from_spool) return absl::OkStatus();
  // The node's row points at the history row rather than holding the verdict again.
  BindText(w.upsert_node_verdict.get(), 1, r.node_id);
  BindText(w.upsert_node_verdict.get(), 2, r.hostname);
  BindBlob(w.upsert_node_verdict.get(), 3, r.evidence);
  sqlite3_bind_int64(w.upsert_node_verdict.get(), 4, now);
  BindText(w.upsert_node_verdict.get(), 5, r.evidence_sha256);
  sqlite3_bind_int64(w.upsert_node_verdict.get(), 6, verdict_id);
  RETURN_IF_ERROR(Run(db, w.upsert_node_verdict.get(), "store: update node"));

  // Status changes against what the node had before this verdict (earlier in this batch,
  // else committed); read only until every write succeeded.
  static const NodeStatus kNone;
  const NodeStatus* before = &kNone;
  if (auto it = batch.statuses.find(r.node_id); it != batch.statuses.end()) {
    before = &it->second;
  } else if (auto it = node_status_.find(r.node_id); it != node_status_.end()) {
    before = &it->second;
  }
  const bool overall_changed = before->status != r.status;
  int64_t last_change_id = 0;
  if (overall_changed) {
    RETURN_IF_ERROR(InsertChange(r, "", "", before->status, r.status, appraised, &last_change_id));
  }
  // Workloads whose stored status (or name) this verdict changes: their indexes in r.workloads.
  std::vector<size_t> updated;
  for (size_t i = 0; i < r.workloads.size(); ++i) {
    const VerdictRecord::Workload& wv = r.workloads[i];
    auto it = before->workloads.find(wv.workload_id);
    const bool known = it != before->workloads.end();
    const v1::TrustStatus previous = known ? it->second.first : v1::TRUST_STATUS_UNSPECIFIED;
    if (previous != wv.status) {
      RETURN_IF_ERROR(InsertChange(r, wv.workload_id, wv.name, previous, wv.status, appraised,
                                   &last_change_id));
    }
    if (!known || previous != wv.status || it->second.second != wv.name) {
      BindText(w.upsert_workload_status.get(), 1, r.node_id);
      BindText(w.upsert_workload_status.get(), 2, wv.workload_id);
      BindText(w.upsert_workload_status.get(), 3, wv.name);
      sqlite3_bind_int(w.upsert_workload_status.get(), 4, wv.status);
      RETURN_IF_ERROR(Run(db, w.upsert_workload_status.get(), "store: workload status"));
      updated.push_back(i);
    }
  }

  // Everything written: hand the result to the batch (the node's statuses are copied from
  // the committed ones once per batch, and only when something in them changes).
  if (overall_changed || !updated.empty()) {
    auto [it, inserted] = batch.statuses.try_emplace(r.node_id);
    if (inserted && before != &kNone) it->second = *before;
    NodeStatus& after = it->second;
    after.status = r.status;
    for (size_t i : updated) {
      after.workloads[r.workloads[i].workload_id] = {r.workloads[i].status, r.workloads[i].name};
    }
  }
  if (last_change_id != 0) batch.last_change_id = last_change_id;
  // Published after the commit: readers then find the verdict by its history row.
  batch.verdicts.push_back({std::move(r.node_id), std::move(r.hostname), verdict_id, now});
  return absl::OkStatus();
}

absl::Status SqliteStore::InsertChange(const VerdictRecord& r, const std::string& workload_id,
                                       const std::string& workload_name, v1::TrustStatus previous,
                                       v1::TrustStatus current, int64_t appraised,
                                       int64_t* change_id) {
  sqlite3* db = writer_db_.get();
  sqlite3_stmt* s = statements_->insert_change.get();
  BindText(s, 1, r.node_id);
  BindText(s, 2, workload_id);
  BindText(s, 3, workload_name);
  sqlite3_bind_int(s, 4, previous);
  sqlite3_bind_int(s, 5, current);
  sqlite3_bind_int64(s, 6, appraised);
  BindBlob(s, 7, r.verdict);
  RETURN_IF_ERROR(Run(db, s, "store: insert status change"));
  *change_id = sqlite3_last_insert_rowid(db);
  return absl::OkStatus();
}

absl::StatusOr<SqliteStore::RetentionResult> SqliteStore::RetentionPass() {
  sqlite3* db = writer_db_.get();
  RetentionResult result;
  if (options_.retention_max_age > absl::ZeroDuration()) {
    const int64_t cutoff = NowUnixNanos() - absl::ToInt64Nanoseconds(options_.retention_max_age);
    // A node's latest verdict stays whatever its age: it is what the node is judged by.
    ASSIGN_OR_RETURN(Stmt old_verdicts,
                     Prepare(db,
                             "DELETE FROM verdicts WHERE id IN (SELECT id FROM verdicts WHERE "
                             "appraised_unix_nano < ?1 AND id NOT IN (SELECT latest_verdict_id "
                             "FROM nodes WHERE latest_verdict_id IS NOT NULL) LIMIT ?2)"));
    sqlite3_bind_int64(old_verdicts.get(), 1, cutoff);
    sqlite3_bind_int(old_verdicts.get(), 2, kRetentionRowsPerPass);
    RETURN_IF_ERROR(Run(db, old_verdicts.get(), "store: retention of verdicts"));
    result.verdicts += static_cast<size_t>(sqlite3_changes(db));

    // Changes go oldest first and stop at the first one inside the window, so the kept log
    // is always a suffix: a watcher behind the pruned prefix is told (OUT_OF_RANGE), and no
    // change a watcher can still resume to is ever removed.
    ASSIGN_OR_RETURN(Stmt oldest, Prepare(db,
                                          "SELECT id, appraised_unix_nano FROM verdict_changes "
                                          "ORDER BY id LIMIT ?1"));
    sqlite3_bind_int(oldest.get(), 1, kRetentionRowsPerPass);
    int64_t through = 0;
    int rc;
    while ((rc = sqlite3_step(oldest.get())) == SQLITE_ROW) {
      if (sqlite3_column_int64(oldest.get(), 1) >= cutoff) break;
      through = sqlite3_column_int64(oldest.get(), 0);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return sqlite::Error(db, "store: retention of changes");
    }
    oldest.reset();
    if (through != 0) {
      ASSIGN_OR_RETURN(Stmt prune, Prepare(db, "DELETE FROM verdict_changes WHERE id <= ?1"));
      sqlite3_bind_int64(prune.get(), 1, through);
      RETURN_IF_ERROR(Run(db, prune.get(), "store: retention of changes"));
      result.changes += static_cast<size_t>(sqlite3_changes(db));
      ASSIGN_OR_RETURN(Stmt mark, Prepare(db,
                                          "UPDATE store_meta SET value = MAX(value, ?1) WHERE "
                                          "key = 'changes_pruned_through'"));
      sqlite3_bind_int64(mark.get(), 1, through);
      RETURN_IF_ERROR(Run(db, mark.get(), "store: retention of changes"));
    }
  }
  if (options_.retention_max_verdicts_per_node > 0) {
    ASSIGN_OR_RETURN(Stmt nodes, Prepare(db, "SELECT node_id FROM nodes"));
    ASSIGN_OR_RETURN(Stmt excess,
                     Prepare(db,
                             "DELETE FROM verdicts WHERE id IN (SELECT id FROM verdicts WHERE "
                             "node_id = ?1 ORDER BY appraised_unix_nano DESC, id DESC LIMIT ?3 "
                             "OFFSET ?2) AND id IS NOT (SELECT latest_verdict_id FROM nodes "
                             "WHERE node_id = ?1)"));
    int rc;
    while ((rc = sqlite3_step(nodes.get())) == SQLITE_ROW &&
           result.verdicts < static_cast<size_t>(kRetentionRowsPerPass)) {
      BindText(excess.get(), 1, ColumnBytes(nodes.get(), 0));
      sqlite3_bind_int64(excess.get(), 2,
                         static_cast<int64_t>(options_.retention_max_verdicts_per_node));
      sqlite3_bind_int(excess.get(), 3, kRetentionRowsPerPass);
      RETURN_IF_ERROR(Run(db, excess.get(), "store: retention per node"));
      result.verdicts += static_cast<size_t>(sqlite3_changes(db));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqlite::Error(db, "store: listing nodes");
  }
  return result;
}

absl::StatusOr<SqliteStore::RetentionResult> SqliteStore::ApplyRetention() {
  return store_internal::RetainUntilDone([this]() -> absl::StatusOr<RetentionResult> {
    RetentionResult pass;
    RETURN_IF_ERROR(RunWriteThrough([this, &pass](Batch&) -> absl::Status {
      ASSIGN_OR_RETURN(pass, RetentionPass());
      return absl::OkStatus();
    }));
    return pass;
  });
}

void SqliteStore::WriterLoop() {
  store_internal::RunWriterLoop(
      mu_, work_cv_, queue_, stopping_, options_,
      [this](std::chrono::steady_clock::time_point* next_retention) {
        return Op{[this, next_retention](Batch&) -> absl::Status {
                    ASSIGN_OR_RETURN(RetentionResult r, RetentionPass());
                    // More is due: come back soon, after the writes waiting now.
                    if (r.verdicts + r.changes >= static_cast<size_t>(kRetentionRowsPerPass)) {
                      *next_retention = std::chrono::steady_clock::now();
                    }
                    return absl::OkStatus();
                  },
                  nullptr, nullptr};
      },
      [this](std::vector<Op>& ops) { CommitBatch(ops); });
}

void SqliteStore::CommitBatch(std::vector<Op>& ops) {
  sqlite3* db = writer_db_.get();
  Statements& w = *statements_;
  Batch batch;
  batch.verdicts.reserve(ops.size());
  std::vector<absl::Status> results(ops.size());
  JoinedWriter* joined = nullptr;  // when its write ran in this batch
  absl::Status joined_result;
  std::unique_lock<sqlite::WriteTurns> turn = sqlite::WriteTurnOf(checkpointer_.get());
  // Runs `write` in a savepoint of its own, so an error of its undoes it alone; `*result`
  // gets that error. What it returns is the transaction's: an error there ends the batch.
  auto in_savepoint = [&](auto&& write, absl::Status* result) -> absl::Status {
    RETURN_IF_ERROR(Run(db, w.savepoint.get(), "store: savepoint"));
    *result = write();
    if (!result->ok()) {
      RETURN_IF_ERROR(Run(db, w.rollback_to.get(), "store: rollback to savepoint"));
    }
    return Run(db, w.release.get(), "store: release savepoint");
  };
  absl::Status st = Run(db, w.begin.get(), "store: begin");
  if (st.ok()) {
    // Each write on its own: one that fails is reported to its caller; the rest of the batch
    // commits.
    for (size_t i = 0; i < ops.size() && st.ok(); ++i) {
      st = in_savepoint(
          [&] {
            return ops[i].verdict != nullptr ? ApplyVerdict(batch, *ops[i].verdict)
                                             : ops[i].apply(batch);
          },
          &results[i]);
    }
    // Then the joined writer's writes, on their own the same way.
    if (st.ok() && joined_ != nullptr) {
      st = in_savepoint(
          [&] {
            joined = joined_;
            return joined->WriteIn(db);
          },
          &joined_result);
    }
    if (st.ok()) st = Run(db, w.commit.get(), "store: commit");
    if (!st.ok()) Run(db, w.rollback.get(), "store: rollback").IgnoreError();
  }
  if (turn.owns_lock()) turn.unlock();
  if (joined != nullptr) joined->Committed(st.ok() ? joined_result : st);
  const absl::Status first_error = store_internal::SettleResults(st, results);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (st.ok()) {
      for (PublishedVerdict& v : batch.verdicts) {
        CachedSummary& n = NodeLocked(v.node_id);
        n.summary.hostname = std::move(v.hostname);
        n.summary.last_seen_unix_nano = std::max(n.summary.last_seen_unix_nano, v.seen_unix_nano);
        n.latest_verdict_id = v.verdict_id;
      }
      for (const std::function<void()>& publish : batch.publish) publish();
      if (batch.last_change_id != 0) last_change_id_ = batch.last_change_id;
    }
    if (!first_error.ok() && write_error_.ok()) write_error_ = first_error;
  }
  if (st.ok()) {
    for (auto& [node_id, status] : batch.statuses) node_status_[node_id] = std::move(status);
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].done) ops[i].done(results[i]);
  }
  if (st.ok() && batch.last_change_id != 0) subscribers_.Notify();
}

std::unique_ptr<Subscription> SqliteStore::Subscribe(std::function<void()> on_commit) {
  return subscribers_.Add(std::move(on_commit));
}

absl::Status SqliteStore::Flush() {
  absl::Status st = RunWriteThrough([](Batch&) { return absl::OkStatus(); });
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status earlier = std::exchange(write_error_, absl::OkStatus());
  return earlier.ok() ? st : earlier;
}

absl::StatusOr<v1::PolicyInfo> SqliteStore::PutPolicy(const v1::PolicyInfo& policy) {
  ASSIGN_OR_RETURN(v1::PolicyInfo stored, store_internal::PolicyToStore(policy));
  RETURN_IF_ERROR(RunWriteThrough([this, &stored](Batch&) -> absl::Status {
    sqlite3* db = writer_db_.get();
    ASSIGN_OR_RETURN(Stmt current, Prepare(db, "SELECT revision FROM policies WHERE name = ?1"));
    BindText(current.get(), 1, stored.name());
    const int rc = sqlite3_step(current.get());
    if (rc == SQLITE_ROW) {
      const int64_t revision = sqlite3_column_int64(current.get(), 0);
      if (static_cast<int64_t>(stored.revision()) <= revision) {
        return absl::FailedPreconditionError(
            absl::StrCat("policy ", stored.name(), ": revision ", stored.revision(),
                         " is not greater than the stored revision ", revision));
      }
    } else if (rc != SQLITE_DONE) {
      return sqlite::Error(db, "store: reading the policy");
    }
    ASSIGN_OR_RETURN(Stmt insert, Prepare(db,
                                          "INSERT INTO policy_revisions (name, revision, sha256, "
                                          "updated_unix_nano, updated_by, yaml) VALUES (?1, ?2, "
                                          "?3, ?4, ?5, ?6)"));
    BindText(insert.get(), 1, stored.name());
    sqlite3_bind_int64(insert.get(), 2, static_cast<int64_t>(stored.revision()));
    BindText(insert.get(), 3, stored.sha256());
    sqlite3_bind_int64(insert.get(), 4, stored.updated_unix_nano());
    BindText(insert.get(), 5, stored.updated_by());
    BindText(insert.get(), 6, stored.yaml());
    RETURN_IF_ERROR(Run(db, insert.get(), "store: insert policy revision"));
    ASSIGN_OR_RETURN(Stmt head, Prepare(db,
                                        "INSERT INTO policies (name, revision) VALUES (?1, ?2) "
                                        "ON CONFLICT (name) DO UPDATE SET revision = "
                                        "excluded.revision"));
    BindText(head.get(), 1, stored.name());
    sqlite3_bind_int64(head.get(), 2, static_cast<int64_t>(stored.revision()));
    return Run(db, head.get(), "store: update policy");
  }));
  return stored;
}

absl::Status SqliteStore::RevokeNode(const std::string& node_id, const std::string& actor,
                                     const std::string& reason) {
  if (node_id.empty()) return absl::InvalidArgumentError("node_id is required");
  const int64_t now = NowUnixNanos();
  return RunWriteThrough([&](Batch& batch) -> absl::Status {
    sqlite3* db = writer_db_.get();
    ASSIGN_OR_RETURN(Stmt s, Prepare(db,
                                     "INSERT INTO nodes (node_id, revoked, revoked_by, "
                                     "revoked_unix_nano, revoked_reason) VALUES (?1, 1, ?2, ?3, "
                                     "?4) ON CONFLICT (node_id) DO UPDATE SET revoked = 1, "
                                     "revoked_by = excluded.revoked_by, revoked_unix_nano = "
                                     "excluded.revoked_unix_nano, revoked_reason = "
                                     "excluded.revoked_reason"));
    BindText(s.get(), 1, node_id);
    BindText(s.get(), 2, actor);
    sqlite3_bind_int64(s.get(), 3, now);
    BindText(s.get(), 4, reason);
    RETURN_IF_ERROR(Run(db, s.get(), "store: revoke node"));
    batch.publish.push_back([this, node_id, actor, reason, now] {
      NodeResultSummary& summary = NodeLocked(node_id).summary;
      summary.revoked = true;
      summary.revoked_by = actor;
      summary.revoked_unix_nano = now;
      summary.revoked_reason = reason;
    });
    return absl::OkStatus();
  });
}

absl::Status SqliteStore::ClearRevocation(const std::string& node_id) {
  return RunWriteThrough([&](Batch& batch) -> absl::Status {
    sqlite3* db = writer_db_.get();
    ASSIGN_OR_RETURN(Stmt s, Prepare(db,
                                     "UPDATE nodes SET revoked = 0, revoked_by = '', "
                                     "revoked_unix_nano = 0, revoked_reason = '' WHERE "
                                     "node_id = ?1"));
    BindText(s.get(), 1, node_id);
    RETURN_IF_ERROR(Run(db, s.get(), "store: clear revocation"));
    batch.publish.push_back([this, node_id] {
      auto it = summaries_.find(node_id);
      if (it == summaries_.end()) return;
      NodeResultSummary& summary = it->second.summary;
      summary.revoked = false;
      summary.revoked_by.clear();
      summary.revoked_unix_nano = 0;
      summary.revoked_reason.clear();
    });
    return absl::OkStatus();
  });
}

absl::Status SqliteStore::AppendAudit(const v1::AuditRecord& record) {
  const int64_t time = record.time_unix_nano() != 0 ? record.time_unix_nano() : NowUnixNanos();
  return RunWriteThrough([&](Batch&) -> absl::Status {
    sqlite3* db = writer_db_.get();
    ASSIGN_OR_RETURN(Stmt s, Prepare(db,
                                     "INSERT INTO audit_log (time_unix_nano, actor, action, "
                                     "target, detail) VALUES (?1, ?2, ?3, ?4, ?5)"));
    sqlite3_bind_int64(s.get(), 1, time);
    BindText(s.get(), 2, record.actor());
    BindText(s.get(), 3, record.action());
    BindText(s.get(), 4, record.target());
    BindText(s.get(), 5, record.detail());
    return Run(db, s.get(), "store: append audit record");
  });
}

}  // namespace vigil::verifier
