#include "node/agent/spool_link.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/selector.h"
#include "node/procfs/file_hash_cache.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

using ::testing::HasSubstr;

NodeInfo Info() {
  NodeInfo info;
  info.node_id = "ab12";
  return info;
}

class SpoolLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TestTempDir::Create("spool-link");
    ASSERT_TRUE(dir.ok()) << dir.status();
    tmp_ = *std::move(dir);
    Open(1 << 20);
  }
  void Open(uint64_t max_bytes) {
    link_.reset();
    spool_.reset();
    auto spool = spool::Spool::Open({tmp_.path() + "/spool", max_bytes});
    ASSERT_TRUE(spool.ok()) << spool.status();
    spool_ = *std::move(spool);
    link_ = std::make_unique<SpoolLink>(spool_.get(), &builder_, nullptr, absl::Seconds(1));
  }

  testing::TestTempDir tmp_;
  ProcessMatcher matcher_{{*ParseSelector("pid=" + std::to_string(getpid()))}};
  FileHashCache hashes_;
  Snapshotter snapshotter_{SnapshotOptions{}, &hashes_};
  ReportBuilder builder_{Info(), &matcher_, &snapshotter_, nullptr};
  std::unique_ptr<spool::Spool> spool_;
  std::unique_ptr<SpoolLink> link_;
};

TEST_F(SpoolLinkTest, RecordsAReportOfThisNodeAsABatch) {
  ASSERT_TRUE(link_->RecordBatch(1 << 20).ok());
  ASSERT_EQ(spool_->size(), 1u);
  auto batch = spool_->Read(spool_->Sequences().front());
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->log_recnum, spool::kUnmeasured);  // no measurer: no TPM
  v1::RuntimeReport report;
  ASSERT_TRUE(report.ParseFromString(batch->payload));
  EXPECT_EQ(report.node_id(), "ab12");
  ASSERT_EQ(report.processes_size(), 1);
  EXPECT_EQ(report.processes(0).pid(), getpid());
}

TEST_F(SpoolLinkTest, SendsABatchOnlyOnceTheVerifierHoldsItsRecordAndOneAtATime) {
  ASSERT_TRUE(spool_->Append(1, /*log_recnum=*/40, 0, "first").ok());
  ASSERT_TRUE(spool_->Append(2, /*log_recnum=*/41, 0, "second").ok());
  EXPECT_FALSE(link_->NextMessage(/*log_acknowledged=*/40).has_value());
  auto first = link_->NextMessage(41);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->spool_batch().sequence(), 1u);
  EXPECT_EQ(first->spool_batch().payload(), "first");
  EXPECT_EQ(first->spool_batch().log_recnum(), 40u);
  EXPECT_FALSE(link_->NextMessage(100).has_value()) << "one batch awaits its answer";

  v1::SpoolBatchAck ack;
  ack.set_sequence(1);
  ack.set_accepted(true);
  link_->HandleAck(ack);
  EXPECT_THAT(spool_->Sequences(), ::testing::ElementsAre(2));
  EXPECT_FALSE(link_->NextMessage(41).has_value());
  auto second = link_->NextMessage(42);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->spool_batch().sequence(), 2u);
  // The stream ends unanswered: the batch is offered again on the next one.
  link_->StreamEnded();
  auto again = link_->NextMessage(42);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->spool_batch().sequence(), 2u);
}

TEST_F(SpoolLinkTest, SkipsACorruptBatch) {
  ASSERT_TRUE(spool_->Append(1, 1, 0, "torn").ok());
  ASSERT_TRUE(spool_->Append(2, 2, 0, "whole").ok());
  std::filesystem::resize_file(tmp_.path() + "/spool/" + spool::BatchFileName(1), 10);
  auto next = link_->NextMessage(100);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->spool_batch().sequence(), 2u);
  EXPECT_EQ(spool_->counters().corrupt_batches, 1u);
}

TEST_F(SpoolLinkTest, ReportsWhatTheSpoolLost) {
  v1::RuntimeReport clean;
  link_->Stamp(&clean);
  EXPECT_EQ(clean.observation_gaps_size(), 0);
  EXPECT_FALSE(clean.has_probes());

  const std::string payload(1000, 'x');
  Open(2 * spool::EncodeBatch({0, 0, 0, 0, payload}).size());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(spool_->Append(i, i, 5, payload).ok());
  v1::RuntimeReport report;
  (*report.mutable_probes()->mutable_dropped_events())["ringbuf_full"] = 2;
  link_->Stamp(&report);
  EXPECT_EQ(report.probes().dropped_events().at("spool_full"), 10u);
  EXPECT_EQ(report.probes().dropped_events().at("ringbuf_full"), 2u);
  ASSERT_EQ(report.observation_gaps_size(), 1);
  EXPECT_THAT(report.observation_gaps(0), HasSubstr("2 batches (10 events) dropped when full"));
}

}  // namespace
}  // namespace vigil::node
