#include "verifier/store/sqlite_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

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
// file and take turns at its write lock; each holds it for one group commit, typically under
// a millisecond. SQLite's own busy timeout sleeps 1, 2, 5, 10, ... 100 ms between tries, so
// one collision added up to tens of milliseconds to every verdict waiting on that writer.
// This one first retries after 100 us and doubles the sleep up to 2 ms, so a short wait ends
// as soon as the lock is free and a long one (a large commit under load) costs few wake-ups.
// Gives up after about the same 5 s as before.
int RetryBusy(void* /*unused*/, int tries) {
  // Sleeps of 100, 200, 400, 800, 1600 us, then 2 ms each: 3.1 ms before the sixth try.
  constexpr int kDoublings = 5;
  constexpr int64_t kLongestSleepMicros = 2000;
  constexpr int64_t kGiveUpAfterMicros = 5'000'000;
  const int64_t slept = tries <= kDoublings
                            ? 100 * ((int64_t{1} << tries) - 1)
                            : 3100 + int64_t{tries - kDoublings} * kLongestSleepMicros;
  if (slept >= kGiveUpAfterMicros) return 0;
  const int64_t sleep = tries < kDoublings ? 100 * (int64_t{1} << tries) : kLongestSleepMicros;
  ::usleep(static_cast<useconds_t>(sleep));
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

std::string ColumnBytes(sqlite3_stmt* s, int i) { return std::string(ColumnView(s, i)); }

std::string_view ColumnView(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  const int n = sqlite3_column_bytes(s, i);
  return p == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
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

absl::StatusOr<std::shared_ptr<WalCheckpointer>> WalCheckpointer::ForFile(const std::string& path) {
  if (path.empty() || path == ":memory:") return nullptr;
  std::error_code ec;
  const std::string key = std::filesystem::weakly_canonical(path, ec).string();
  static std::mutex registry_mu;
  static std::map<std::string, std::weak_ptr<WalCheckpointer>> registry;
  std::lock_guard<std::mutex> lock(registry_mu);
  std::erase_if(registry, [](const auto& entry) { return entry.second.expired(); });
  std::weak_ptr<WalCheckpointer>& slot = registry[ec ? path : key];
  if (std::shared_ptr<WalCheckpointer> running = slot.lock()) return running;
  ASSIGN_OR_RETURN(Db db, OpenPrivate(path, OpenOptions{}));
  // The checkpoint syncs the log before copying it and the file after.
  RETURN_IF_ERROR(Exec(db.get(), "PRAGMA synchronous=FULL;"));
  std::shared_ptr<WalCheckpointer> started(new WalCheckpointer(std::move(db)));
  started->thread_ = std::thread([c = started.get()] { c->Loop(); });
  slot = started;
  return started;
}

void WriteTurns::lock() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t ticket = next_++;
  cv_.wait(lock, [this, ticket] { return serving_ == ticket; });
}

void WriteTurns::unlock() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++serving_;
  }
  cv_.notify_all();
}

uint64_t WriteTurns::asked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_ - serving_;
}

namespace {
std::atomic<WalCheckpointer::CheckpointFunction> checkpoint_function{&sqlite3_wal_checkpoint_v2};
}  // namespace

void WalCheckpointer::SetCheckpointFunctionForTesting(CheckpointFunction f) {
  checkpoint_function.store(f != nullptr ? f : &sqlite3_wal_checkpoint_v2);
}

WalCheckpointer::WalCheckpointer(Db db) : db_(std::move(db)) {}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WalCheckpointer::Attach(sqlite3* writer) { sqlite3_wal_hook(writer, &OnCommit, this); }

uint64_t WalCheckpointer::checkpoints() const {
  std::lock_guard<std::mutex> lock(mu_);
  return checkpoints_;
}

int WalCheckpointer::OnCommit(void* self, sqlite3* /*db*/, const char* /*schema*/, int log_pages) {
  auto* c = static_cast<WalCheckpointer*>(self);
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(c->mu_);
    c->log_pages_ = log_pages;
    c->committed_ = true;
    wake = c->Due();
  }
  if (wake) c->cv_.notify_one();
  return SQLITE_OK;
}

bool WalCheckpointer::Due() const {
  // Pages added since the last checkpoint (the log restarts from its beginning once a
  // checkpoint folded all of it and no reader still reads it).
  const int added =
      log_pages_ >= log_pages_at_checkpoint_ ? log_pages_ - log_pages_at_checkpoint_ : log_pages_;
  return added >= kCheckpointPages;
}

void WalCheckpointer::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // A large log at once; whatever was committed at least once a second, so an idle
    // verifier's log is folded into the file soon after its last write. Only a commit since
    // the last checkpoint makes one due: a log that still looks large to Due() while nothing
    // was committed (a checkpoint that could not run) waits here, the mutex released, rather
    // than spinning with it held and blocking every commit's OnCommit.
    cv_.wait_for(lock, std::chrono::seconds(1),
                 [this] { return stopping_ || (committed_ && Due()); });
    if (!committed_ && !stopping_) continue;
    const bool restart = log_pages_ >= kRestartPages;
    const bool last = stopping_;
    committed_ = false;
    lock.unlock();
    int log = 0;
    int copied = 0;
    // A RESTART holds the writers back until it is done: they wait for their turn rather
    // than poll SQLite's lock.
    std::unique_lock<WriteTurns> turn(turns_, std::defer_lock);
    if (restart) turn.lock();
    const int rc = checkpoint_function.load()(
        db_.get(), nullptr, restart ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE, &log,
        &copied);
    if (turn.owns_lock()) turn.unlock();
    // BUSY: another checkpoint of the file is running, or a RESTART's wait ran out; the
    // next commit wakes this again.
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      spdlog::warn("SQLite checkpoint: {}", sqlite3_errmsg(db_.get()));
    }
    lock.lock();
    if (rc == SQLITE_OK) ++checkpoints_;
    // The log's size as the checkpoint saw it; -1 when it could not run at all (SQLite
    // answered BUSY before it read the log: its index was being rewritten by a commit, or
    // another connection was checkpointing), which says nothing about the log.
    if ((rc == SQLITE_OK || rc == SQLITE_BUSY) && log >= 0) log_pages_at_checkpoint_ = log;
    if (last) return;
  }
}

std::unique_lock<WriteTurns> WriteTurnOf(WalCheckpointer* checkpointer) {
  return checkpointer != nullptr ? checkpointer->WriteTurn() : std::unique_lock<WriteTurns>();
}

absl::StatusOr<std::shared_ptr<WalCheckpointer>> MakeDurableWriter(sqlite3* db,
                                                                   const std::string& path) {
  RETURN_IF_ERROR(Exec(db,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                       "PRAGMA temp_store=MEMORY;"));
  ASSIGN_OR_RETURN(std::shared_ptr<WalCheckpointer> checkpointer, WalCheckpointer::ForFile(path));
  if (checkpointer != nullptr) checkpointer->Attach(db);
  return checkpointer;
}

}  // namespace vigil::verifier::sqlite
