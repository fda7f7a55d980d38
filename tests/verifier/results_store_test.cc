#include "verifier/results_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/temp_dir.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

class ResultsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ::vigil::testing::TestTempDir::Create("results-store");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = *std::move(tmp);
    dir_ = tmp_.path();
    db_path_ = dir_ + "/state/vigil.db";
  }

  static v1::Evidence MakeEvidence(const std::string& hostname, uint64_t sequence) {
    v1::RuntimeReport report;
    report.set_hostname(hostname);
    report.set_sequence(sequence);
    v1::Evidence evidence;
    evidence.set_nonce(std::string(32, static_cast<char>(sequence)));
    evidence.set_payload(report.SerializeAsString());
    evidence.mutable_quote()->set_attest("attest-" + std::to_string(sequence));
    return evidence;
  }
  static v1::Verdict MakeVerdict(v1::TrustStatus status, int64_t when) {
    v1::Verdict verdict;
    verdict.set_status(status);
    verdict.set_appraised_unix_nano(when);
    if (status == v1::TRUST_REJECTED) verdict.add_reasons(v1::SIGNATURE_INVALID);
    return verdict;
  }

  ::vigil::testing::TestTempDir tmp_;
  std::string dir_;
  std::string db_path_;
};

constexpr char kNodeA[] = "aaaa";
constexpr char kNodeB[] = "bbbb";

TEST_F(ResultsStoreTest, KeepsLatestEvidenceAndVerdictPerNode) {
  auto store = ResultsStore::Open(db_path_);
  ASSERT_TRUE(store.ok()) << store.status();
  (*store)->Record(kNodeA, MakeEvidence("host-a", 1), MakeVerdict(v1::TRUST_AFFIRMING, 1));
  (*store)->Record(kNodeA, MakeEvidence("host-a", 2), MakeVerdict(v1::TRUST_REJECTED, 2));
  (*store)->Record(kNodeB, MakeEvidence("host-b", 7), MakeVerdict(v1::TRUST_WARNING, 3));

  auto latest = (*store)->Latest(kNodeA);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->evidence.quote().attest(), "attest-2");
  EXPECT_EQ(latest->verdict.status(), v1::TRUST_REJECTED);
  ASSERT_EQ(latest->verdict.reasons_size(), 1);
  EXPECT_EQ(latest->verdict.reasons(0), v1::SIGNATURE_INVALID);

  // The same answer once it is on disk, read back through SQLite.
  ASSERT_TRUE((*store)->Flush().ok());
  latest = (*store)->Latest(kNodeB);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->evidence.quote().attest(), "attest-7");
  EXPECT_EQ(latest->verdict.status(), v1::TRUST_WARNING);
}

TEST_F(ResultsStoreTest, LatestOfUnknownNodeIsNotFound) {
  auto store = ResultsStore::Open(db_path_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Latest("nobody").status().code(), absl::StatusCode::kNotFound);
  // A node that connected but never reported has no evidence either.
  (*store)->SetConnected(kNodeA, true);
  ASSERT_TRUE((*store)->Flush().ok());
  EXPECT_EQ((*store)->Latest(kNodeA).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ResultsStoreTest, HistoryIsBoundedAndNewestFirst) {
  auto store = ResultsStore::Open(db_path_, ResultsStore::Options{.history_per_node = 3});
  ASSERT_TRUE(store.ok()) << store.status();
  for (int i = 1; i <= 5; ++i) {
    (*store)->Record(kNodeA, MakeEvidence("h", i), MakeVerdict(v1::TRUST_AFFIRMING, i));
    // Flush between some records so trimming runs across several transactions.
    if (i % 2 == 0) {
      ASSERT_TRUE((*store)->Flush().ok());
    }
  }
  (*store)->Record(kNodeB, MakeEvidence("h", 9), MakeVerdict(v1::TRUST_WARNING, 9));
  auto history = (*store)->History(kNodeA, 10);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].appraised_unix_nano(), 5);
  EXPECT_EQ((*history)[1].appraised_unix_nano(), 4);
  EXPECT_EQ((*history)[2].appraised_unix_nano(), 3);
  history = (*store)->History(kNodeA, 1);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].appraised_unix_nano(), 5);
  history = (*store)->History(kNodeB, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].status(), v1::TRUST_WARNING);
}

TEST_F(ResultsStoreTest, SurvivesReopenWithNodesDisconnected) {
  {
    auto store = ResultsStore::Open(db_path_);
    ASSERT_TRUE(store.ok()) << store.status();
    (*store)->SetConnected(kNodeA, true);
    (*store)->Record(kNodeA, MakeEvidence("host-a", 1), MakeVerdict(v1::TRUST_AFFIRMING, 11));
    (*store)->Record(kNodeA, MakeEvidence("host-a", 2), MakeVerdict(v1::TRUST_WARNING, 12));
    // No Flush: the destructor must write what is pending.
  }
  auto store = ResultsStore::Open(db_path_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto summary = (*store)->FindNode(kNodeA);
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->hostname, "host-a");
  EXPECT_FALSE(summary->connected);
  EXPECT_EQ(summary->latest_verdict.status(), v1::TRUST_WARNING);
  EXPECT_GT(summary->last_seen_unix_nano, 0);
  auto latest = (*store)->Latest(kNodeA);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->evidence.quote().attest(), "attest-2");
  auto history = (*store)->History(kNodeA, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].appraised_unix_nano(), 11);
}

TEST_F(ResultsStoreTest, TracksConnectedStateAndHostname) {
  auto store = ResultsStore::Open(db_path_);
  ASSERT_TRUE(store.ok()) << store.status();
  (*store)->SetConnected(kNodeA, true);
  auto summary = (*store)->FindNode(kNodeA);
  ASSERT_TRUE(summary.has_value());
  EXPECT_TRUE(summary->connected);
  EXPECT_EQ(summary->latest_verdict.status(), v1::TRUST_STATUS_UNSPECIFIED);

  (*store)->Record(kNodeA, MakeEvidence("worker-7", 1), MakeVerdict(v1::TRUST_AFFIRMING, 1));
  ASSERT_TRUE((*store)->Flush().ok());
  (*store)->SetConnected(kNodeA, false);
  (*store)->SetConnected(kNodeB, true);
  std::vector<NodeResultSummary> nodes = (*store)->ListNodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].node_id, kNodeA);
  EXPECT_EQ(nodes[0].hostname, "worker-7");
  EXPECT_FALSE(nodes[0].connected);
  EXPECT_EQ(nodes[0].latest_verdict.status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(nodes[1].node_id, kNodeB);
  EXPECT_TRUE(nodes[1].connected);
}

TEST_F(ResultsStoreTest, CreatesDatabaseReadableOnlyByOwner) {
  auto store = ResultsStore::Open(db_path_);
  ASSERT_TRUE(store.ok()) << store.status();
  struct stat st {};
  ASSERT_EQ(stat(db_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ResultsStoreTest, RefusesNewerSchema) {
  { ASSERT_TRUE(ResultsStore::Open(db_path_).ok()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE results_schema SET version = 99", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = ResultsStore::Open(db_path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ResultsStoreTest, ConcurrentRecordsAllLand) {
  auto store = ResultsStore::Open(db_path_);
  ASSERT_TRUE(store.ok()) << store.status();
  constexpr int kThreads = 4;
  constexpr int kReports = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string node = "node-" + std::to_string(t);
      (*store)->SetConnected(node, true);
      for (int i = 1; i <= kReports; ++i) {
        (*store)->Record(node, MakeEvidence(node, i), MakeVerdict(v1::TRUST_AFFIRMING, i));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE((*store)->Flush().ok());
  EXPECT_EQ((*store)->ListNodes().size(), static_cast<size_t>(kThreads));
  for (int t = 0; t < kThreads; ++t) {
    const std::string node = "node-" + std::to_string(t);
    auto latest = (*store)->Latest(node);
    ASSERT_TRUE(latest.ok()) << latest.status();
    EXPECT_EQ(latest->evidence.quote().attest(), "attest-" + std::to_string(kReports));
    auto history = (*store)->History(node, 1000);
    ASSERT_TRUE(history.ok());
    ASSERT_EQ(history->size(), 50u);
    for (int i = 0; i < kReports; ++i) {
      EXPECT_EQ((*history)[i].appraised_unix_nano(), kReports - i);
    }
  }
}

}  // namespace
}  // namespace vigil::verifier
