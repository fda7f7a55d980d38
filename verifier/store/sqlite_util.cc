#include "verifier/store/sqlite_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"

namespace vigil::verifier::sqlite {
namespace {

// mkdir -p with mode 0700 for every directory it creates (existing ones keep theirs).
absl::Status CreateParents(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> missing;
  for (std::filesystem::path p = dir; !p.empty() && p != p.root_path(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) break;
    missing.push_back(p);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::UnavailableError(
          absl::StrCat("cannot create directory ", it->string(), ": ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// Creates `path` 0600 unless it exists. fchmod corrects a umask that took bits away from the
// owner; it never widens the mode beyond 0600.
absl::Status CreateFile0600(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && (st.st_mode & 0777) != 0600) ::fchmod(fd, 0600);
  ::close(fd);
  return absl::OkStatus();
}

// The busy handler of every connection. The registry's and the store's writers share one
// file and take turns at its write lock; each holds it for one group commit, typically well
// under a millisecond here. SQLite's own busy timeout sleeps 1, 2, 5, 10, ... 100 ms between
// tries, so one collision would add up to tens of milliseconds to every verdict waiting on
// that writer; short sleeps hand the lock over as soon as it is free. Gives up after about
// the same 5 s as before.
int RetryBusy(void* /*unused*/, int tries) {
  constexpr int kSleepMicros = 100;
  constexpr int kGiveUpAfterTries = 5'000'000 / kSleepMicros;
  if (tries >= kGiveUpAfterTries) return 0;
  ::usleep(kSleepMicros);
  return 1;
}

}  // namespace

absl::Status Error(sqlite3* db, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", sqlite3_errmsg(db)));
}

absl::Status Exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    absl::Status st = absl::InternalError(
        absl::StrCat("SQLite: ", message != nullptr ? message : sqlite3_errmsg(db)));
    sqlite3_free(message);
    return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<Stmt> Prepare(sqlite3* db, const char* sql, bool persistent) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr) !=
      SQLITE_OK) {
    return Error(db, absl::StrCat("SQLite prepare ", sql));
  }
  return Stmt(stmt);
}

absl::Status Run(sqlite3* db, sqlite3_stmt* stmt, absl::string_view what) {
  const int rc = sqlite3_step(stmt);
  absl::Status st = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? absl::OkStatus() : Error(db, what);
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  return st;
}

void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

void BindBlob(sqlite3_stmt* s, int i, std::string_view v) {
  // A zero-length blob, not NULL, for an empty value.
  sqlite3_bind_blob(s, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string ColumnBytes(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  const int n = sqlite3_column_bytes(s, i);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

absl::StatusOr<Db> OpenPrivate(const std::string& path, const OpenOptions& options) {
  if (path.empty()) return absl::InvalidArgumentError("empty database path");
  if (path != ":memory:") {
    if (options.create_parent_dirs) {
      const std::filesystem::path parent = std::filesystem::path(path).parent_path();
      if (!parent.empty()) {
        if (absl::Status st = CreateParents(parent); !st.ok()) return st;
      }
    }
    if (absl::Status st = CreateFile0600(path); !st.ok()) return st;
  }
  sqlite3* raw = nullptr;
  // The file exists by now (created above); only an in-memory database is created by SQLite.
  const int create = path == ":memory:" ? SQLITE_OPEN_CREATE : 0;
  const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | create | options.threading_flag, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat(
        path, ": cannot open database: ", raw != nullptr ? sqlite3_errmsg(raw) : "no memory"));
  }
  sqlite3_busy_handler(raw, RetryBusy, nullptr);
  return db;
}

}  // namespace vigil::verifier::sqlite
