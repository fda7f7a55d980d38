#include "verifier/state_durable_sink.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <functional>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "common/tpm/software_ak.h"
#include "tests/testing/temp_dir.h"

namespace vigil::verifier {
namespace {

using ::vigil::tpm::SoftwareAk;

// A sink that holds each verdict's durability callback until the test releases it.
class HeldSink final : public ResultSink {
 public:
  void Record(const std::string&, const v1::Evidence&, const v1::Verdict&) override {}
  void RecordDurable(const std::string&, const v1::Evidence&, const v1::Verdict&,
                     std::function<void(absl::Status)> on_durable) override {
    held.push_back(std::move(on_durable));
  }
  void SetConnected(const std::string& node_id, bool connected) override {
    this->connected.emplace_back(node_id, connected);
  }

  std::vector<std::function<void(absl::Status)>> held;
  std::vector<std::pair<std::string, bool>> connected;
};

class StateDurableSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ::vigil::testing::TestTempDir::Create("state-sink");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    db_ = tmp_.path() + "/verifier.db";
    auto registry = NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    auto ak = SoftwareAk::Create();
    ASSERT_TRUE(ak.ok()) << ak.status();
    ASSERT_TRUE(registry_->Bind({kNode, "ek", ak->tpm2b_public, ak->name, absl::Now()}).ok());
  }

  // What an accepted appraisal does to the node's state.
  void Advance(uint64_t clock) {
    std::shared_ptr<NodeState> state = registry_->Find(kNode);
    {
      absl::MutexLock lock(&state->mu);
      state->last_clock = QuoteClock{clock, 1, 0};
      state->measurements.entries = clock;
    }
    registry_->MarkDirty(kNode);
  }

  // The clock committed to the file, read through a connection of its own.
  std::optional<int64_t> CommittedClock() const {
    sqlite3* db = nullptr;
    std::optional<int64_t> out;
    if (sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* q = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT clock FROM enrolled_nodes", -1, &q, nullptr) ==
              SQLITE_OK &&
          sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
        out = sqlite3_column_int64(q, 0);
      }
      sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return out;
  }

  static constexpr char kNode[] =
      "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
  ::vigil::testing::TestTempDir tmp_;
  std::string db_;
  std::unique_ptr<NodeRegistry> registry_;
  HeldSink inner_;
};

// Durable only when both are: the verdict (the inner sink) and the node's state (committed,
// as another connection sees it when the callback runs), in either order.
TEST_F(StateDurableSinkTest, ReportsDurableOnlyOnceVerdictAndNodeStateAre) {
  StateDurableSink sink(&inner_, registry_.get());
  for (uint64_t clock = 1; clock <= 5; ++clock) {
    Advance(clock);
    std::promise<std::pair<absl::Status, std::optional<int64_t>>> done;
    bool called = false;
    sink.RecordDurable(kNode, v1::Evidence(), v1::Verdict(), [&](absl::Status st) {
      called = true;
      done.set_value({st, CommittedClock()});
    });
    ASSERT_EQ(inner_.held.size(), 1u);
    if (clock % 2 == 0) {
      // The verdict first: nothing reported until the registry commits too.
      std::function<void(absl::Status)> verdict_durable = std::move(inner_.held.back());
      inner_.held.clear();
      verdict_durable(absl::OkStatus());
    } else {
      // The registry commits on its own thread meanwhile; still waiting for the verdict.
      ASSERT_TRUE(registry_->Flush().ok());
      EXPECT_FALSE(called);
      std::function<void(absl::Status)> verdict_durable = std::move(inner_.held.back());
      inner_.held.clear();
      verdict_durable(absl::OkStatus());
    }
    auto [status, committed] = done.get_future().get();
    EXPECT_TRUE(status.ok()) << status;
    ASSERT_TRUE(committed.has_value());
    EXPECT_GE(*committed, static_cast<int64_t>(clock));
  }
}

// A verdict the store could not keep is not durable, whatever the registry did.
TEST_F(StateDurableSinkTest, VerdictErrorIsReported) {
  StateDurableSink sink(&inner_, registry_.get());
  Advance(7);
  std::promise<absl::Status> done;
  sink.RecordDurable(kNode, v1::Evidence(), v1::Verdict(),
                     [&](absl::Status st) { done.set_value(st); });
  ASSERT_EQ(inner_.held.size(), 1u);
  inner_.held[0](absl::UnavailableError("disk full"));
  absl::Status st = done.get_future().get();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
}

// Node state the registry could not commit is not durable either: the stream must not
// acknowledge (it ends UNAVAILABLE and the node sends again).
TEST_F(StateDurableSinkTest, NodeStateErrorIsReported) {
  StateDurableSink sink(&inner_, registry_.get());
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "ALTER TABLE node_measurement_log RENAME TO aside", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  Advance(9);
  std::promise<absl::Status> done;
  sink.RecordDurable(kNode, v1::Evidence(), v1::Verdict(),
                     [&](absl::Status st) { done.set_value(st); });
  ASSERT_EQ(inner_.held.size(), 1u);
  inner_.held[0](absl::OkStatus());
  absl::Status st = done.get_future().get();
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(CommittedClock().has_value());
}

TEST_F(StateDurableSinkTest, PassesConnectionStateThrough) {
  StateDurableSink sink(&inner_, registry_.get());
  sink.SetConnected(kNode, true);
  sink.SetConnected(kNode, false);
  EXPECT_EQ(inner_.connected,
            (std::vector<std::pair<std::string, bool>>{{kNode, true}, {kNode, false}}));
}

}  // namespace
}  // namespace vigil::verifier
