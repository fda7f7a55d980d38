#pragma once

// The Store implementations the shared store suite runs against: SQLite in a temporary
// file, and PostgreSQL in a database of its own on the test binary's PostgreSQL server.

#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/postgres_server.h"
#include "tests/verifier/store/store_test_util.h"
#include "verifier/store/postgres_store.h"
#include "verifier/store/sqlite_store.h"

namespace vigil::verifier::testing {

class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  /// Opens the test's store: the same database every time (a reopen is a restart).
  virtual absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options) = 0;
  /// Runs SQL on a connection of the test's own.
  virtual absl::Status Exec(const std::string& sql) = 0;
  /// The single integer `sql` returns, on a connection of the test's own.
  virtual absl::StatusOr<int64_t> QueryInt(const std::string& sql) = 0;
};

class SqliteBackend final : public StoreBackend {
 public:
  SqliteBackend() : path_(dir_.path() + "/state/vigil.db") {}
  absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options) override {
    absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(path_, options);
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(*std::move(store));
  }
  absl::Status Exec(const std::string& sql) override {
    sqlite3* db = nullptr;
    if (sqlite3_open(path_.c_str(), &db) != SQLITE_OK) {
      sqlite3_close(db);
      return absl::InternalError("cannot open the database");
    }
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    absl::Status st = rc == SQLITE_OK ? absl::OkStatus()
                                      : absl::InternalError(error != nullptr ? error : "failed");
    sqlite3_free(error);
    sqlite3_close(db);
    return st;
  }
  absl::StatusOr<int64_t> QueryInt(const std::string& sql) override {
    sqlite3* db = nullptr;
    int64_t value = -1;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* s = nullptr;
      sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr);
      if (sqlite3_step(s) == SQLITE_ROW) value = sqlite3_column_int64(s, 0);
      sqlite3_finalize(s);
    }
    sqlite3_close(db);
    if (value < 0) return absl::InternalError(absl::StrCat("no result: ", sql));
    return value;
  }

 private:
  TempDir dir_;
  std::string path_;
};

class PostgresBackend final : public StoreBackend {
 public:
  /// A new database on the shared server.
  static absl::StatusOr<std::unique_ptr<PostgresBackend>> Create() {
    absl::StatusOr<vigil::testing::PostgresServer*> server =
        vigil::testing::PostgresServer::Shared();
    if (!server.ok()) return server.status();
    absl::StatusOr<std::string> url = (*server)->CreateDatabase("store");
    if (!url.ok()) return url.status();
    return std::unique_ptr<PostgresBackend>(new PostgresBackend(*url));
  }
  absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options) override {
    absl::StatusOr<std::unique_ptr<PostgresStore>> store = PostgresStore::Open(url_, options);
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(*std::move(store));
  }
  absl::Status Exec(const std::string& sql) override {
    return vigil::testing::PostgresServer::Exec(url_, sql);
  }
  absl::StatusOr<int64_t> QueryInt(const std::string& sql) override {
    return vigil::testing::PostgresServer::QueryInt(url_, sql);
  }
  const std::string& url() const { return url_; }

 private:
  explicit PostgresBackend(std::string url) : url_(std::move(url)) {}
  std::string url_;
};

/// "sqlite" or "postgresql".
inline absl::StatusOr<std::unique_ptr<StoreBackend>> MakeBackend(const std::string& name) {
  if (name == "sqlite") return std::unique_ptr<StoreBackend>(new SqliteBackend());
  if (name == "postgresql") {
    absl::StatusOr<std::unique_ptr<PostgresBackend>> pg = PostgresBackend::Create();
    if (!pg.ok()) return pg.status();
    return std::unique_ptr<StoreBackend>(*std::move(pg));
  }
  return absl::InvalidArgumentError(absl::StrCat("no store backend ", name));
}

}  // namespace vigil::verifier::testing
