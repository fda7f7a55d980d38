// The node registry committing its appraisal state inside the result store's transactions
// (NodeRegistry::CommitWith, SqliteStore::Join): one connection and one commit for both.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "tests/testing/registry_with_node.h"
#include "tests/testing/temp_dir.h"
#include "verifier/node_registry.h"
#include "verifier/state_durable_sink.h"
#include "verifier/store/sqlite_store.h"

namespace vigil::verifier {
namespace {

constexpr char kNode[] = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

class RegistryStoreCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ::vigil::testing::TestTempDir::Create("registry-store");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    db_ = tmp_.path() + "/verifier.db";
    auto store = SqliteStore::Open(db_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto registry = ::vigil::testing::RegistryWithNode(kNode, db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
  }

  // What an accepted appraisal does to the node's state: a new clock and one more log entry.
  void Advance(uint64_t clock) {
    std::shared_ptr<NodeState> state = registry_->Find(kNode);
    ASSERT_NE(state, nullptr);
    {
      absl::MutexLock lock(&state->mu);
      state->last_clock = QuoteClock{clock, 1, 0};
      state->measurements.entries = clock;
      v1::MeasurementLogEntry e;
      e.set_recnum(clock - 1);
      e.set_pcr(15);
      e.set_digest(std::string(32, static_cast<char>(clock)));
      e.set_event_type("vigil-policy");
      e.set_content("policy " + std::to_string(clock));
      state->measurements.kept.push_back(e);
    }
    registry_->MarkDirty(kNode);
  }

  static v1::Verdict Verdict(int64_t appraised) {
    v1::Verdict v;
    v.set_status(v1::TRUST_AFFIRMING);
    v.set_appraised_unix_nano(appraised);
    return v;
  }

  // One value read through a connection of the test's own (committed state only).
  std::optional<int64_t> Query(const char* sql) const {
    sqlite3* db = nullptr;
    std::optional<int64_t> out;
    if (sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* q = nullptr;
      if (sqlite3_prepare_v2(db, sql, -1, &q, nullptr) == SQLITE_OK &&
          sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
        out = sqlite3_column_int64(q, 0);
      }
      sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return out;
  }
  std::optional<int64_t> CommittedClock() const {
    return Query("SELECT clock FROM enrolled_nodes");
  }
  std::optional<int64_t> CommittedLogRows() const {
    return Query("SELECT COUNT(*) FROM node_measurement_log");
  }
  std::optional<int64_t> CommittedVerdicts() const {
    return Query("SELECT COUNT(*) FROM verdicts");
  }

  // The state and the verdict of one report, as the Attest stream records them; returns what
  // the durability callback reported and the thread it ran on.
  std::pair<absl::Status, std::thread::id> Report(uint64_t clock) {
    Advance(clock);
    StateDurableSink sink(store_.get(), registry_.get());
    std::promise<std::pair<absl::Status, std::thread::id>> durable;
    sink.RecordDurable(kNode, v1::Evidence(), Verdict(static_cast<int64_t>(clock)),
                       [&](absl::Status st) {
                         durable.set_value({std::move(st), std::this_thread::get_id()});
                       });
    return durable.get_future().get();
  }

  ::vigil::testing::TestTempDir tmp_;
  std::string db_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<NodeRegistry> registry_;
};

// The node's state and its verdict are committed by the store's writer, in its transaction:
// both are in the file when the report is acknowledged, and the registry's part is answered on
// the store's writer thread (it made no commit of its own).
TEST_F(RegistryStoreCommitTest, AReportsStateAndVerdictCommitInTheStoresTransaction) {
  ASSERT_TRUE(registry_->CommitWith(store_.get()).ok());
  std::promise<std::thread::id> store_thread;
  store_->CommitSoon([&](absl::Status st) {
    EXPECT_TRUE(st.ok()) << st;
    store_thread.set_value(std::this_thread::get_id());
  });
  const std::thread::id writer = store_thread.get_future().get();
  for (uint64_t clock = 1; clock <= 5; ++clock) {
    auto [st, thread] = Report(clock);
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ(thread, writer);
    EXPECT_EQ(CommittedClock(), static_cast<int64_t>(clock));
    EXPECT_EQ(CommittedLogRows(), static_cast<int64_t>(2 * clock - 1));
    EXPECT_EQ(CommittedVerdicts(), static_cast<int64_t>(clock));
    // The registry's part alone: answered by the store's writer too (on commits of its own
    // it would be the registry's writer thread).
    Advance(clock + 100);
    std::promise<std::thread::id> persisted;
    registry_->PersistThen(kNode, [&](absl::Status st) {
      EXPECT_TRUE(st.ok()) << st;
      persisted.set_value(std::this_thread::get_id());
    });
    store_->CommitSoon(nullptr);
    EXPECT_EQ(persisted.get_future().get(), writer);
  }
  // Twice is refused: one store carries the registry's commits.
  EXPECT_FALSE(registry_->CommitWith(store_.get()).ok());
}

// State that no verdict follows still goes out (the registry asks the store for a batch), and
// Flush commits through the store.
TEST_F(RegistryStoreCommitTest, StateWithoutAVerdictIsCommittedToo) {
  ASSERT_TRUE(registry_->CommitWith(store_.get()).ok());
  Advance(3);
  std::promise<absl::Status> persisted;
  registry_->PersistThen(kNode, [&](absl::Status st) { persisted.set_value(std::move(st)); });
  absl::Status st = persisted.get_future().get();
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(CommittedClock(), 3);

  Advance(4);
  ASSERT_TRUE(registry_->Flush().ok());
  EXPECT_EQ(CommittedClock(), 4);
  EXPECT_EQ(CommittedLogRows(), 2);
  EXPECT_EQ(CommittedVerdicts(), 0);
}

// When the state cannot be written, the report is not acknowledged, while the store's own
// writes of the batch commit; the state stays marked and is written once it can be.
TEST_F(RegistryStoreCommitTest, AStateWriteThatFailsFailsTheReportAndNotTheBatch) {
  ASSERT_TRUE(registry_->CommitWith(store_.get()).ok());
  auto raw_exec = [this](const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  };
  raw_exec("ALTER TABLE node_measurement_log RENAME TO log_aside");
  auto [st, thread] = Report(1);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(CommittedVerdicts(), 1);
  EXPECT_EQ(CommittedClock(), std::nullopt);
  EXPECT_FALSE(registry_->Flush().ok());

  raw_exec("ALTER TABLE log_aside RENAME TO node_measurement_log");
  ASSERT_TRUE(registry_->Flush().ok());
  EXPECT_EQ(CommittedClock(), 1);
  EXPECT_EQ(CommittedLogRows(), 1);
}

// A registry destroyed before the store leaves its batches and writes what is still marked on
// its own connection; the store goes on without it.
TEST_F(RegistryStoreCommitTest, ARegistryThatGoesFirstKeepsItsState) {
  ASSERT_TRUE(registry_->CommitWith(store_.get()).ok());
  ASSERT_TRUE(Report(1).first.ok());
  Advance(2);
  registry_.reset();
  EXPECT_EQ(CommittedClock(), 2);
  std::promise<absl::Status> stored;
  store_->RecordVerdict(kNode, v1::Evidence(), Verdict(2),
                        [&](absl::Status st) { stored.set_value(std::move(st)); });
  EXPECT_TRUE(stored.get_future().get().ok());
  EXPECT_EQ(CommittedVerdicts(), 2);
}

// A store destroyed before the registry commits what is queued and hands the registry back its
// own commits.
TEST_F(RegistryStoreCommitTest, AStoreThatGoesFirstHandsTheRegistryItsOwnCommits) {
  ASSERT_TRUE(registry_->CommitWith(store_.get()).ok());
  ASSERT_TRUE(Report(1).first.ok());
  store_.reset();
  Advance(2);
  ASSERT_TRUE(registry_->Flush().ok());
  EXPECT_EQ(CommittedClock(), 2);
  Advance(3);
  std::promise<absl::Status> persisted;
  registry_->PersistThen(kNode, [&](absl::Status st) { persisted.set_value(std::move(st)); });
  EXPECT_TRUE(persisted.get_future().get().ok());
  EXPECT_EQ(CommittedClock(), 3);
  registry_.reset();
  auto reopened = NodeRegistry::Open(db_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  std::shared_ptr<NodeState> state = (*reopened)->Find(kNode);
  ASSERT_NE(state, nullptr);
  absl::MutexLock lock(&state->mu);
  ASSERT_TRUE(state->last_clock.has_value());
  EXPECT_EQ(state->last_clock->clock, 3u);
  EXPECT_EQ(state->measurements.kept.size(), 3u);
}

// Only a registry in a file joins a store.
TEST(RegistryStoreCommitRefusalTest, ARegistryInMemoryCommitsOnItsOwn) {
  auto tmp = ::vigil::testing::TestTempDir::Create("registry-memory");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  auto store = SqliteStore::Open(tmp->path() + "/verifier.db");
  ASSERT_TRUE(store.ok()) << store.status();
  auto registry = NodeRegistry::Open(":memory:");
  ASSERT_TRUE(registry.ok()) << registry.status();
  absl::Status st = (*registry)->CommitWith(store->get());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
}

}  // namespace
}  // namespace vigil::verifier
