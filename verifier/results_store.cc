#include "verifier/results_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kCreateSchema = R"sql(
CREATE TABLE IF NOT EXISTS results_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS results_latest (
  node_id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL DEFAULT '',
  evidence BLOB,
  verdict BLOB,
  last_seen_unix_nano INTEGER NOT NULL DEFAULT 0,
  connected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS results_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  node_id TEXT NOT NULL,
  verdict BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS results_history_by_node ON results_history (node_id, id);
)sql";

struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

absl::Status SqlError(sqlite3* db, std::string_view what) {
  return absl::InternalError(
      absl::StrCat("results store: ", std::string(what), ": ", sqlite3_errmsg(db)));
}

absl::Status Exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    absl::Status st = absl::InternalError(
        absl::StrCat("results store: ", message != nullptr ? message : "sqlite3_exec failed"));
    sqlite3_free(message);
    return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<Stmt> PrepareStmt(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    return SqlError(db, sql);
  }
  return Stmt(stmt);
}

void BindText(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void BindBlob(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
std::string ColumnBytes(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  return p == nullptr ? std::string()
                      : std::string(static_cast<const char*>(p), sqlite3_column_bytes(s, i));
}

absl::StatusOr<sqlite3*> OpenConnection(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status st = absl::UnavailableError(absl::StrCat(
        "results store: cannot open ", path, ": ", db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return st;
  }
  sqlite3_busy_timeout(db, 5000);
  absl::Status st = Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  if (!st.ok()) {
    sqlite3_close(db);
    return st;
  }
  return db;
}

// Creates the schema or checks that the existing one is ours, in one transaction.
absl::Status Migrate(sqlite3* db) {
  RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  auto rollback = [db](absl::Status st) {
    Exec(db, "ROLLBACK").IgnoreError();
    return st;
  };
  if (absl::Status st = Exec(db, kCreateSchema); !st.ok()) return rollback(st);
  absl::StatusOr<Stmt> select = PrepareStmt(db, "SELECT version FROM results_schema");
  if (!select.ok()) return rollback(select.status());
  int version = 0;
  if (sqlite3_step(select->get()) == SQLITE_ROW) version = sqlite3_column_int(select->get(), 0);
  select->reset();
  if (version > kSchemaVersion) {
    return rollback(absl::FailedPreconditionError(
        absl::StrCat("results store: schema version ", version, " is newer than this verifier's (",
                     kSchemaVersion, ")")));
  }
  if (version == 0) {
    const std::string insert =
        absl::StrCat("INSERT INTO results_schema (version) VALUES (", kSchemaVersion, ")");
    if (absl::Status st = Exec(db, insert.c_str()); !st.ok()) return rollback(st);
  }
  // Connections do not survive a verifier restart.
  if (absl::Status st = Exec(db, "UPDATE results_latest SET connected = 0"); !st.ok()) {
    return rollback(st);
  }
  return Exec(db, "COMMIT");
}

int64_t NowUnixNanos() { return absl::ToUnixNanos(absl::Now()); }

}  // namespace

// The writer's statements, prepared once and reused for every batch.
struct ResultsStore::WriterStatements {
  Stmt ensure, evidence, connected, seen, history, trim;

  static absl::StatusOr<std::unique_ptr<WriterStatements>> Prepare(sqlite3* db) {
    auto s = std::make_unique<WriterStatements>();
    ASSIGN_OR_RETURN(s->ensure, PrepareStmt(db,
                                            "INSERT INTO results_latest (node_id) VALUES (?1) "
                                            "ON CONFLICT (node_id) DO NOTHING"));
    ASSIGN_OR_RETURN(s->evidence, PrepareStmt(db,
                                              "UPDATE results_latest SET evidence = ?2, "
                                              "verdict = ?3, hostname = ?4 WHERE node_id = ?1"));
    ASSIGN_OR_RETURN(s->connected, PrepareStmt(db,
                                               "UPDATE results_latest SET connected = ?2 "
                                               "WHERE node_id = ?1"));
    ASSIGN_OR_RETURN(s->seen, PrepareStmt(db,
                                          "UPDATE results_latest SET last_seen_unix_nano = ?2 "
                                          "WHERE node_id = ?1"));
    ASSIGN_OR_RETURN(s->history, PrepareStmt(db,
                                             "INSERT INTO results_history (node_id, verdict) "
                                             "VALUES (?1, ?2)"));
    ASSIGN_OR_RETURN(s->trim, PrepareStmt(db,
                                          "DELETE FROM results_history WHERE node_id = ?1 AND "
                                          "id <= (SELECT id FROM results_history WHERE "
                                          "node_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)"));
    return s;
  }
};

absl::StatusOr<std::unique_ptr<ResultsStore>> ResultsStore::Open(const std::string& db_path,
                                                                 Options options) {
  if (db_path.empty()) return absl::InvalidArgumentError("results store: empty --db path");
  const std::filesystem::path parent = std::filesystem::path(db_path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("results store: ", parent.string(), ": ", ec.message()));
  }
  // Create the file 0600 ourselves; SQLite gives its -wal and -shm files the same mode.
  const int fd = ::open(db_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("results store: cannot create ", db_path, ": ", std::strerror(errno)));
  }
  ::close(fd);

  ASSIGN_OR_RETURN(sqlite3 * writer, OpenConnection(db_path));
  absl::StatusOr<sqlite3*> reader = OpenConnection(db_path);
  if (!reader.ok()) {
    sqlite3_close(writer);
    return reader.status();
  }
  std::unique_ptr<ResultsStore> store(new ResultsStore(writer, *reader, options));
  RETURN_IF_ERROR(Migrate(writer));
  RETURN_IF_ERROR(store->LoadSummaries());
  ASSIGN_OR_RETURN(store->statements_, WriterStatements::Prepare(writer));
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

ResultsStore::ResultsStore(sqlite3* writer, sqlite3* reader, Options options)
    : options_(options), writer_db_(writer), reader_db_(reader) {}

ResultsStore::~ResultsStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  statements_.reset();
  sqlite3_close_v2(reader_db_);
  sqlite3_close_v2(writer_db_);
}

absl::Status ResultsStore::LoadSummaries() {
  std::lock_guard<std::mutex> reader_lock(reader_mu_);
  ASSIGN_OR_RETURN(Stmt stmt, PrepareStmt(reader_db_,
                                          "SELECT node_id, hostname, verdict, last_seen_unix_nano "
                                          "FROM results_latest"));
  std::lock_guard<std::mutex> lock(mu_);
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    NodeResultSummary summary;
    summary.node_id = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    summary.hostname = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 1));
    if (!summary.latest_verdict.ParseFromString(ColumnBytes(stmt.get(), 2))) {
      return absl::DataLossError(
          absl::StrCat("results store: node ", summary.node_id, ": stored verdict does not parse"));
    }
    summary.last_seen_unix_nano = sqlite3_column_int64(stmt.get(), 3);
    summaries_[summary.node_id] = std::move(summary);
  }
  if (rc != SQLITE_DONE) return SqlError(reader_db_, "loading node summaries");
  return absl::OkStatus();
}

void ResultsStore::Record(const std::string& node_id, const v1::Evidence& evidence,
                          const v1::Verdict& verdict) {
  std::string evidence_bytes = evidence.SerializeAsString();
  std::string verdict_bytes = verdict.SerializeAsString();
  const int64_t now = NowUnixNanos();
  {
    std::lock_guard<std::mutex> lock(mu_);
    NodeResultSummary& summary = summaries_[node_id];
    summary.node_id = node_id;
    summary.latest_verdict = verdict;
    summary.last_seen_unix_nano = now;
    Pending& pending = pending_[node_id];
    pending.evidence = std::move(evidence_bytes);
    pending.verdict = verdict;
    pending.history.push_back(std::move(verdict_bytes));
    // A slow disk must not grow memory without bound: older verdicts than the history
    // keeps would be deleted on commit anyway.
    if (pending.history.size() > options_.history_per_node) {
      pending.history.erase(pending.history.begin());
    }
    pending.last_seen_unix_nano = now;
    ++enqueued_;
  }
  work_cv_.notify_one();
}

void ResultsStore::SetConnected(const std::string& node_id, bool connected) {
  const int64_t now = NowUnixNanos();
  {
    std::lock_guard<std::mutex> lock(mu_);
    NodeResultSummary& summary = summaries_[node_id];
    summary.node_id = node_id;
    summary.connected = connected;
    summary.last_seen_unix_nano = now;
    Pending& pending = pending_[node_id];
    pending.connected = connected;
    pending.last_seen_unix_nano = now;
    ++enqueued_;
  }
  work_cv_.notify_one();
}

void ResultsStore::WriterLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, nothing left to write
    in_flight_.swap(pending_);
    const uint64_t taking = enqueued_;
    lock.unlock();
    absl::Status st = WriteBatch(in_flight_);
    lock.lock();
    if (!st.ok()) {
      spdlog::error("{}; will retry", st.ToString());
      if (write_error_.ok()) write_error_ = st;
      // Put the batch back under what arrived meanwhile: newer values win, history keeps
      // its order.
      for (auto& [node_id, old] : in_flight_) {
        Pending& now = pending_[node_id];
        if (!now.evidence) now.evidence = std::move(old.evidence);
        if (!now.verdict) now.verdict = std::move(old.verdict);
        if (!now.connected) now.connected = old.connected;
        now.history.insert(now.history.begin(), old.history.begin(), old.history.end());
        now.last_seen_unix_nano = std::max(now.last_seen_unix_nano, old.last_seen_unix_nano);
      }
    }
    in_flight_.clear();
    committed_ = taking;
    idle_cv_.notify_all();
    if (!st.ok() && !stopping_) work_cv_.wait_for(lock, std::chrono::seconds(1));
    if (!st.ok() && stopping_) return;  // give up: the error was logged
  }
}

absl::Status ResultsStore::WriteBatch(const PendingMap& batch) {
  sqlite3* db = writer_db_;
  WriterStatements& w = *statements_;
  auto run = [db](sqlite3_stmt* s, std::string_view what) -> absl::Status {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? absl::OkStatus() : SqlError(db, what);
  };

  RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  absl::Status st = [&]() -> absl::Status {
    for (const auto& [node_id, p] : batch) {
      BindText(w.ensure.get(), 1, node_id);
      RETURN_IF_ERROR(run(w.ensure.get(), "insert node"));
      if (p.evidence) {
        // The hostname is what the node's own report claims; parsed here, off the stream.
        v1::RuntimeReport report;
        v1::Evidence parsed;
        std::string hostname;
        if (parsed.ParseFromString(*p.evidence) && report.ParseFromString(parsed.payload())) {
          hostname = report.hostname();
        }
        BindText(w.evidence.get(), 1, node_id);
        BindBlob(w.evidence.get(), 2, *p.evidence);
        BindBlob(w.evidence.get(), 3, p.verdict->SerializeAsString());
        BindText(w.evidence.get(), 4, hostname);
        RETURN_IF_ERROR(run(w.evidence.get(), "update latest evidence"));
        std::lock_guard<std::mutex> lock(mu_);
        summaries_[node_id].hostname = hostname;
      }
      if (p.connected) {
        BindText(w.connected.get(), 1, node_id);
        sqlite3_bind_int(w.connected.get(), 2, *p.connected ? 1 : 0);
        RETURN_IF_ERROR(run(w.connected.get(), "update connected"));
      }
      BindText(w.seen.get(), 1, node_id);
      sqlite3_bind_int64(w.seen.get(), 2, p.last_seen_unix_nano);
      RETURN_IF_ERROR(run(w.seen.get(), "update last seen"));
      for (const std::string& v : p.history) {
        BindText(w.history.get(), 1, node_id);
        BindBlob(w.history.get(), 2, v);
        RETURN_IF_ERROR(run(w.history.get(), "append history"));
      }
      if (!p.history.empty()) {
        BindText(w.trim.get(), 1, node_id);
        sqlite3_bind_int64(w.trim.get(), 2, static_cast<int64_t>(options_.history_per_node));
        RETURN_IF_ERROR(run(w.trim.get(), "trim history"));
      }
    }
    return Exec(db, "COMMIT");
  }();
  if (!st.ok()) Exec(db, "ROLLBACK").IgnoreError();
  return st;
}

absl::Status ResultsStore::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = enqueued_;
  idle_cv_.wait(lock, [&] { return committed_ >= target || stopping_; });
  absl::Status st = write_error_;
  write_error_ = absl::OkStatus();
  return st;
}

std::vector<NodeResultSummary> ResultsStore::ListNodes() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<NodeResultSummary> out;
  out.reserve(summaries_.size());
  for (const auto& [id, summary] : summaries_) out.push_back(summary);
  return out;
}

std::optional<NodeResultSummary> ResultsStore::FindNode(const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = summaries_.find(node_id);
  if (it == summaries_.end()) return std::nullopt;
  return it->second;
}

std::optional<LatestResult> ResultsStore::PendingLatest(const std::string& node_id) const {
  for (const PendingMap* map : {&pending_, &in_flight_}) {
    auto it = map->find(node_id);
    if (it == map->end() || !it->second.evidence) continue;
    LatestResult out;
    out.evidence.ParseFromString(*it->second.evidence);
    out.verdict = *it->second.verdict;
    return out;
  }
  return std::nullopt;
}

absl::StatusOr<LatestResult> ResultsStore::Latest(const std::string& node_id) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (std::optional<LatestResult> pending = PendingLatest(node_id)) return *std::move(pending);
  }
  std::lock_guard<std::mutex> lock(reader_mu_);
  ASSIGN_OR_RETURN(Stmt stmt,
                   PrepareStmt(reader_db_,
                               "SELECT evidence, verdict FROM results_latest WHERE node_id = ?1 "
                               "AND evidence IS NOT NULL"));
  BindText(stmt.get(), 1, node_id);
  const int rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_DONE) {
    return absl::NotFoundError(absl::StrCat("no evidence from node ", node_id));
  }
  if (rc != SQLITE_ROW) return SqlError(reader_db_, "reading latest evidence");
  LatestResult out;
  if (!out.evidence.ParseFromString(ColumnBytes(stmt.get(), 0)) ||
      !out.verdict.ParseFromString(ColumnBytes(stmt.get(), 1))) {
    return absl::DataLossError(
        absl::StrCat("results store: node ", node_id, ": stored evidence does not parse"));
  }
  return out;
}

absl::StatusOr<std::vector<v1::Verdict>> ResultsStore::History(const std::string& node_id,
                                                               size_t limit) const {
  // Commit what is pending so the history is complete and in order.
  RETURN_IF_ERROR(const_cast<ResultsStore*>(this)->Flush());
  std::lock_guard<std::mutex> lock(reader_mu_);
  ASSIGN_OR_RETURN(Stmt stmt, PrepareStmt(reader_db_,
                                          "SELECT verdict FROM results_history WHERE node_id = ?1 "
                                          "ORDER BY id DESC LIMIT ?2"));
  BindText(stmt.get(), 1, node_id);
  sqlite3_bind_int64(stmt.get(), 2, static_cast<int64_t>(limit));
  std::vector<v1::Verdict> out;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    if (!out.emplace_back().ParseFromString(ColumnBytes(stmt.get(), 0))) {
      return absl::DataLossError("results store: a stored verdict does not parse");
    }
  }
  if (rc != SQLITE_DONE) return SqlError(reader_db_, "reading history");
  return out;
}

}  // namespace vigil::verifier
