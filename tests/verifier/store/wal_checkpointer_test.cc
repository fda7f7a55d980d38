#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <string>
#include <thread>

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

}  // namespace
}  // namespace vigil::verifier::sqlite
