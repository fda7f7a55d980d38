#include "verifier/node_registry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

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
      state->log.push_back(e);
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
  ASSERT_EQ(state->log.size(), 1u);
  EXPECT_EQ(state->log[0].content(), "/usr/bin/vigil-node");
  EXPECT_TRUE((*registry)->IsApproved(std::string(64, 'b')));
  EXPECT_FALSE((*registry)->IsApproved(id));
  EXPECT_EQ((*registry)->NodeIdForAk(ak_.name), id);
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
      state->log.push_back(e);
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
  ASSERT_EQ(state->log.size(), 1u);
}

}  // namespace
}  // namespace vigil::verifier
