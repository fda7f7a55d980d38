#include "verifier/node_registry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "common/tpm/software_ak.h"
#include "tests/testing/temp_dir.h"

namespace vigil::verifier {
namespace {

using ::vigil::tpm::SoftwareAk;

class NodeRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ::vigil::testing::TestTempDir::Create("registry");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    dir_ = tmp_.path();
    db_ = dir_ + "/verifier.db";
    auto ak = SoftwareAk::Create();
    ASSERT_TRUE(ak.ok()) << ak.status();
    ak_ = std::move(*ak);
  }

  EnrolledNode Node(const std::string& id, const SoftwareAk& ak) const {
    return EnrolledNode{id, "ek-public-bytes", ak.tpm2b_public, ak.name,
                        absl::FromUnixSeconds(1700000000)};
  }

  // Gives enrolled node `id` an accepted quote's clock and `batches` (digest -> record) as
  // measured spool batches, and commits.
  static void MeasureAndFlush(NodeRegistry& registry, const std::string& id,
                              const std::map<std::string, uint64_t>& batches) {
    auto state = registry.Find(id);
    ASSERT_NE(state, nullptr);
    {
      absl::MutexLock lock(&state->mu);
      state->last_clock = QuoteClock{1, 0, 0};
      for (const auto& [digest, recnum] : batches) state->spool_batches.AddMeasured(digest, recnum);
    }
    registry.MarkDirty(id);
    ASSERT_TRUE(registry.Flush().ok());
  }

  ::vigil::testing::TestTempDir tmp_;
  std::string dir_;
  std::string db_;
  SoftwareAk ak_;
};

TEST_F(NodeRegistryTest, PersistsBindingApprovalClockAndLogAcrossReopen) {
  const std::string id(64, 'a');
  {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    ASSERT_TRUE((*registry)->Bind(Node(id, ak_)).ok());
    ASSERT_TRUE((*registry)->Approve(std::string(64, 'b')).ok());
    auto state = (*registry)->Find(id);
    ASSERT_NE(state, nullptr);
    ASSERT_NE(state->ak_key(), nullptr);
    {
      absl::MutexLock lock(&state->mu);
      state->last_clock = QuoteClock{12345, 3, 2};
      v1::MeasurementLogEntry e;
      e.set_recnum(0);
      e.set_pcr(15);
      e.set_digest(std::string(32, '\x11'));
      e.set_event_type("vigil-node-binary");
      e.set_content("/usr/bin/vigil-node");
      state->measurements.entries = 7;
      state->measurements.epoch_start = 2;
      state->measurements.pcrs[15] = Sha256("pcr 15");
      state->measurements.pcrs[16] = Sha256("pcr 16");
      state->measurements.kept.push_back(e);
      state->qualified_signer = "pinned qualified name";
    }
    (*registry)->MarkDirty(id);
  }  // destruction flushes
  auto registry = NodeRegistry::Open(db_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto state = (*registry)->Find(id);
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->node().ak_name, ak_.name);
  EXPECT_EQ(state->node().ak_public, ak_.tpm2b_public);
  EXPECT_EQ(state->node().enrolled, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(EVP_PKEY_eq(state->ak_key(), ak_.key.get()), 1);
  absl::MutexLock lock(&state->mu);
  ASSERT_TRUE(state->last_clock.has_value());
  EXPECT_EQ(state->last_clock->clock, 12345u);
  EXPECT_EQ(state->last_clock->reset_count, 3u);
  EXPECT_EQ(state->last_clock->restart_count, 2u);
  EXPECT_EQ(state->measurements.entries, 7u);
  EXPECT_EQ(state->measurements.epoch_start, 2u);
  EXPECT_EQ(state->measurements.pcrs,
            (std::map<uint32_t, Sha256Digest>{{15, Sha256("pcr 15")}, {16, Sha256("pcr 16")}}));
  ASSERT_EQ(state->measurements.kept.size(), 1u);
  EXPECT_EQ(state->measurements.kept[0].content(), "/usr/bin/vigil-node");
  EXPECT_EQ(state->qualified_signer, "pinned qualified name");
  EXPECT_EQ((*registry)->NodeIdForAk("pinned qualified name"), id);
  EXPECT_TRUE((*registry)->IsApproved(std::string(64, 'b')));
  EXPECT_FALSE((*registry)->IsApproved(id));
  EXPECT_EQ((*registry)->NodeIdForAk(ak_.name), id);
}

TEST_F(NodeRegistryTest, PersistsTheSimulatedTpmMarkAcrossReopen) {
  const std::string simulated(64, 's');
  const std::string real(64, 'r');
  auto ak2 = SoftwareAk::Create();
  ASSERT_TRUE(ak2.ok());
  {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    EnrolledNode node = Node(simulated, ak_);
    node.tpm_simulated = true;
    ASSERT_TRUE((*registry)->Bind(node).ok());
    ASSERT_TRUE((*registry)->Bind(Node(real, *ak2)).ok());
    EXPECT_TRUE((*registry)->Find(simulated)->node().tpm_simulated);
  }
  auto reopened = NodeRegistry::Open(db_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ASSERT_NE((*reopened)->Find(simulated), nullptr);
  EXPECT_TRUE((*reopened)->Find(simulated)->node().tpm_simulated);
  EXPECT_FALSE((*reopened)->Find(real)->node().tpm_simulated);
  for (const EnrolledNode& n : (*reopened)->ListNodes()) {
    EXPECT_EQ(n.tpm_simulated, n.node_id == simulated) << n.node_id;
  }
}

TEST_F(NodeRegistryTest, RebindingWithNewAkReplacesKeyAndForgetsState) {
  const std::string id(64, 'a');
  auto registry = NodeRegistry::Open(db_);
  ASSERT_TRUE(registry.ok());
  ASSERT_TRUE((*registry)->Bind(Node(id, ak_)).ok());
  {
    auto state = (*registry)->Find(id);
    absl::MutexLock lock(&state->mu);
    state->last_clock = QuoteClock{99, 1, 0};
  }
  auto ak2 = SoftwareAk::Create();
  ASSERT_TRUE(ak2.ok());
  ASSERT_TRUE((*registry)->Bind(Node(id, *ak2)).ok());
  auto state = (*registry)->Find(id);
  EXPECT_EQ(state->node().ak_name, ak2->name);
  EXPECT_EQ(EVP_PKEY_eq(state->ak_key(), ak2->key.get()), 1);
  absl::MutexLock lock(&state->mu);
  EXPECT_FALSE(state->last_clock.has_value());
  EXPECT_EQ((*registry)->NodeIdForAk(ak_.name), "");
  EXPECT_EQ((*registry)->NodeIdForAk(ak2->name), id);
}

TEST_F(NodeRegistryTest, PersistsTheSpoolLedgerIncrementallyAcrossReopen) {
  const std::string id(64, 'a');
  const std::string pending(32, '\x01'), delivered(32, '\x02'), in_delivery(32, '\x03'),
      taken_later(32, '\x04');
  {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    ASSERT_TRUE((*registry)->Bind(Node(id, ak_)).ok());
    MeasureAndFlush(**registry, id, {{pending, 10}, {delivered, 11}, {in_delivery, 12}});
    auto state = (*registry)->Find(id);
    {
      absl::MutexLock lock(&state->mu);
      EXPECT_TRUE(state->spool_batches.Changes().empty());  // written: nothing left to write
      uint64_t recnum = 0;
      ASSERT_TRUE(state->spool_batches.Take(delivered, &recnum));
      EXPECT_EQ(recnum, 11u);
      state->spool_batches.Settle(delivered, /*stored=*/true);
      // Its verdict not stored yet when the verifier stops: written as pending.
      ASSERT_TRUE(state->spool_batches.Take(in_delivery, &recnum));
      state->spool_batches.AddMeasured(taken_later, 13);
      // Only the digests that changed since the first commit are written again.
      EXPECT_EQ(state->spool_batches.Changes().size(), 2u);
    }
    (*registry)->MarkDirty(id);
  }  // destruction flushes
  auto registry = NodeRegistry::Open(db_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto state = (*registry)->Find(id);
  ASSERT_NE(state, nullptr);
  absl::MutexLock lock(&state->mu);
  const MeasuredBatches& batches = state->spool_batches;
  EXPECT_EQ(batches.pending(), 3u);
  EXPECT_EQ(batches.delivered(), 1u);
  for (const auto& [digest, recnum] :
       std::map<std::string, uint64_t>{{pending, 10}, {in_delivery, 12}, {taken_later, 13}}) {
    const MeasuredBatches::Entry* e = batches.Find(digest);
    ASSERT_NE(e, nullptr) << recnum;
    EXPECT_EQ(e->state, MeasuredBatches::State::kPending) << recnum;
    EXPECT_EQ(e->recnum, recnum);
  }
  const MeasuredBatches::Entry* e = batches.Find(delivered);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->state, MeasuredBatches::State::kDelivered);
  EXPECT_TRUE(batches.Changes().empty());
}

TEST_F(NodeRegistryTest, RebindingForgetsTheSpoolLedger) {
  const std::string id(64, 'a');
  {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    ASSERT_TRUE((*registry)->Bind(Node(id, ak_)).ok());
    MeasureAndFlush(**registry, id, {{std::string(32, '\x01'), 10}});
    auto ak2 = SoftwareAk::Create();
    ASSERT_TRUE(ak2.ok());
    ASSERT_TRUE((*registry)->Bind(Node(id, *ak2)).ok());
  }
  auto registry = NodeRegistry::Open(db_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto state = (*registry)->Find(id);
  ASSERT_NE(state, nullptr);
  absl::MutexLock lock(&state->mu);
  EXPECT_EQ(state->spool_batches.pending(), 0u);
  EXPECT_EQ(state->spool_batches.Find(std::string(32, '\x01')), nullptr);
}

TEST_F(NodeRegistryTest, NodeIdsAreTheListedNodesIds) {
  auto registry = NodeRegistry::Open(db_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto other = SoftwareAk::Create();
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE((*registry)->Bind(Node(std::string(64, 'b'), ak_)).ok());
  ASSERT_TRUE((*registry)->Bind(Node(std::string(64, 'a'), *other)).ok());
  EXPECT_EQ((*registry)->NodeIds(),
            (std::vector<std::string>{std::string(64, 'a'), std::string(64, 'b')}));
  std::vector<std::string> listed;
  for (const EnrolledNode& n : (*registry)->ListNodes()) listed.push_back(n.node_id);
  EXPECT_EQ((*registry)->NodeIds(), listed);
}

TEST_F(NodeRegistryTest, RefusesBindingWithUndecodableAk) {
  auto registry = NodeRegistry::Open(db_);
  ASSERT_TRUE(registry.ok());
  EnrolledNode bad = Node(std::string(64, 'a'), ak_);
  bad.ak_public = "garbage";
  EXPECT_FALSE((*registry)->Bind(bad).ok());
  EXPECT_EQ((*registry)->Find(bad.node_id), nullptr);
}

TEST_F(NodeRegistryTest, RevokeRemovesApprovalDurably) {
  {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok());
    ASSERT_TRUE((*registry)->Approve("n1").ok());
    ASSERT_TRUE((*registry)->Approve("n2").ok());
    ASSERT_TRUE((*registry)->Revoke("n1").ok());
  }
  auto registry = NodeRegistry::Open(db_);
  ASSERT_TRUE(registry.ok());
  EXPECT_EQ((*registry)->ListApproved(), std::vector<std::string>{"n2"});
}

TEST_F(NodeRegistryTest, OpenFailsOnUnwritablePath) {
  EXPECT_FALSE(NodeRegistry::Open(dir_ + "/missing/dir/verifier.db").ok());
}

TEST_F(NodeRegistryTest, CreatesDatabaseOwnerOnlyFromTheStart) {
  // With no umask, a file created with SQLite's default mode (0644) would show it.
  const mode_t saved = umask(0);
  auto registry = NodeRegistry::Open(db_);
  umask(saved);
  ASSERT_TRUE(registry.ok()) << registry.status();
  struct stat st {};
  ASSERT_EQ(stat(db_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(NodeRegistryTest, FailedFlushKeepsStateForTheNextFlush) {
  const std::string id(64, 'a');
  auto raw_exec = [this](const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    // The registry's writer may be retrying the failed write meanwhile: wait for its lock.
    sqlite3_busy_timeout(db, 10000);
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  };
  {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    ASSERT_TRUE((*registry)->Bind(Node(id, ak_)).ok());
    // The log table out of the way: writing the node's state fails.
    raw_exec("ALTER TABLE node_measurement_log RENAME TO log_aside");
    auto state = (*registry)->Find(id);
    ASSERT_NE(state, nullptr);
    {
      absl::MutexLock lock(&state->mu);
      state->last_clock = QuoteClock{777, 1, 0};
      v1::MeasurementLogEntry e;
      e.set_recnum(0);
      e.set_pcr(15);
      e.set_digest(std::string(32, '\x22'));
      e.set_event_type("vigil-node-binary");
      e.set_content("/usr/bin/vigil-node");
      state->measurements.entries = 1;
      state->measurements.kept.push_back(e);
    }
    (*registry)->MarkDirty(id);
    EXPECT_FALSE((*registry)->Flush().ok());
    raw_exec("ALTER TABLE log_aside RENAME TO node_measurement_log");
    EXPECT_TRUE((*registry)->Flush().ok());
  }
  auto registry = NodeRegistry::Open(db_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto state = (*registry)->Find(id);
  ASSERT_NE(state, nullptr);
  absl::MutexLock lock(&state->mu);
  ASSERT_TRUE(state->last_clock.has_value());
  EXPECT_EQ(state->last_clock->clock, 777u);
  EXPECT_EQ(state->measurements.entries, 1u);
  ASSERT_EQ(state->measurements.kept.size(), 1u);
}

// The kept log records are written only when they changed since the last commit, so a report
// that adds no log entry writes just the node's row; a binding replaced since (which deletes
// the node's records) gets them written again even when they are the same.
TEST_F(NodeRegistryTest, LogRecordsAreRewrittenWhenChangedAndAfterARebind) {
  const std::string id(64, 'a');
  auto entry = [](uint64_t recnum, const std::string& content) {
    v1::MeasurementLogEntry e;
    e.set_recnum(recnum);
    e.set_pcr(15);
    e.set_digest(std::string(32, static_cast<char>('\x30' + recnum)));
    e.set_event_type("vigil-node-binary");
    e.set_content(content);
    return e;
  };
  auto commit = [&](NodeRegistry& registry, uint64_t clock,
                    const std::vector<v1::MeasurementLogEntry>& kept) {
    auto state = registry.Find(id);
    ASSERT_NE(state, nullptr);
    {
      absl::MutexLock lock(&state->mu);
      state->last_clock = QuoteClock{clock, 1, 0};
      state->measurements.entries = kept.size();
      state->measurements.kept = kept;
    }
    registry.MarkDirty(id);
    ASSERT_TRUE(registry.Flush().ok());
  };
  auto stored_kept = [this, &id]() -> std::vector<std::string> {
    auto registry = NodeRegistry::Open(db_);
    EXPECT_TRUE(registry.ok()) << registry.status();
    if (!registry.ok()) return {};
    auto state = (*registry)->Find(id);
    EXPECT_NE(state, nullptr);
    if (state == nullptr) return {};
    absl::MutexLock lock(&state->mu);
    std::vector<std::string> out;
    for (const v1::MeasurementLogEntry& e : state->measurements.kept) out.push_back(e.content());
    return out;
  };
  {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    ASSERT_TRUE((*registry)->Bind(Node(id, ak_)).ok());
    commit(**registry, 1, {entry(0, "first")});
    commit(**registry, 2, {entry(0, "first")});  // no new entry: only the clock moves
  }
  EXPECT_EQ(stored_kept(), std::vector<std::string>{"first"});
  {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    commit(**registry, 3, {entry(0, "first")});
    commit(**registry, 4, {entry(0, "first"), entry(1, "second")});
  }
  EXPECT_EQ(stored_kept(), (std::vector<std::string>{"first", "second"}));
  {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    commit(**registry, 5, {entry(0, "first"), entry(1, "second")});
    // Enrolled again: the old binding's records are deleted with it; the new binding's state
    // holds the same records and they are stored again.
    ASSERT_TRUE((*registry)->Bind(Node(id, ak_)).ok());
    commit(**registry, 6, {entry(0, "first"), entry(1, "second")});
  }
  EXPECT_EQ(stored_kept(), (std::vector<std::string>{"first", "second"}));
}

// PersistThen reports a node's state only once a commit holds it: another connection to the
// file sees it from inside the callback. Nothing pending: at once.
TEST_F(NodeRegistryTest, PersistThenReportsOnlyCommittedState) {
  const std::string id(64, 'a');
  auto registry = NodeRegistry::Open(db_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  ASSERT_TRUE((*registry)->Bind(Node(id, ak_)).ok());
  bool clean_called = false;
  (*registry)->PersistThen(id, [&](absl::Status st) {
    EXPECT_TRUE(st.ok()) << st;
    clean_called = true;
  });
  EXPECT_TRUE(clean_called);

  auto state = (*registry)->Find(id);
  ASSERT_NE(state, nullptr);
  for (uint64_t clock = 1; clock <= 20; ++clock) {
    {
      absl::MutexLock lock(&state->mu);
      state->last_clock = QuoteClock{clock, 1, 0};
      state->measurements.entries = clock;
    }
    (*registry)->MarkDirty(id);
    std::promise<uint64_t> seen;
    (*registry)->PersistThen(id, [&](absl::Status st) {
      EXPECT_TRUE(st.ok()) << st;
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
      sqlite3_stmt* q = nullptr;
      ASSERT_EQ(
          sqlite3_prepare_v2(db, "SELECT clock, log_entries FROM enrolled_nodes", -1, &q, nullptr),
          SQLITE_OK);
      ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
      EXPECT_EQ(sqlite3_column_int64(q, 1), sqlite3_column_int64(q, 0));
      seen.set_value(static_cast<uint64_t>(sqlite3_column_int64(q, 0)));
      sqlite3_finalize(q);
      sqlite3_close(db);
    });
    EXPECT_GE(seen.get_future().get(), clock);
  }
}

// With a commit window, a node marked shortly after another joins the other's commit: when the
// first node's state is reported durable, the second's is already in the file.
TEST_F(NodeRegistryTest, ANodeMarkedWithinTheCommitWindowJoinsTheCommitOfTheOneBefore) {
  const std::string first(64, 'a');
  const std::string second(64, 'b');
  auto registry = NodeRegistry::Open(db_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  auto ak = SoftwareAk::Create();
  ASSERT_TRUE(ak.ok()) << ak.status();
  ASSERT_TRUE((*registry)->Bind(Node(first, ak_)).ok());
  ASSERT_TRUE((*registry)->Bind(Node(second, *ak)).ok());
  // Far longer than the gap below, so a loaded machine cannot split the commit.
  (*registry)->SetCommitWindow(absl::Seconds(2));
  auto measure = [&](const std::string& id, uint64_t clock) {
    auto state = (*registry)->Find(id);
    ASSERT_NE(state, nullptr);
    {
      absl::MutexLock lock(&state->mu);
      state->last_clock = QuoteClock{clock, 1, 0};
    }
    (*registry)->MarkDirty(id);
  };
  // The clock each node has in the file, read on a connection of the test's own.
  auto stored_clocks = [&] {
    std::map<std::string, int64_t> clocks;
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT node_id, clock FROM enrolled_nodes", -1, &q, nullptr),
              SQLITE_OK);
    while (sqlite3_step(q) == SQLITE_ROW) {
      clocks[reinterpret_cast<const char*>(sqlite3_column_text(q, 0))] = sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return clocks;
  };

  measure(first, 7);
  std::promise<std::map<std::string, int64_t>> first_durable;
  (*registry)->PersistThen(first, [&](absl::Status st) {
    EXPECT_TRUE(st.ok()) << st;
    first_durable.set_value(stored_clocks());
  });
  // Without the window the first node's commit is done meanwhile, without the second.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  measure(second, 9);
  std::promise<void> second_durable;
  (*registry)->PersistThen(second, [&](absl::Status st) {
    EXPECT_TRUE(st.ok()) << st;
    second_durable.set_value();
  });
  const std::map<std::string, int64_t> seen = first_durable.get_future().get();
  second_durable.get_future().wait();
  EXPECT_EQ(seen.at(first), 7);
  EXPECT_EQ(seen.at(second), 9);
}

// A database from a version that held every node's log whole: it opens with the bounded state
// (entries, epoch, replay, the start sequence and latest policy record) and is rewritten so.
TEST_F(NodeRegistryTest, WholeLogOfAnEarlierVersionBecomesBoundedState) {
  const std::string id(64, 'a');
  std::vector<v1::MeasurementLogEntry> log;
  auto add = [&](const std::string& type) {
    v1::MeasurementLogEntry e;
    e.set_recnum(log.size());
    e.set_pcr(15);
    e.set_digest(std::string(DigestBytes(Sha256(type + std::to_string(log.size())))));
    e.set_event_type(type);
    e.set_content("c");
    log.push_back(e);
  };
  for (int boot_start = 0; boot_start < 2; ++boot_start) {
    if (boot_start == 1) add("tpm-restart");
    for (const char* type :
         {"node-start", "vigil-node-binary", "bpf-object", "bpf-program-tags", "policy-bundle"}) {
      add(type);
    }
  }
  for (int i = 0; i < 50; ++i) add("policy-bundle");
  {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    ASSERT_TRUE((*registry)->Bind(Node(id, ak_)).ok());
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "UPDATE enrolled_nodes SET clock = 5, reset_count = 1, "
                           "restart_count = 1",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    for (const v1::MeasurementLogEntry& e : log) {
      sqlite3_stmt* s = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(db,
                                   "INSERT INTO node_measurement_log(node_id, recnum, pcr, "
                                   "digest, event_type, content) VALUES(?, ?, 15, ?, ?, 'c')",
                                   -1, &s, nullptr),
                SQLITE_OK);
      sqlite3_bind_text(s, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(s, 2, static_cast<int64_t>(e.recnum()));
      sqlite3_bind_blob(s, 3, e.digest().data(), 32, SQLITE_TRANSIENT);
      sqlite3_bind_text(s, 4, e.event_type().data(), static_cast<int>(e.event_type().size()),
                        SQLITE_TRANSIENT);
      ASSERT_EQ(sqlite3_step(s), SQLITE_DONE);
      sqlite3_finalize(s);
    }
    sqlite3_close(db);
  }
  Sha256Digest epoch_pcr{};
  for (size_t i = 5; i < log.size(); ++i) {
    epoch_pcr = Sha256Concat({DigestBytes(epoch_pcr), log[i].digest()});
  }
  for (int open = 0; open < 2; ++open) {
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    auto state = (*registry)->Find(id);
    ASSERT_NE(state, nullptr);
    absl::MutexLock lock(&state->mu);
    const MeasurementState& m = state->measurements;
    EXPECT_EQ(m.entries, log.size());
    EXPECT_EQ(m.epoch_start, 5u);
    EXPECT_EQ(m.pcrs, (std::map<uint32_t, Sha256Digest>{{15, epoch_pcr}}));
    ASSERT_EQ(m.kept.size(), 6u);
    EXPECT_EQ(m.kept[0].recnum(), 6u);
    EXPECT_EQ(m.kept[0].event_type(), "node-start");
    EXPECT_EQ(m.kept[5].recnum(), log.size() - 1);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM node_measurement_log", -1, &q, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 6) << "the whole log was rewritten as the kept entries";
  sqlite3_finalize(q);
  sqlite3_close(db);
}

}  // namespace
}  // namespace vigil::verifier
