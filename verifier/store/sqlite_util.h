#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

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

struct OpenOptions {
  /// Create missing parent directories, mode 0700.
  bool create_parent_dirs = false;
  /// SQLITE_OPEN_NOMUTEX or SQLITE_OPEN_FULLMUTEX.
  int threading_flag = SQLITE_OPEN_NOMUTEX;
};

/// Opens the database at `path`, creating the file with mode 0600 from the start when it does
/// not exist (O_CREAT|O_EXCL; an existing file keeps its mode), so no other user can ever
/// open it. ":memory:" opens an in-memory database. Sets a busy timeout; the caller sets the
/// journal mode and synchronous level.
absl::StatusOr<Db> OpenPrivate(const std::string& path, const OpenOptions& options);

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
