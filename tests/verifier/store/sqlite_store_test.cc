#include "verifier/store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/verifier/store/store_test_util.h"

namespace vigil::verifier {
namespace {

using testing::AllVerdicts;
using testing::MakeEvidence;
using testing::MakeVerdict;
using testing::Query;
using testing::RecordDurably;
using testing::TempDir;
using testing::WorkloadSpec;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    path_ = dir_.path() + "/state/vigil.db";
  }

  std::unique_ptr<SqliteStore> OpenStore(SqliteStore::Options options = {}) {
    auto store = SqliteStore::Open(path_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Runs SQL on a connection of the test's own.
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  // The first column of the first row `sql` returns, on a connection of the test's own.
  int64_t RawInt(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    EXPECT_EQ(sqlite3_step(s), SQLITE_ROW) << sql;
    const int64_t value = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return value;
  }

  TempDir dir_;
  std::string path_;
};

// The layout and the rows the result store of schema version 1 wrote (results_store.cc
// before the Store): its DDL verbatim, its version row, a node with its latest evidence and
// verdict, and its history.
TEST_F(SqliteStoreTest, MigratesSchemaOneFileAndKeepsItsData) {
  std::filesystem::create_directories(dir_.path() + "/state");
  RawExec(R"sql(
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
INSERT INTO results_schema (version) VALUES (1);
)sql");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  auto insert = [db](const char* sql, const std::vector<std::string>& blobs, int64_t n) {
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    for (size_t i = 0; i < blobs.size(); ++i) {
      sqlite3_bind_blob(s, static_cast<int>(i + 1), blobs[i].data(),
                        static_cast<int>(blobs[i].size()), SQLITE_TRANSIENT);
    }
    if (n != 0) sqlite3_bind_int64(s, static_cast<int>(blobs.size() + 1), n);
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(s);
  };
  const std::vector<v1::Verdict> history = {MakeVerdict("", v1::TRUST_AFFIRMING, 100),
                                            MakeVerdict("", v1::TRUST_REJECTED, 200),
                                            MakeVerdict("", v1::TRUST_WARNING, 300)};
  for (const v1::Verdict& v : history) {
    insert("INSERT INTO results_history (node_id, verdict) VALUES ('node-a', ?1)",
           {v.SerializeAsString()}, 0);
  }
  insert(
      "INSERT INTO results_latest (node_id, hostname, evidence, verdict, last_seen_unix_nano, "
      "connected) VALUES ('node-a', 'host-a', ?1, ?2, ?3, 1)",
      {MakeEvidence("host-a", 3).SerializeAsString(), history.back().SerializeAsString()}, 777);
  insert("INSERT INTO results_latest (node_id, connected) VALUES ('node-b', 1)", {}, 0);
  sqlite3_close(db);

  {
    std::unique_ptr<SqliteStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    std::vector<NodeResultSummary> nodes = store->ListNodes();
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(nodes[0].node_id, "node-a");
    EXPECT_EQ(nodes[0].hostname, "host-a");
    EXPECT_FALSE(nodes[0].connected);
    EXPECT_EQ(nodes[0].last_seen_unix_nano, 777);
    EXPECT_EQ(nodes[0].latest_verdict.status(), v1::TRUST_WARNING);
    EXPECT_EQ(nodes[1].node_id, "node-b");
    auto latest = store->Latest("node-a");
    ASSERT_TRUE(latest.ok()) << latest.status();
    EXPECT_EQ(latest->evidence.quote().attest(), "attest-3");

    std::vector<v1::Verdict> all = AllVerdicts(*store, Query("node-a"));
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].appraised_unix_nano(), 300);
    EXPECT_EQ(all[2].appraised_unix_nano(), 100);
    // The migrated rows are queryable like new ones.
    std::vector<v1::Verdict> rejected = AllVerdicts(*store, Query("", "", {v1::TRUST_REJECTED}));
    ASSERT_EQ(rejected.size(), 1u);
    EXPECT_EQ(rejected[0].appraised_unix_nano(), 200);
    std::vector<v1::Verdict> ranged = AllVerdicts(*store, Query("", "", {}, 150, 300));
    ASSERT_EQ(ranged.size(), 1u);

    // New verdicts join the same history.
    ASSERT_TRUE(
        RecordDurably(*store, "node-a", MakeVerdict("node-a", v1::TRUST_AFFIRMING, 400)).ok());
    EXPECT_EQ(AllVerdicts(*store, Query("node-a")).size(), 4u);
  }
  // Versions recorded; verifiers that only know results_schema see a newer one.
  sqlite3* check = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &check), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(check,
                               "SELECT (SELECT group_concat(version) FROM schema_migrations), "
                               "(SELECT version FROM results_schema)",
                               -1, &s, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 0))), "1,2,3,4,5");
  EXPECT_EQ(sqlite3_column_int(s, 1), SqliteStore::LatestSchemaVersion());
  sqlite3_finalize(s);
  sqlite3_close(check);

  // And it opens again with everything.
  std::unique_ptr<SqliteStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(AllVerdicts(*store, Query("node-a")).size(), 4u);
}

// A file as schema version 2 left it: each node's latest verdict in its own row as well as in
// the history. Version 3 keeps only the history row; a latest verdict the history lacks is
// moved into it rather than lost.
TEST_F(SqliteStoreTest, MigratesSchemaTwoFileToOneCopyOfTheLatestVerdict) {
  const std::vector<WorkloadSpec> workloads = {{"w1", "agent", v1::TRUST_WARNING}};
  {
    std::unique_ptr<SqliteStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(
        RecordDurably(*store, "node-a", MakeVerdict("node-a", v1::TRUST_AFFIRMING, 100)).ok());
    ASSERT_TRUE(
        RecordDurably(*store, "node-a", MakeVerdict("node-a", v1::TRUST_WARNING, 200)).ok());
    ASSERT_TRUE(
        RecordDurably(*store, "node-b", MakeVerdict("node-b", v1::TRUST_WARNING, 300, workloads))
            .ok());
  }
  RawExec(R"sql(
UPDATE nodes SET verdict = (SELECT verdict FROM verdicts WHERE verdicts.id = nodes.latest_verdict_id);
DELETE FROM verdicts WHERE node_id = 'node-b';
DELETE FROM schema_migrations WHERE version >= 3;
UPDATE results_schema SET version = 2;
)sql");
  ASSERT_EQ(RawInt("SELECT COUNT(*) FROM nodes WHERE verdict IS NOT NULL"), 2);

  {
    std::unique_ptr<SqliteStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    std::optional<NodeResultSummary> a = store->FindNode("node-a");
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->latest_verdict.status(), v1::TRUST_WARNING);
    EXPECT_EQ(a->latest_verdict.appraised_unix_nano(), 200);
    EXPECT_EQ(AllVerdicts(*store, Query("node-a")).size(), 2u);
    // node-b's latest verdict, missing from the history, is there now, with its workload.
    std::optional<NodeResultSummary> b = store->FindNode("node-b");
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->latest_verdict.appraised_unix_nano(), 300);
    std::vector<v1::Verdict> history = AllVerdicts(*store, Query("node-b"));
    ASSERT_EQ(history.size(), 1u);
    EXPECT_EQ(history[0].appraised_unix_nano(), 300);
    EXPECT_EQ(AllVerdicts(*store, Query("", "agent", {v1::TRUST_WARNING})).size(), 1u);
    auto latest = store->Latest("node-b");
    ASSERT_TRUE(latest.ok()) << latest.status();
    EXPECT_EQ(latest->verdict.appraised_unix_nano(), 300);
    // Nothing is stored twice any more, and a new verdict keeps it that way.
    EXPECT_EQ(RawInt("SELECT COUNT(*) FROM nodes WHERE verdict IS NOT NULL"), 0);
    ASSERT_TRUE(
        RecordDurably(*store, "node-a", MakeVerdict("node-a", v1::TRUST_REJECTED, 400)).ok());
    EXPECT_EQ(RawInt("SELECT COUNT(*) FROM nodes WHERE verdict IS NOT NULL"), 0);
  }
  EXPECT_EQ(RawInt("SELECT MAX(version) FROM schema_migrations"),
            SqliteStore::LatestSchemaVersion());
  // The latest verdict is read back from the history after a restart.
  std::unique_ptr<SqliteStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::optional<NodeResultSummary> a = store->FindNode("node-a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->latest_verdict.status(), v1::TRUST_REJECTED);
  EXPECT_EQ(a->latest_verdict.appraised_unix_nano(), 400);
  auto latest = store->Latest("node-a");
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->verdict.appraised_unix_nano(), 400);
}

// A node's latest verdict is not held in memory: readers read it from its history row, so
// what they get is what the file holds, through ListNodes and FindNode, with retention
// keeping one verdict per node, and after a reopen.
TEST_F(SqliteStoreTest, ReadersReadTheLatestVerdictFromItsHistoryRow) {
  {
    std::unique_ptr<SqliteStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    for (int i = 1; i <= 5; ++i) {
      ASSERT_TRUE(RecordDurably(*store, "a", MakeVerdict("a", v1::TRUST_AFFIRMING, i)).ok());
    }
    ASSERT_TRUE(RecordDurably(*store, "b", MakeVerdict("b", v1::TRUST_WARNING, 7)).ok());
    std::optional<NodeResultSummary> a = store->FindNode("a");
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->latest_verdict.appraised_unix_nano(), 5);
    EXPECT_EQ(a->latest_verdict.node_id(), "a");

    // The file is the source: a verdict rewritten on disk is what readers now see.
    v1::Verdict rewritten = MakeVerdict("a", v1::TRUST_CONTRAINDICATED, 5);
    rewritten.set_detail("rewritten in the file");
    std::string hex;
    for (unsigned char c : rewritten.SerializeAsString()) {
      absl::StrAppend(&hex, absl::Hex(c, absl::kZeroPad2));
    }
    RawExec("UPDATE verdicts SET verdict = X'" + hex +
            "' WHERE id = (SELECT latest_verdict_id FROM nodes WHERE node_id = 'a')");
    a = store->FindNode("a");
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->latest_verdict.detail(), "rewritten in the file");
    std::vector<NodeResultSummary> all = store->ListNodes();
    ASSERT_EQ(all.size(), 2u);
    std::sort(all.begin(), all.end(),
              [](const auto& x, const auto& y) { return x.node_id < y.node_id; });
    EXPECT_EQ(all[0].latest_verdict.detail(), "rewritten in the file");
    EXPECT_EQ(all[1].latest_verdict.status(), v1::TRUST_WARNING);
    EXPECT_EQ(all[1].latest_verdict.appraised_unix_nano(), 7);
  }
  // One verdict per node kept: each node's latest is the one left, and a reopened store
  // reads it from the same row.
  SqliteStore::Options one;
  one.retention_max_verdicts_per_node = 1;
  std::unique_ptr<SqliteStore> store = OpenStore(one);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(RecordDurably(*store, "a", MakeVerdict("a", v1::TRUST_AFFIRMING, 9)).ok());
  ASSERT_TRUE(store->ApplyRetention().ok());
  EXPECT_EQ(RawInt("SELECT COUNT(*) FROM verdicts WHERE node_id = 'a'"), 1);
  std::optional<NodeResultSummary> a = store->FindNode("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->latest_verdict.appraised_unix_nano(), 9);
  std::optional<NodeResultSummary> b = store->FindNode("b");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->latest_verdict.appraised_unix_nano(), 7);
}

// The node registry's writer shares the file: while another connection holds the write
// lock, the store's commit waits for it and then succeeds, it does not fail as busy.
TEST_F(SqliteStoreTest, WriterWaitsForAnotherConnectionsWriteLock) {
  std::unique_ptr<SqliteStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::future<absl::Status> written = std::async(std::launch::async, [&] {
    return RecordDurably(*store, "a", MakeVerdict("a", v1::TRUST_AFFIRMING, 1));
  });
  // Held across many of the writer's retries.
  EXPECT_EQ(written.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE(written.get().ok());
  EXPECT_EQ(RawInt("SELECT COUNT(*) FROM verdicts WHERE node_id = 'a'"), 1);
}

TEST_F(SqliteStoreTest, RefusesNewerSchema) {
  { ASSERT_NE(OpenStore(), nullptr); }
  RawExec("INSERT INTO schema_migrations (version, applied_unix_nano) VALUES (99, 0)");
  auto store = SqliteStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status();
}

TEST_F(SqliteStoreTest, CreatesFileOwnerOnlyFromTheStart) {
  // With no umask, a file created with a wider mode and narrowed later would show it.
  const mode_t saved = umask(0);
  auto store = SqliteStore::Open(path_);
  umask(saved);
  ASSERT_TRUE(store.ok()) << store.status();
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((path_ + "-wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_.path() + "/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

}  // namespace
}  // namespace vigil::verifier
