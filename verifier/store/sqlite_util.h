#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vigil::verifier::sqlite {

/// Finalizes a prepared statement.
struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

/// Closes a connection (after its statements were finalized).
struct DbDeleter {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbDeleter>;

/// INTERNAL error "<what>: <sqlite3_errmsg>".
absl::Status Error(sqlite3* db, absl::string_view what);

/// Runs one or more statements without results.
absl::Status Exec(sqlite3* db, const char* sql);

/// Prepares one statement; `persistent` hints SQLite that it will be reused many times.
absl::StatusOr<Stmt> Prepare(sqlite3* db, const char* sql, bool persistent = false);

/// Steps a statement that returns no rows, then resets it and clears its bindings.
absl::Status Run(sqlite3* db, sqlite3_stmt* stmt, absl::string_view what);

void BindText(sqlite3_stmt* s, int i, std::string_view v);
void BindBlob(sqlite3_stmt* s, int i, std::string_view v);
/// The column's bytes (text or blob); empty for NULL.
std::string ColumnBytes(sqlite3_stmt* s, int i);
/// The same bytes without a copy, valid until the statement steps, resets or is finalized.
std::string_view ColumnView(sqlite3_stmt* s, int i);

struct OpenOptions {
  /// Create missing parent directories, mode 0700.
  bool create_parent_dirs = false;
  /// SQLITE_OPEN_NOMUTEX or SQLITE_OPEN_FULLMUTEX.
  int threading_flag = SQLITE_OPEN_NOMUTEX;
};

/// Opens the database at `path`, creating the file with mode 0600 from the start when it does
/// not exist (O_CREAT|O_EXCL; an existing file keeps its mode), so no other user can ever
/// open it. ":memory:" opens an in-memory database. Installs a busy handler that retries
/// for up to ~5 s (100 us backing off to 2 ms, not SQLite's 1-100 ms sleeps); the caller sets the
/// journal mode and synchronous level.
absl::StatusOr<Db> OpenPrivate(const std::string& path, const OpenOptions& options);

/// A lock that grants turns in the order they were asked for (a ticket lock): the writers of
/// one file in this process take turns at its write transaction through it.
class WriteTurns {
 public:
  void lock();
  void unlock();
  /// Turns asked for and not yet given back (the holder's included).
  uint64_t asked() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_ = 0;     // guarded by mu_: the ticket the next caller gets
  uint64_t serving_ = 0;  // guarded by mu_: the ticket whose turn it is
};

/// Copies a WAL database's log back into the database file (the checkpoint) on a thread and
/// connection of its own, one per file, shared by the file's writers (the result store's and
/// the node registry's). A checkpoint writes the pages the log holds into the file and syncs
/// the file; run inside a writer's commit, as SQLite does by default, it holds up every
/// verdict waiting on that writer for as long (tens of milliseconds for a few MB here).
/// PASSIVE checkpoints never wait for a writer or a reader; when writers keep the log from
/// ever being folded completely and it grows past kRestartPages, a RESTART checkpoint makes
/// them wait once so the log starts over.
class WalCheckpointer {
 public:
  /// Log pages after a commit that wake the checkpointer (SQLite's own default threshold).
  static constexpr int kCheckpointPages = 1000;
  /// Log pages above which the checkpoint waits for the writers and restarts the log.
  static constexpr int kRestartPages = 16 * kCheckpointPages;

  /// The checkpointer of the database file at `path` (the same one for every caller while
  /// any holds it), started on first use. nullptr for ":memory:".
  static absl::StatusOr<std::shared_ptr<WalCheckpointer>> ForFile(const std::string& path);

  /// Stops the thread after a last checkpoint.
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  /// Takes `writer`'s checkpoints: SQLite's automatic checkpoint in its commits is off and
  /// each commit tells this how large the log is. `writer` must be closed before this is
  /// destroyed.
  void Attach(sqlite3* writer);

  /// Checkpoints completed so far (each copied the log's pages that no reader still needed).
  uint64_t checkpoints() const;

  /// How checkpoints are made: sqlite3_wal_checkpoint_v2 unless a test replaces it (to make
  /// one fail as SQLite's sometimes do under load: SQLITE_BUSY with the log's size -1).
  using CheckpointFunction = int (*)(sqlite3* db, const char* schema, int mode, int* log,
                                     int* copied);
  static void SetCheckpointFunctionForTesting(CheckpointFunction f);

  /// The file's write turn: held by a writer from its BEGIN IMMEDIATE to its COMMIT or
  /// ROLLBACK, and by a RESTART checkpoint. The result store's and the node registry's writers
  /// commit in turn for every report; waiting on SQLite's file lock instead, each polled it
  /// from the busy handler (sleeps of up to 2 ms, in no order), so a turn was lost for up to a
  /// sleep after the other writer's commit and one writer could wait out several of the
  /// other's. SQLite's lock still guards the file against other processes.
  std::unique_lock<WriteTurns> WriteTurn() { return std::unique_lock<WriteTurns>(turns_); }

 private:
  explicit WalCheckpointer(Db db);
  static int OnCommit(void* self, sqlite3* db, const char* schema, int log_pages);
  bool Due() const;  // mu_ held: enough pages added to the log since the last checkpoint
  void Loop();

  Db db_;  // the checkpointing thread's own connection
  WriteTurns turns_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int log_pages_ = 0;                // guarded by mu_: the log's size at the last commit
  int log_pages_at_checkpoint_ = 0;  // guarded by mu_: its size when last checkpointed
  bool committed_ = false;           // guarded by mu_: a commit since the last checkpoint
  bool stopping_ = false;            // guarded by mu_
  uint64_t checkpoints_ = 0;         // guarded by mu_
  std::thread thread_;
};

/// `checkpointer`'s write turn (WalCheckpointer::WriteTurn); an empty lock for a database
/// without one (":memory:").
std::unique_lock<WriteTurns> WriteTurnOf(WalCheckpointer* checkpointer);

/// Makes `db`, a connection to the file at `path`, a durable writer: WAL, synchronous=FULL (a
/// commit is on stable storage when COMMIT returns), statement journals (savepoints) in
/// memory rather than in a temporary file written at every statement, and its checkpoints
/// run by the file's WalCheckpointer, which is returned (nullptr for ":memory:"). Keep it
/// until `db` is closed.
absl::StatusOr<std::shared_ptr<WalCheckpointer>> MakeDurableWriter(sqlite3* db,
                                                                   const std::string& path);

/// Runs `body` in BEGIN IMMEDIATE ... COMMIT; rolls back when it or the commit fails.
template <typename F>
absl::Status InTransaction(sqlite3* db, F&& body) {
  if (absl::Status st = Exec(db, "BEGIN IMMEDIATE"); !st.ok()) return st;
  absl::Status st = body();
  if (st.ok()) st = Exec(db, "COMMIT");
  if (!st.ok()) Exec(db, "ROLLBACK").IgnoreError();
  return st;
}

}  // namespace vigil::verifier::sqlite
