// The node registry in PostgreSQL: what one replica enrolls, approves and appraises, another
// replica sharing the database sees, and no replica moves a node's stored AK clock back.
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <string>

#include "common/digest.h"
#include "common/tpm/software_ak.h"
#include "tests/testing/postgres_server.h"
#include "verifier/node_registry.h"

namespace vigil::verifier {
namespace {

using ::vigil::testing::PostgresServer;
using ::vigil::tpm::SoftwareAk;

class NodeRegistryPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<std::string> url = (*server)->CreateDatabase("registry");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
    auto ak = SoftwareAk::Create();
    ASSERT_TRUE(ak.ok()) << ak.status();
    ak_ = std::move(*ak);
  }

  std::unique_ptr<NodeRegistry> Open() {
    auto registry = NodeRegistry::OpenPostgres(url_);
    EXPECT_TRUE(registry.ok()) << registry.status();
    return registry.ok() ? *std::move(registry) : nullptr;
  }

  EnrolledNode Node(const std::string& id, const SoftwareAk& ak) const {
    return EnrolledNode{id, "ek-public-bytes", ak.tpm2b_public, ak.name,
                        absl::FromUnixSeconds(1700000000)};
  }

  // Sets the node's clock in `registry`'s memory and waits until it is written.
  // The node's state advanced to `clock` and persisted, as an appraisal and its verdict's
  // sink do it. `commit_first`: the commit runs before the sink waits, as it usually does in
  // the Attest stream (the appraisal marks the state; the sink waits later).
  absl::Status Advance(NodeRegistry& registry, const std::string& id, uint64_t clock,
                       bool commit_first = false) {
    std::shared_ptr<NodeState> state = registry.Find(id);
    if (state == nullptr) return absl::NotFoundError(id);
    {
      absl::MutexLock lock(&state->mu);
      state->last_clock = QuoteClock{clock, 1, 0};
      state->measurements.entries = clock;
    }
    registry.MarkDirty(id);
    if (commit_first) {
      if (absl::Status st = registry.Flush(); !st.ok()) return st;
    }
    std::promise<absl::Status> done;
    registry.PersistThen(id, [&done](absl::Status st) { done.set_value(std::move(st)); });
    return done.get_future().get();
  }

  static std::optional<uint64_t> ClockOf(const NodeRegistry& registry, const std::string& id) {
    std::shared_ptr<NodeState> state = registry.Find(id);
    if (state == nullptr) return std::nullopt;
    absl::MutexLock lock(&state->mu);
    if (!state->last_clock.has_value()) return std::nullopt;
    return state->last_clock->clock;
  }

  std::string url_;
  SoftwareAk ak_;
};

TEST_F(NodeRegistryPostgresTest, PersistsBindingApprovalClockAndLogAcrossReopen) {
  const std::string id(64, 'a');
  {
    std::unique_ptr<NodeRegistry> registry = Open();
    ASSERT_NE(registry, nullptr);
    ASSERT_TRUE(registry->Bind(Node(id, ak_)).ok());
    ASSERT_TRUE(registry->Approve(std::string(64, 'b')).ok());
    auto state = registry->Find(id);
    ASSERT_NE(state, nullptr);
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
      state->measurements.kept.push_back(e);
      state->qualified_signer = "pinned qualified name";
      state->spool_batches.AddMeasured(std::string(32, '\x22'), 5);
    }
    registry->MarkDirty(id);
  }  // destruction flushes
  std::unique_ptr<NodeRegistry> registry = Open();
  ASSERT_NE(registry, nullptr);
  auto state = registry->Find(id);
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->node().ak_name, ak_.name);
  EXPECT_EQ(state->node().enrolled, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(EVP_PKEY_eq(state->ak_key(), ak_.key.get()), 1);
  {
    absl::MutexLock lock(&state->mu);
    ASSERT_TRUE(state->last_clock.has_value());
    EXPECT_EQ(state->last_clock->clock, 12345u);
    EXPECT_EQ(state->last_clock->reset_count, 3u);
    EXPECT_EQ(state->last_clock->restart_count, 2u);
    EXPECT_EQ(state->measurements.entries, 7u);
    EXPECT_EQ(state->measurements.epoch_start, 2u);
    EXPECT_EQ(state->measurements.pcrs, (std::map<uint32_t, Sha256Digest>{{15, Sha256("pcr 15")}}));
    ASSERT_EQ(state->measurements.kept.size(), 1u);
    EXPECT_EQ(state->measurements.kept[0].content(), "/usr/bin/vigil-node");
    EXPECT_EQ(state->qualified_signer, "pinned qualified name");
    const MeasuredBatches::Entry* batch = state->spool_batches.Find(std::string(32, '\x22'));
    ASSERT_NE(batch, nullptr);
    EXPECT_EQ(batch->recnum, 5u);
    EXPECT_EQ(batch->state, MeasuredBatches::State::kPending);
  }
  EXPECT_EQ(registry->NodeIdForAk("pinned qualified name"), id);
  EXPECT_TRUE(registry->IsApproved(std::string(64, 'b')));
  EXPECT_FALSE(registry->IsApproved(id));
  ASSERT_TRUE(registry->Revoke(std::string(64, 'b')).ok());
  EXPECT_FALSE(registry->IsApproved(std::string(64, 'b')));
}

TEST_F(NodeRegistryPostgresTest, WhatOneReplicaStoresAnotherSees) {
  std::unique_ptr<NodeRegistry> a = Open();
  std::unique_ptr<NodeRegistry> b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const std::string id(64, 'c');
  // Approved and enrolled at A.
  ASSERT_TRUE(a->Approve(id).ok());
  EXPECT_TRUE(b->IsApproved(id));
  ASSERT_TRUE(a->Bind(Node(id, ak_)).ok());
  EXPECT_EQ(b->NodeIdForAk(ak_.name), id);
  ASSERT_EQ(b->ListNodes().size(), 1u);
  // The node's stream starts at B: B reads the binding, then the state A appraised.
  EXPECT_EQ(b->Find(id), nullptr);
  b->Refresh(id);
  ASSERT_NE(b->Find(id), nullptr);
  ASSERT_TRUE(Advance(*a, id, 500).ok());
  b->Refresh(id);
  EXPECT_EQ(ClockOf(*b, id), 500u);
  EXPECT_EQ(b->Find(id)->node().ak_name, ak_.name);
  // Enrolled again at A with a new AK: B's next stream start takes the new binding.
  auto ak2 = SoftwareAk::Create();
  ASSERT_TRUE(ak2.ok());
  EnrolledNode again = Node(id, *ak2);
  again.enrolled = absl::FromUnixSeconds(1700000100);
  ASSERT_TRUE(a->Bind(again).ok());
  b->Refresh(id);
  EXPECT_EQ(b->Find(id)->node().ak_name, ak2->name);
  EXPECT_EQ(ClockOf(*b, id), std::nullopt);
  EXPECT_EQ(b->NodeIdForAk(ak2->name), id);
}

TEST_F(NodeRegistryPostgresTest, PersistsTheSimulatedTpmMarkForEveryReplica) {
  std::unique_ptr<NodeRegistry> a = Open();
  ASSERT_NE(a, nullptr);
  const std::string simulated(64, 's');
  const std::string real(64, 'r');
  auto ak2 = SoftwareAk::Create();
  ASSERT_TRUE(ak2.ok());
  EnrolledNode node = Node(simulated, ak_);
  node.tpm_simulated = true;
  ASSERT_TRUE(a->Bind(node).ok());
  ASSERT_TRUE(a->Bind(Node(real, *ak2)).ok());
  std::unique_ptr<NodeRegistry> b = Open();
  ASSERT_NE(b, nullptr);
  ASSERT_NE(b->Find(simulated), nullptr);
  EXPECT_TRUE(b->Find(simulated)->node().tpm_simulated);
  EXPECT_FALSE(b->Find(real)->node().tpm_simulated);
  for (const EnrolledNode& n : b->ListNodes()) {
    EXPECT_EQ(n.tpm_simulated, n.node_id == simulated) << n.node_id;
  }
}

TEST_F(NodeRegistryPostgresTest, AReplicaBehindCannotMoveTheStoredClockBack) {
  std::unique_ptr<NodeRegistry> a = Open();
  ASSERT_NE(a, nullptr);
  const std::string id(64, 'd');
  ASSERT_TRUE(a->Bind(Node(id, ak_)).ok());
  ASSERT_TRUE(Advance(*a, id, 100).ok());
  std::unique_ptr<NodeRegistry> b = Open();
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(ClockOf(*b, id), 100u);
  // B appraises a newer quote; A, behind, appraises one older than B's.
  ASSERT_TRUE(Advance(*b, id, 300).ok());
  absl::Status behind = Advance(*a, id, 200);
  EXPECT_EQ(behind.code(), absl::StatusCode::kAborted) << behind;
  // The stored clock stayed B's, and A now holds it.
  absl::StatusOr<int64_t> stored =
      PostgresServer::QueryInt(url_, "SELECT clock FROM enrolled_nodes");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, 300);
  EXPECT_EQ(ClockOf(*a, id), 300u);
  // A moving forward from there is written.
  EXPECT_TRUE(Advance(*a, id, 400).ok());
  b->Refresh(id);
  EXPECT_EQ(ClockOf(*b, id), 400u);
}

TEST_F(NodeRegistryPostgresTest, DownAtStartIsAClearError) {
  auto registry = NodeRegistry::OpenPostgres("postgresql://vigil:hunter2@127.0.0.1:1/fleet");
  ASSERT_FALSE(registry.ok());
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(registry.status().message().find("port 1"), std::string::npos);
  EXPECT_EQ(registry.status().message().find("hunter2"), std::string::npos);
}

// The refusal is remembered when the commit ran before anyone waited: the sink that waits
// afterwards is still told the state was behind, once.
TEST_F(NodeRegistryPostgresTest, AStateRefusedBeforeTheWaitIsStillNotAcknowledged) {
  std::unique_ptr<NodeRegistry> a = Open();
  ASSERT_NE(a, nullptr);
  const std::string id(64, 'e');
  ASSERT_TRUE(a->Bind(Node(id, ak_)).ok());
  ASSERT_TRUE(Advance(*a, id, 100, /*commit_first=*/true).ok());
  std::unique_ptr<NodeRegistry> b = Open();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(Advance(*b, id, 300, /*commit_first=*/true).ok());
  absl::Status behind = Advance(*a, id, 200, /*commit_first=*/true);
  EXPECT_EQ(behind.code(), absl::StatusCode::kAborted) << behind;
  EXPECT_EQ(ClockOf(*a, id), 300u);
  // Answered once: A's next appraisal, ahead of the stored clock, is acknowledged.
  EXPECT_TRUE(Advance(*a, id, 400, /*commit_first=*/true).ok());
  absl::StatusOr<int64_t> stored =
      PostgresServer::QueryInt(url_, "SELECT clock FROM enrolled_nodes");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, 400);
}

}  // namespace
}  // namespace vigil::verifier
