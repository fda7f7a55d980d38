// The store suite: every Store implementation passes the same tests (SQLite, and
// PostgreSQL on a real server the test binary starts; see tests/testing/postgres_server.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/verifier/store/store_backends.h"
#include "tests/verifier/store/store_test_util.h"

namespace vigil::verifier {
namespace {

using testing::AllVerdicts;
using testing::MakeEvidence;
using testing::MakeVerdict;
using testing::Query;
using testing::RecordDurably;

// Retention limits, applied only when the test asks.
StoreOptions Retention(absl::Duration max_age, size_t per_node) {
  StoreOptions options;
  options.retention_max_age = max_age;
  options.retention_max_verdicts_per_node = per_node;
  options.retention_interval = absl::Hours(24);
  return options;
}

VerdictQuery WithToken(std::string token) {
  VerdictQuery query;
  query.page_token = std::move(token);
  return query;
}

class StoreSuite : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<testing::StoreBackend>> backend =
        testing::MakeBackend(GetParam());
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
  }

  std::unique_ptr<Store> OpenStore(StoreOptions options = {}) {
    auto store = backend_->Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::unique_ptr<testing::StoreBackend> backend_;
};

TEST_P(StoreSuite, NodeStaysConnectedWhileAnyStreamIsOpen) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  store->SetConnected("node-a", true);
  store->SetConnected("node-a", true);  // a reconnect before the old stream ended
  store->SetConnected("node-a", false);
  EXPECT_TRUE(store->FindNode("node-a")->connected);
  store->SetConnected("node-a", false);
  EXPECT_FALSE(store->FindNode("node-a")->connected);
  store->SetConnected("node-a", false);  // an extra close does not go negative
  store->SetConnected("node-a", true);
  EXPECT_TRUE(store->FindNode("node-a")->connected);
}

TEST_P(StoreSuite, DurableCallbackRunsAfterTheCommit) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::promise<int> rows_seen;
  store->RecordVerdict(
      "node-a", MakeEvidence("host-a", 1), MakeVerdict("node-a", v1::TRUST_AFFIRMING, 5),
      [this, &rows_seen](absl::Status st) {
        EXPECT_TRUE(st.ok()) << st;
        // Another connection sees the row: it was committed before the callback ran.
        absl::StatusOr<int64_t> rows = backend_->QueryInt("SELECT COUNT(*) FROM verdicts");
        rows_seen.set_value(rows.ok() ? static_cast<int>(*rows) : -1);
      });
  EXPECT_EQ(rows_seen.get_future().get(), 1);
  EXPECT_EQ(store->FindNode("node-a")->latest_verdict.status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(store->FindNode("node-a")->hostname, "host-a");
}

// NodeNames: ListNodes' nodes, by id and the hostname of their latest report, in node_id order;
// a node that only connected has no hostname yet.
TEST_P(StoreSuite, NodeNamesListsEveryNodeWithItsLatestHostname) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(RecordDurably(*store, "node-b", MakeVerdict("node-b", v1::TRUST_AFFIRMING, 1)).ok());
  ASSERT_TRUE(RecordDurably(*store, "node-a", MakeVerdict("node-a", v1::TRUST_WARNING, 2)).ok());
  store->SetConnected("node-c", true);
  ASSERT_TRUE(store->Flush().ok());
  std::vector<std::pair<std::string, std::string>> names;
  for (const NodeName& n : store->NodeNames()) names.emplace_back(n.node_id, n.hostname);
  EXPECT_EQ(names, (std::vector<std::pair<std::string, std::string>>{
                       {"node-a", "host-node-a"}, {"node-b", "host-node-b"}, {"node-c", ""}}));
  std::vector<std::string> listed;
  for (const NodeResultSummary& n : store->ListNodes()) listed.push_back(n.node_id);
  EXPECT_EQ(listed, (std::vector<std::string>{"node-a", "node-b", "node-c"}));
  // The next report's hostname replaces the one before.
  v1::Verdict renamed = MakeVerdict("node-a", v1::TRUST_AFFIRMING, 3);
  std::promise<absl::Status> done;
  store->RecordVerdict("node-a", MakeEvidence("renamed", 9), renamed,
                       [&done](absl::Status st) { done.set_value(std::move(st)); });
  ASSERT_TRUE(done.get_future().get().ok());
  EXPECT_EQ(store->NodeNames().front().hostname, "renamed");
}

// A verdict about a batch the node spooled during an outage is history only: the node's
// latest verdict and its status stay those of its live reports.
TEST_P(StoreSuite, SpooledBatchVerdictsJoinTheHistoryButNeverBecomeTheLatest) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(RecordDurably(*store, "a", MakeVerdict("a", v1::TRUST_CONTRAINDICATED, 10)).ok());
  const std::string cursor = store->LatestCursor();
  v1::Verdict spooled = MakeVerdict("a", v1::TRUST_AFFIRMING, 20);
  spooled.set_from_spool(true);
  ASSERT_TRUE(RecordDurably(*store, "a", spooled).ok());
  EXPECT_EQ(store->FindNode("a")->latest_verdict.status(), v1::TRUST_CONTRAINDICATED);
  EXPECT_EQ(store->LatestCursor(), cursor);  // no status change was logged
  std::vector<v1::Verdict> history = AllVerdicts(*store, Query("a"));
  ASSERT_EQ(history.size(), 2u);
  EXPECT_TRUE(history[0].from_spool());
  EXPECT_EQ(history[0].status(), v1::TRUST_AFFIRMING);
  // The next live verdict is compared with the last live one: no change from the batch.
  ASSERT_TRUE(RecordDurably(*store, "a", MakeVerdict("a", v1::TRUST_AFFIRMING, 30)).ok());
  EXPECT_EQ(store->FindNode("a")->latest_verdict.appraised_unix_nano(), 30);
}

TEST_P(StoreSuite, ListVerdictsFilters) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  using testing::WorkloadSpec;
  ASSERT_TRUE(RecordDurably(*store, "a",
                            MakeVerdict("a", v1::TRUST_WARNING, 10,
                                        {{"w1", "web", v1::TRUST_WARNING},
                                         {"w2", "db", v1::TRUST_AFFIRMING}}))
                  .ok());
  ASSERT_TRUE(
      RecordDurably(*store, "a",
                    MakeVerdict("a", v1::TRUST_AFFIRMING, 20, {{"w1", "web", v1::TRUST_AFFIRMING}}))
          .ok());
  ASSERT_TRUE(RecordDurably(*store, "b",
                            MakeVerdict("b", v1::TRUST_CONTRAINDICATED, 30,
                                        {{"w9", "web", v1::TRUST_CONTRAINDICATED}}))
                  .ok());
  ASSERT_TRUE(RecordDurably(*store, "b", MakeVerdict("b", v1::TRUST_REJECTED, 40)).ok());

  auto times = [](const std::vector<v1::Verdict>& vs) {
    std::vector<int64_t> out;
    for (const v1::Verdict& v : vs) out.push_back(v.appraised_unix_nano());
    return out;
  };
  EXPECT_EQ(times(AllVerdicts(*store, Query())), (std::vector<int64_t>{40, 30, 20, 10}));
  EXPECT_EQ(times(AllVerdicts(*store, Query("a"))), (std::vector<int64_t>{20, 10}));
  // By workload name or id.
  EXPECT_EQ(times(AllVerdicts(*store, Query("", "web"))), (std::vector<int64_t>{30, 20, 10}));
  EXPECT_EQ(times(AllVerdicts(*store, Query("", "w2"))), (std::vector<int64_t>{10}));
  // With a workload, statuses are the workload's.
  EXPECT_EQ(times(AllVerdicts(*store, Query("", "web", {v1::TRUST_AFFIRMING}))),
            (std::vector<int64_t>{20}));
  EXPECT_EQ(times(AllVerdicts(*store, Query("a", "web", {v1::TRUST_WARNING}))),
            (std::vector<int64_t>{10}));
  EXPECT_EQ(
      times(AllVerdicts(*store, Query("", "", {v1::TRUST_REJECTED, v1::TRUST_CONTRAINDICATED}))),
      (std::vector<int64_t>{40, 30}));
  EXPECT_EQ(times(AllVerdicts(*store, Query("", "", {}, 20, 40))), (std::vector<int64_t>{30, 20}));
  EXPECT_TRUE(AllVerdicts(*store, Query("nobody")).empty());
  auto in_range = VerdictsInRange(*store, 10, 31, 100);
  ASSERT_TRUE(in_range.ok()) << in_range.status();
  EXPECT_EQ(times(*in_range), (std::vector<int64_t>{10, 20, 30}));
  EXPECT_EQ(VerdictsInRange(*store, 0, 0, 3).status().code(), absl::StatusCode::kResourceExhausted);

  EXPECT_EQ(store->ListVerdicts(WithToken("garbage")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->ListVerdicts(Query("", "", {static_cast<v1::TrustStatus>(77)})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreSuite, PagesAreStableWhileVerdictsArrive) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  constexpr uint64_t kStored = 250;
  for (uint64_t i = 1; i <= kStored; ++i) {
    // Equal appraisal times in pairs: the row id breaks the tie.
    store->RecordVerdict(
        "a", MakeEvidence("h", i),
        MakeVerdict("a", v1::TRUST_AFFIRMING, static_cast<int64_t>((i + 1) / 2), {}, i), nullptr);
  }
  ASSERT_TRUE(store->Flush().ok());
  // Newer verdicts keep arriving while the pages are read.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t i = 1; !stop; ++i) {
      store->RecordVerdict(
          "a", MakeEvidence("h", i),
          MakeVerdict("a", v1::TRUST_WARNING, 1000000 + static_cast<int64_t>(i), {}, 1000 + i),
          nullptr);
      if (i % 16 == 0) {
        EXPECT_TRUE(store->Flush().ok());
      }
    }
  });
  std::vector<int64_t> times;
  std::set<uint64_t> sequences;
  size_t pages = 0;
  VerdictQuery query = Query("a", "", {}, 0, 0, 7);
  do {
    auto page = store->ListVerdicts(query);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_LE(page->verdicts.size(), 7u);
    for (const v1::Verdict& v : page->verdicts) {
      times.push_back(v.appraised_unix_nano());
      EXPECT_TRUE(sequences.insert(v.report_sequence()).second)
          << "verdict " << v.report_sequence() << " listed twice";
    }
    query.page_token = page->next_page_token;
    ++pages;
  } while (!query.page_token.empty());
  stop = true;
  writer.join();
  EXPECT_GE(pages, kStored / 7);
  // Newest first throughout, and every verdict stored before the listing began is there.
  EXPECT_TRUE(std::is_sorted(times.rbegin(), times.rend()));
  for (uint64_t i = 1; i <= kStored; ++i) EXPECT_EQ(sequences.count(i), 1u) << i;
}

// Verdicts are stored compact (store_internal.h, EncodeStoredVerdict): every way a stored
// verdict is read gives back the verdict that was recorded, rule outcomes included.
TEST_P(StoreSuite, AVerdictWithRuleOutcomesReadsBackAsRecordedEverywhere) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string cursor = store->LatestCursor();
  const v1::Verdict verdict = testing::WithRuleOutcomes(
      MakeVerdict("a", v1::TRUST_WARNING, 77,
                  {{"w1", "agent", v1::TRUST_WARNING}, {"w2", "runner", v1::TRUST_AFFIRMING}}, 3));
  ASSERT_TRUE(RecordDurably(*store, "a", verdict).ok());
  auto same = [&verdict](const v1::Verdict& read, const char* how) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(read, verdict))
        << how << ": " << read.DebugString();
  };
  ASSERT_TRUE(store->FindNode("a").has_value());
  same(store->FindNode("a")->latest_verdict, "FindNode");
  absl::StatusOr<VerdictPage> page = store->ListVerdicts(Query("a"));
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->verdicts.size(), 1u);
  same(page->verdicts[0], "ListVerdicts");
  absl::StatusOr<LatestResult> latest = store->Latest("a");
  ASSERT_TRUE(latest.ok()) << latest.status();
  same(latest->verdict, "Latest");
  absl::StatusOr<ChangesPage> changes = store->ChangesAfter(cursor, "a", 10);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_FALSE(changes->changes.empty());
  same(changes->changes.back().verdict(), "ChangesAfter");
  // And after the store is opened again (its node cache is read back from the file).
  store.reset();
  store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->FindNode("a").has_value());
  same(store->FindNode("a")->latest_verdict, "FindNode after reopening");
  std::vector<NodeResultSummary> nodes = store->ListNodes();
  ASSERT_EQ(nodes.size(), 1u);
  same(nodes[0].latest_verdict, "ListNodes after reopening");
}

TEST_P(StoreSuite, AVerdictPageEndsBeforeItsByteBudget) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  constexpr uint64_t kStored = 10;
  size_t verdict_bytes = 0;
  for (uint64_t i = 1; i <= kStored; ++i) {
    v1::Verdict v = MakeVerdict("a", v1::TRUST_AFFIRMING, static_cast<int64_t>(i), {}, i);
    verdict_bytes = std::max(verdict_bytes, v.ByteSizeLong());
    store->RecordVerdict("a", MakeEvidence("h", i), std::move(v), nullptr);
  }
  ASSERT_TRUE(store->Flush().ok());

  // Every page's report sequences, newest first, with `max_bytes`.
  auto pages = [&store](size_t max_bytes) {
    std::vector<std::vector<uint64_t>> out;
    VerdictQuery query;
    query.max_bytes = max_bytes;
    do {
      absl::StatusOr<VerdictPage> page = store->ListVerdicts(query);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok() || out.size() > kStored) break;
      std::vector<uint64_t>& sequences = out.emplace_back();
      for (const v1::Verdict& v : page->verdicts) sequences.push_back(v.report_sequence());
      query.page_token = page->next_page_token;
    } while (!query.page_token.empty());
    return out;
  };
  EXPECT_EQ(pages(0), (std::vector<std::vector<uint64_t>>{{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}}));
  // Room for three verdicts with their framing, not four.
  EXPECT_EQ(pages(3 * (verdict_bytes + 6)),
            (std::vector<std::vector<uint64_t>>{{10, 9, 8}, {7, 6, 5}, {4, 3, 2}, {1}}));
  // A budget smaller than one verdict still lists one per page, never an empty page.
  std::vector<std::vector<uint64_t>> single;
  for (uint64_t i = kStored; i >= 1; --i) single.push_back({i});
  EXPECT_EQ(pages(1), single);
}

TEST_P(StoreSuite, WatchSeesEveryChangeOnceAndResumes) {
  std::vector<v1::VerdictChange> expected_order;
  {
    std::unique_ptr<Store> store = OpenStore();
    ASSERT_NE(store, nullptr);
    std::promise<void> notified;
    std::atomic<bool> once{false};
    std::unique_ptr<Subscription> subscription = store->Subscribe([&] {
      if (!once.exchange(true)) notified.set_value();
    });
    using W = testing::WorkloadSpec;
    // node a: new (change), same (none), workload w1 worse (node + workload change).
    ASSERT_TRUE(RecordDurably(
                    *store, "a",
                    MakeVerdict("a", v1::TRUST_AFFIRMING, 1, {W{"w1", "web", v1::TRUST_AFFIRMING}}))
                    .ok());
    notified.get_future().wait();
    subscription.reset();
    ASSERT_TRUE(RecordDurably(
                    *store, "a",
                    MakeVerdict("a", v1::TRUST_AFFIRMING, 2, {W{"w1", "web", v1::TRUST_AFFIRMING}}))
                    .ok());
    ASSERT_TRUE(RecordDurably(*store, "b", MakeVerdict("b", v1::TRUST_REJECTED, 3)).ok());
    ASSERT_TRUE(
        RecordDurably(*store, "a",
                      MakeVerdict("a", v1::TRUST_WARNING, 4, {W{"w1", "web", v1::TRUST_WARNING}}))
            .ok());
    auto all = store->ChangesAfter("", "", 1000);
    ASSERT_TRUE(all.ok()) << all.status();
    // a: node UNSPECIFIED->AFFIRMING, w1 UNSPECIFIED->AFFIRMING; b: ->REJECTED;
    // a: node AFFIRMING->WARNING, w1 AFFIRMING->WARNING.
    ASSERT_EQ(all->changes.size(), 5u);
    EXPECT_EQ(all->changes[0].node_id(), "a");
    EXPECT_EQ(all->changes[0].workload_id(), "");
    EXPECT_EQ(all->changes[0].status(), v1::TRUST_AFFIRMING);
    EXPECT_EQ(all->changes[1].workload_id(), "w1");
    EXPECT_EQ(all->changes[1].workload_name(), "web");
    EXPECT_EQ(all->changes[2].node_id(), "b");
    EXPECT_EQ(all->changes[3].previous_status(), v1::TRUST_AFFIRMING);
    EXPECT_EQ(all->changes[3].status(), v1::TRUST_WARNING);
    EXPECT_EQ(all->changes[3].verdict().appraised_unix_nano(), 4);
    EXPECT_EQ(all->changes[4].workload_id(), "w1");
    EXPECT_EQ(all->cursor, all->changes[4].cursor());
    EXPECT_EQ(store->LatestCursor(), all->cursor);
    expected_order = all->changes;

    // Two at a time, resuming from each page's cursor: the same changes, once each.
    std::vector<std::string> cursors;
    std::string cursor;
    for (;;) {
      auto page = store->ChangesAfter(cursor, "", 2);
      ASSERT_TRUE(page.ok()) << page.status();
      if (page->changes.empty()) break;
      for (const v1::VerdictChange& c : page->changes) cursors.push_back(c.cursor());
      cursor = page->cursor;
    }
    ASSERT_EQ(cursors.size(), 5u);
    for (size_t i = 0; i < cursors.size(); ++i) EXPECT_EQ(cursors[i], expected_order[i].cursor());
    // One node's changes only.
    auto only_b = store->ChangesAfter("", "b", 100);
    ASSERT_TRUE(only_b.ok());
    ASSERT_EQ(only_b->changes.size(), 1u);
    EXPECT_EQ(only_b->changes[0].cursor(), expected_order[2].cursor());
    EXPECT_EQ(store->ChangesAfter("not-a-cursor", "", 10).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  // After a restart: the last statuses are remembered (no change for the same status) and
  // the cursor keeps increasing.
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string resume = expected_order.back().cursor();
  EXPECT_EQ(store->LatestCursor(), resume);
  ASSERT_TRUE(RecordDurably(*store, "b", MakeVerdict("b", v1::TRUST_REJECTED, 5)).ok());
  auto none = store->ChangesAfter(resume, "", 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->changes.empty());
  EXPECT_EQ(none->cursor, resume);
  ASSERT_TRUE(RecordDurably(*store, "b", MakeVerdict("b", v1::TRUST_AFFIRMING, 6)).ok());
  auto next = store->ChangesAfter(resume, "", 10);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->changes.size(), 1u);
  EXPECT_EQ(next->changes[0].previous_status(), v1::TRUST_REJECTED);
  EXPECT_EQ(next->changes[0].status(), v1::TRUST_AFFIRMING);
}

TEST_P(StoreSuite, RetentionByAgeKeepsEachNodesLatest) {
  const int64_t now = absl::ToUnixNanos(absl::Now());
  const int64_t hour = absl::ToInt64Nanoseconds(absl::Hours(1));
  std::unique_ptr<Store> store = OpenStore(Retention(absl::Hours(1), 0));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      RecordDurably(*store, "a", MakeVerdict("a", v1::TRUST_REJECTED, now - 3 * hour)).ok());
  ASSERT_TRUE(
      RecordDurably(*store, "a", MakeVerdict("a", v1::TRUST_AFFIRMING, now - 2 * hour)).ok());
  ASSERT_TRUE(RecordDurably(*store, "a", MakeVerdict("a", v1::TRUST_WARNING, now)).ok());
  // b's only verdict is old, and stays: it is b's latest.
  ASSERT_TRUE(
      RecordDurably(*store, "b", MakeVerdict("b", v1::TRUST_AFFIRMING, now - 5 * hour)).ok());
  auto before = store->ChangesAfter("", "", 100);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->changes.size(), 4u);

  auto deleted = store->ApplyRetention();
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->verdicts, 2u);
  // Changes go as an oldest-first prefix, up to the first one inside the window.
  EXPECT_EQ(deleted->changes, 2u);
  std::vector<v1::Verdict> left = AllVerdicts(*store, Query());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].appraised_unix_nano(), now);
  EXPECT_EQ(left[1].node_id(), "b");
  EXPECT_EQ(store->Latest("b")->verdict.appraised_unix_nano(), now - 5 * hour);
  // A watcher resuming from a pruned change is told, not silently skipped ahead.
  EXPECT_EQ(store->ChangesAfter(before->changes[0].cursor(), "", 10).status().code(),
            absl::StatusCode::kOutOfRange);
  auto kept = store->ChangesAfter(before->changes[1].cursor(), "", 10);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->changes.size(), 2u);
  auto again = store->ApplyRetention();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->verdicts + again->changes, 0u);
}

TEST_P(StoreSuite, RetentionPerNodeKeepsTheNewest) {
  std::unique_ptr<Store> store = OpenStore(Retention(absl::ZeroDuration(), 3));
  ASSERT_NE(store, nullptr);
  for (int i = 1; i <= 10; ++i) {
    store->RecordVerdict("a", MakeEvidence("h", i), MakeVerdict("a", v1::TRUST_AFFIRMING, i),
                         nullptr);
  }
  store->RecordVerdict("b", MakeEvidence("h", 1), MakeVerdict("b", v1::TRUST_AFFIRMING, 1),
                       nullptr);
  ASSERT_TRUE(store->Flush().ok());
  auto deleted = store->ApplyRetention();
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->verdicts, 7u);
  std::vector<v1::Verdict> left = AllVerdicts(*store, Query("a"));
  ASSERT_EQ(left.size(), 3u);
  EXPECT_EQ(left[0].appraised_unix_nano(), 10);
  EXPECT_EQ(left[2].appraised_unix_nano(), 8);
  EXPECT_EQ(AllVerdicts(*store, Query("b")).size(), 1u);
}

TEST_P(StoreSuite, PolicyRevisionsMustIncrease) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  v1::PolicyInfo p;
  p.set_name("web");
  p.set_revision(2);
  p.set_sha256("aa");
  p.set_yaml("rev: 2");
  p.set_updated_by("alice");
  auto stored = store->PutPolicy(p);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_NE(stored->updated_unix_nano(), 0);
  p.set_revision(2);
  EXPECT_EQ(store->PutPolicy(p).status().code(), absl::StatusCode::kFailedPrecondition);
  p.set_revision(1);
  EXPECT_EQ(store->PutPolicy(p).status().code(), absl::StatusCode::kFailedPrecondition);
  p.set_revision(0);
  EXPECT_EQ(store->PutPolicy(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.set_revision(5);
  p.set_yaml("rev: 5");
  ASSERT_TRUE(store->PutPolicy(p).ok());
  v1::PolicyInfo other;
  other.set_name("db");
  other.set_revision(1);
  ASSERT_TRUE(store->PutPolicy(other).ok());

  auto current = store->ListPolicies();
  ASSERT_TRUE(current.ok()) << current.status();
  ASSERT_EQ(current->size(), 2u);
  EXPECT_EQ((*current)[0].name(), "db");
  EXPECT_EQ((*current)[1].revision(), 5u);
  EXPECT_EQ((*current)[1].yaml(), "rev: 5");
  auto revisions = store->PolicyRevisions("web");
  ASSERT_TRUE(revisions.ok());
  ASSERT_EQ(revisions->size(), 2u);
  EXPECT_EQ((*revisions)[1].revision(), 2u);
  EXPECT_EQ((*revisions)[1].updated_by(), "alice");
  EXPECT_EQ(store->PolicyRevisions("none").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreSuite, RevocationPersistsUntilCleared) {
  {
    std::unique_ptr<Store> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->RevokeNode("a", "operator/alice", "stolen disk").ok());
    std::optional<NodeResultSummary> a = store->FindNode("a");
    ASSERT_TRUE(a.has_value());
    EXPECT_TRUE(a->revoked);
  }
  {
    std::unique_ptr<Store> store = OpenStore();
    ASSERT_NE(store, nullptr);
    std::optional<NodeResultSummary> a = store->FindNode("a");
    ASSERT_TRUE(a.has_value());
    EXPECT_TRUE(a->revoked);
    EXPECT_EQ(a->revoked_by, "operator/alice");
    EXPECT_EQ(a->revoked_reason, "stolen disk");
    EXPECT_NE(a->revoked_unix_nano, 0);
    ASSERT_TRUE(store->ClearRevocation("a").ok());
    EXPECT_FALSE(store->FindNode("a")->revoked);
  }
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->FindNode("a")->revoked);
  EXPECT_TRUE(store->FindNode("a")->revoked_by.empty());
}

TEST_P(StoreSuite, AuditLogIsAppendOnlyAndPaginated) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (int i = 1; i <= 5; ++i) {
    v1::AuditRecord r;
    r.set_time_unix_nano(i == 5 ? 3 : i);  // two records at the same time
    r.set_actor("client/alice");
    r.set_action("node.revoke");
    r.set_target("node-" + std::to_string(i));
    ASSERT_TRUE(store->AppendAudit(r).ok());
  }
  std::vector<std::string> targets;
  std::string token;
  int pages = 0;
  do {
    auto page = store->ListAudit(2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::AuditRecord& r : page->records) targets.push_back(r.target());
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(targets, (std::vector<std::string>{"node-4", "node-5", "node-3", "node-2", "node-1"}));
  // Append-only in the database itself.
  EXPECT_FALSE(backend_->Exec("DELETE FROM audit_log").ok());
  EXPECT_FALSE(backend_->Exec("UPDATE audit_log SET actor = 'x'").ok());
  EXPECT_EQ(store->ListAudit(0, "")->records.size(), 5u);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreSuite, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace vigil::verifier
