// What only the PostgreSQL store does: replicas sharing one database, outages of the server,
// connection URLs that must never show their password. The behaviour both stores share is in
// store_suite_test.cc.
#include "verifier/store/postgres_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/postgres_server.h"
#include "tests/verifier/store/store_backends.h"
#include "tests/verifier/store/store_test_util.h"
#include "verifier/store/postgres_schema.h"
#include "verifier/store/postgres_util.h"

namespace vigil::verifier {
namespace {

using testing::MakeEvidence;
using testing::MakeVerdict;
using testing::RecordDurably;
using vigil::testing::PostgresServer;

// A bound on waiting for something that must happen, so a broken build fails instead of
// hanging; never an assertion about how fast it happens.
constexpr auto kPatience = std::chrono::seconds(60);

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    absl::StatusOr<std::string> url = server_->CreateDatabase("pgstore");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
  }

  std::unique_ptr<PostgresStore> Open() {
    auto store = PostgresStore::Open(url_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  PostgresServer* server_ = nullptr;
  std::string url_;
};

TEST(PostgresUrlTest, PasswordsAreMaskedWherePresent) {
  EXPECT_EQ(pg::MaskPassword("postgresql://vigil:s3cr%40t@db.example:5433/vigil?sslmode=require"),
            "postgresql://vigil:****@db.example:5433/vigil?sslmode=require");
  EXPECT_EQ(pg::MaskPassword("postgresql://vigil@db/vigil?password=hunter2&sslmode=verify-full"),
            "postgresql://vigil@db/vigil?password=****&sslmode=verify-full");
  EXPECT_EQ(pg::MaskPassword("host=db password='a b' dbname=vigil"),
            "host=db password=**** dbname=vigil");
  EXPECT_EQ(pg::MaskPassword("postgresql://db:5432/vigil"), "postgresql://db:5432/vigil");
  // A password holding '@' unescaped: everything up to the last '@' is the userinfo.
  EXPECT_EQ(pg::MaskPassword("postgres://u:p@ss@db/x"), "postgres://u:****@db/x");
}

TEST(PostgresUrlTest, ConnectionAttemptsTimeOutUnlessTheUrlSaysOtherwise) {
  ASSERT_EQ(std::getenv("PGCONNECT_TIMEOUT"), nullptr);
  EXPECT_EQ(pg::WithDefaultConnectTimeout("postgresql://db/vigil"),
            "postgresql://db/vigil?connect_timeout=10");
  EXPECT_EQ(pg::WithDefaultConnectTimeout("postgresql://db/vigil?sslmode=require"),
            "postgresql://db/vigil?sslmode=require&connect_timeout=10");
  EXPECT_EQ(pg::WithDefaultConnectTimeout("host=db dbname=vigil"),
            "host=db dbname=vigil connect_timeout=10");
  EXPECT_EQ(pg::WithDefaultConnectTimeout("postgresql://db/vigil?connect_timeout=3"),
            "postgresql://db/vigil?connect_timeout=3");
  EXPECT_EQ(pg::WithDefaultConnectTimeout("host=db connect_timeout=2"),
            "host=db connect_timeout=2");
  // The environment's value is libpq's to apply.
  ASSERT_EQ(setenv("PGCONNECT_TIMEOUT", "4", 1), 0);
  EXPECT_EQ(pg::WithDefaultConnectTimeout("postgresql://db/vigil"), "postgresql://db/vigil");
  ASSERT_EQ(unsetenv("PGCONNECT_TIMEOUT"), 0);
}

TEST(PostgresUrlTest, DownAtStartIsAClearErrorNamingTheTarget) {
  // Port 1: nothing listens there.
  const std::string url = "postgresql://vigil:hunter2@127.0.0.1:1/fleet";
  auto store = PostgresStore::Open(url);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  const std::string message(store.status().message());
  EXPECT_NE(message.find("host \"127.0.0.1\" port 1 database \"fleet\""), std::string::npos)
      << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  EXPECT_EQ(PostgresStore::Open("sqlite:///tmp/x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PostgresStoreTest, RefusesNewerSchema) {
  { ASSERT_NE(Open(), nullptr); }
  ASSERT_TRUE(PostgresServer::Exec(url_, "INSERT INTO schema_migrations VALUES (99, 0)").ok());
  auto store = PostgresStore::Open(url_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status();
}

TEST_F(PostgresStoreTest, ReplicasStartingTogetherMigrateOnce) {
  constexpr int kReplicas = 4;
  std::vector<std::future<absl::Status>> opened;
  for (int i = 0; i < kReplicas; ++i) {
    opened.push_back(
        std::async(std::launch::async, [this] { return PostgresStore::Open(url_).status(); }));
  }
  for (auto& f : opened) EXPECT_TRUE(f.get().ok());
  absl::StatusOr<int64_t> applied =
      PostgresServer::QueryInt(url_, "SELECT COUNT(*) FROM schema_migrations");
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, pg::kSchemaVersion);
}

TEST_F(PostgresStoreTest, WatcherOnOneReplicaWakesForAnotherReplicasCommit) {
  std::unique_ptr<PostgresStore> a = Open();
  std::unique_ptr<PostgresStore> b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const std::string start = a->LatestCursor();
  std::promise<void> woke;
  std::atomic<bool> once{false};
  // Subscribed before B commits; the wake-up comes through LISTEN/NOTIFY, A never polls.
  std::unique_ptr<Subscription> subscription = a->Subscribe([&] {
    if (!once.exchange(true)) woke.set_value();
  });
  ASSERT_TRUE(RecordDurably(*b, "n1", MakeVerdict("n1", v1::TRUST_CONTRAINDICATED, 7)).ok());
  std::future<void> wake = woke.get_future();
  ASSERT_EQ(wake.wait_for(kPatience), std::future_status::ready);
  auto changes = a->ChangesAfter(start, "", 10);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->changes.size(), 1u);
  EXPECT_EQ(changes->changes[0].node_id(), "n1");
  EXPECT_EQ(changes->changes[0].status(), v1::TRUST_CONTRAINDICATED);
  EXPECT_EQ(a->LatestCursor(), b->LatestCursor());
  // A sees B's verdict as the node's latest, and the next change is against it.
  EXPECT_EQ(a->FindNode("n1")->latest_verdict.status(), v1::TRUST_CONTRAINDICATED);
  ASSERT_TRUE(RecordDurably(*a, "n1", MakeVerdict("n1", v1::TRUST_AFFIRMING, 8)).ok());
  auto next = b->ChangesAfter(changes->cursor, "", 10);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->changes.size(), 1u);
  EXPECT_EQ(next->changes[0].previous_status(), v1::TRUST_CONTRAINDICATED);
}

// Two replicas committing status changes at once while a reader follows from its cursor:
// change ids become visible in order, so the reader never steps over a change that commits
// after a greater id.
TEST_F(PostgresStoreTest, ReaderFollowingACursorMissesNoChangeOfConcurrentReplicas) {
  std::unique_ptr<PostgresStore> a = Open();
  std::unique_ptr<PostgresStore> b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  constexpr int kPerReplica = 300;
  std::atomic<bool> done{false};
  auto write = [&done](PostgresStore* store, const std::string& prefix) {
    for (int i = 0; i < kPerReplica; ++i) {
      // Alternating statuses: every verdict is a change of its node.
      const std::string node = absl::StrCat(prefix, i % 7);
      store->RecordVerdict(
          node, MakeEvidence("h", i),
          MakeVerdict(node, i % 2 == 0 ? v1::TRUST_AFFIRMING : v1::TRUST_WARNING, 1000 + i),
          nullptr);
    }
  };
  std::atomic<bool> writers_finished{false};
  std::thread writers([&] {
    std::thread wa(write, a.get(), "a");
    std::thread wb(write, b.get(), "b");
    wa.join();
    wb.join();
    EXPECT_TRUE(a->Flush().ok());
    EXPECT_TRUE(b->Flush().ok());
    writers_finished = true;
  });
  std::vector<std::string> seen;
  std::string cursor;
  auto follow = [&] {
    auto page = a->ChangesAfter(cursor, "", 50);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return false;
    for (const v1::VerdictChange& c : page->changes) seen.push_back(c.cursor());
    cursor = page->cursor;
    return !page->changes.empty();
  };
  // Follow while the writers run; each page resumes from the previous one's cursor.
  while (!done) {
    follow();
    done = seen.size() >= static_cast<size_t>(2 * kPerReplica);
    if (!done && writers_finished) break;
  }
  writers.join();
  while (follow()) {
  }
  auto all = a->ChangesAfter("", "", 10 * kPerReplica);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->changes.size(), static_cast<size_t>(2 * kPerReplica));
  std::vector<std::string> expected;
  for (const v1::VerdictChange& c : all->changes) expected.push_back(c.cursor());
  EXPECT_EQ(seen, expected);
}

TEST_F(PostgresStoreTest, NodeConnectedOnAnotherReplicaUntilThatReplicaIsGone) {
  std::unique_ptr<PostgresStore> a = Open();
  std::unique_ptr<PostgresStore> b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  b->SetConnected("n1", true);
  ASSERT_TRUE(b->Flush().ok());
  ASSERT_TRUE(a->FindNode("n1").has_value());
  EXPECT_TRUE(a->FindNode("n1")->connected);
  b.reset();  // its connections close, as when a replica is killed
  // The server ends the closed connection's backend on its own time.
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (a->FindNode("n1")->connected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(a->FindNode("n1")->connected);
}

TEST_F(PostgresStoreTest, OutageWithholdsAcknowledgementsAndLosesNothing) {
  std::unique_ptr<PostgresStore> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(RecordDurably(*store, "n1", MakeVerdict("n1", v1::TRUST_AFFIRMING, 1)).ok());
  ASSERT_TRUE(server_->Stop().ok());
  constexpr int kDuringOutage = 20;
  std::atomic<int> acknowledged{0};
  std::atomic<int> failed{0};
  for (int i = 0; i < kDuringOutage; ++i) {
    store->RecordVerdict("n1", MakeEvidence("h", i), MakeVerdict("n1", v1::TRUST_WARNING, 10 + i),
                         [&](absl::Status st) { (st.ok() ? acknowledged : failed)++; });
  }
  // Readers: the node table from this replica's last view; history is not answered.
  std::optional<NodeResultSummary> n1 = store->FindNode("n1");
  ASSERT_TRUE(n1.has_value());
  EXPECT_EQ(n1->latest_verdict.status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(store->ListNodes().size(), 1u);
  EXPECT_EQ(store->ListVerdicts(testing::Query("n1")).status().code(),
            absl::StatusCode::kUnavailable);
  // An operator's write-through call fails at once instead of waiting.
  v1::AuditRecord record;
  record.set_actor("client/alice");
  EXPECT_EQ(store->AppendAudit(record).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(acknowledged, 0);  // nothing reported durable while the server is down
  ASSERT_TRUE(server_->Start().ok());
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(acknowledged, kDuringOutage);
  EXPECT_EQ(failed, 0);
  absl::StatusOr<int64_t> rows = PostgresServer::QueryInt(url_, "SELECT COUNT(*) FROM verdicts");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, kDuringOutage + 1);
  EXPECT_EQ(store->FindNode("n1")->latest_verdict.status(), v1::TRUST_WARNING);
}

}  // namespace
}  // namespace vigil::verifier
