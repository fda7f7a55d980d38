#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/verifier/store/store_test_util.h"
#include "verifier/store/sqlite_util.h"

namespace vigil::verifier::sqlite {
namespace {

using testing::TempDir;

class WalCheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = dir_.path() + "/vigil.db"; }

  Db OpenWriter() {
    auto db = OpenPrivate(path_, OpenOptions{});
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? *std::move(db) : nullptr;
  }

  // Commits `pages` pages of new rows, a transaction per 10.
  static void WritePages(sqlite3* db, int pages) {
    ASSERT_TRUE(Exec(db, "CREATE TABLE IF NOT EXISTS t (b BLOB)").ok());
    for (int i = 0; i < pages; i += 10) {
      ASSERT_TRUE(
          Exec(db,
               "BEGIN IMMEDIATE; "
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) "
               "INSERT INTO t SELECT randomblob(3900) FROM n; COMMIT;")
              .ok());
    }
  }

  int64_t FileBytes(const std::string& path) const {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
  }

  TempDir dir_;
  std::string path_;
};

TEST_F(WalCheckpointerTest, OnePerFileSharedByItsWriters) {
  auto a = WalCheckpointer::ForFile(path_);
  auto b = WalCheckpointer::ForFile(dir_.path() + "/./vigil.db");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, nullptr);
  EXPECT_EQ(a->get(), b->get());
  auto memory = WalCheckpointer::ForFile(":memory:");
  ASSERT_TRUE(memory.ok());
  EXPECT_EQ(*memory, nullptr);
}

// The writer's commits only append to the log (no checkpoint in them); the checkpointer's
// thread copies it into the database file, and the rows are all there after a reopen.
TEST_F(WalCheckpointerTest, CommitsLeaveTheLogToTheCheckpointerWhichFoldsItIntoTheFile) {
  Db writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  auto checkpointer = MakeDurableWriter(writer.get(), path_);
  ASSERT_TRUE(checkpointer.ok()) << checkpointer.status();
  ASSERT_NE(*checkpointer, nullptr);
  const uint64_t before = (*checkpointer)->checkpoints();

  // Commits past the checkpoint threshold wake the checkpointer.
  WritePages(writer.get(), 3 * WalCheckpointer::kCheckpointPages);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((*checkpointer)->checkpoints() == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT((*checkpointer)->checkpoints(), before);
  // Folded into the file by the checkpointer's connection.
  EXPECT_GT(FileBytes(path_), int64_t{WalCheckpointer::kCheckpointPages} * 4096);

  writer.reset();
  checkpointer->reset();
  Db reopened = OpenWriter();
  sqlite3_stmt* count = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(reopened.get(), "SELECT COUNT(*) FROM t", -1, &count, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(count), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(count, 0), 3 * WalCheckpointer::kCheckpointPages);
  sqlite3_finalize(count);
}

// Statement journals stay in memory: the writer's savepoints create no temporary file.
TEST_F(WalCheckpointerTest, DurableWriterKeepsStatementJournalsInMemory) {
  Db writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  auto checkpointer = MakeDurableWriter(writer.get(), path_);
  ASSERT_TRUE(checkpointer.ok());
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(writer.get(), "PRAGMA temp_store", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), 2);  // MEMORY
  sqlite3_finalize(s);
  ASSERT_EQ(sqlite3_prepare_v2(writer.get(), "PRAGMA synchronous", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), 2);  // FULL
  sqlite3_finalize(s);
}

// SQLite's checkpoint sometimes cannot run at all under load (SQLITE_BUSY, the log's size
// -1: another connection was rewriting the log's index header). The checkpointer must then
// wait for the next commit, not spin holding its mutex: commits report to it under that mutex,
// so a spinning checkpointer stopped every writer of the file for good.
std::atomic<int> failed_checkpoints{0};
int CheckpointThatCannotRun(sqlite3*, const char*, int, int* log, int* copied) {
  failed_checkpoints.fetch_add(1);
  if (log != nullptr) *log = -1;
  if (copied != nullptr) *copied = -1;
  return SQLITE_BUSY;
}

TEST_F(WalCheckpointerTest, ACheckpointThatCannotRunNeverHoldsUpTheWriters) {
  WalCheckpointer::SetCheckpointFunctionForTesting(&CheckpointThatCannotRun);
  Db writer = OpenWriter();
  ASSERT_NE(writer, nullptr);
  auto checkpointer = MakeDurableWriter(writer.get(), path_);
  ASSERT_TRUE(checkpointer.ok() && *checkpointer != nullptr);
  // Commits past the threshold: the checkpointer tries, and its checkpoint cannot run; then
  // more commits, each reporting to the checkpointer. On a thread, so that a writer stuck for
  // good fails the test instead of hanging it.
  auto writes = std::async(std::launch::async, [&] {
    WritePages(writer.get(), WalCheckpointer::kCheckpointPages + 20);
    while (failed_checkpoints.load() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    WritePages(writer.get(), 50);
  });
  const bool finished = writes.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  WalCheckpointer::SetCheckpointFunctionForTesting(nullptr);
  if (!finished) {
    ADD_FAILURE() << "a commit is stuck behind the checkpointer";
    std::_Exit(1);  // the stuck writer thread cannot be joined
  }
  writes.get();
  // And with checkpoints that run again, the log is folded as before.
  const uint64_t before = (*checkpointer)->checkpoints();
  WritePages(writer.get(), WalCheckpointer::kCheckpointPages);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((*checkpointer)->checkpoints() == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT((*checkpointer)->checkpoints(), before);
  writer.reset();
}

// Writers waiting for a turn get it in the order they asked.
TEST(WriteTurnsTest, TurnsAreGrantedInTheOrderAsked) {
  WriteTurns turns;
  std::vector<int> order;
  std::mutex order_mu;
  std::vector<std::thread> writers;
  turns.lock();
  for (int i = 0; i < 5; ++i) {
    writers.emplace_back([&, i] {
      std::lock_guard<WriteTurns> turn(turns);
      std::lock_guard<std::mutex> lock(order_mu);
      order.push_back(i);
    });
    // Writer i has asked (the holder and writers 0..i) before writer i + 1 starts.
    while (turns.asked() < static_cast<uint64_t>(i) + 2) std::this_thread::yield();
  }
  turns.unlock();
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(turns.asked(), 0u);
}

// Two writers of one file that take the file's write turn never find SQLite's write lock
// taken by the other: neither connection's busy handler is ever called.
TEST_F(WalCheckpointerTest, WritersTakingTurnsNeverWaitOnTheFileLock) {
  auto checkpointer = WalCheckpointer::ForFile(path_);
  ASSERT_TRUE(checkpointer.ok() && *checkpointer != nullptr);
  Db a = OpenWriter();
  Db b = OpenWriter();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Exec(a.get(), "PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER)").ok());
  std::atomic<int> busy{0};
  auto count_busy = [](void* calls, int) {
    static_cast<std::atomic<int>*>(calls)->fetch_add(1);
    ::usleep(100);
    return 1;
  };
  sqlite3_busy_handler(a.get(), count_busy, &busy);
  sqlite3_busy_handler(b.get(), count_busy, &busy);
  auto write = [&](sqlite3* db) {
    for (int i = 0; i < 300; ++i) {
      std::unique_lock<WriteTurns> turn = WriteTurnOf(checkpointer->get());
      ASSERT_TRUE(Exec(db, "BEGIN IMMEDIATE; INSERT INTO t VALUES (1); COMMIT;").ok());
    }
  };
  std::thread other(write, b.get());
  write(a.get());
  other.join();
  EXPECT_EQ(busy.load(), 0);
}

}  // namespace
}  // namespace vigil::verifier::sqlite
