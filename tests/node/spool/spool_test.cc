#include "node/spool/spool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/pki.h"
#include "node/spool/batch_format.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node::spool {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TestTempDir::Create("spool");
    ASSERT_TRUE(dir.ok()) << dir.status();
    tmp_ = *std::move(dir);
    dir_ = tmp_.path() + "/spool";
  }

  std::unique_ptr<Spool> Open(uint64_t max_bytes = 1 << 20) {
    auto spool = Spool::Open({dir_, max_bytes});
    EXPECT_TRUE(spool.ok()) << spool.status();
    return spool.ok() ? *std::move(spool) : nullptr;
  }

  testing::TestTempDir tmp_;
  std::string dir_;
};

TEST(BatchFormatTest, RoundTripsEveryField) {
  Batch batch{42, 1'700'000'000'123'456'789, 17, 3, std::string("report\0bytes", 12)};
  std::string bytes = EncodeBatch(batch);
  EXPECT_EQ(bytes.size(), kBatchHeaderBytes + 12 + kBatchTrailerBytes);
  auto decoded = DecodeBatch(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, batch);
}

TEST(BatchFormatTest, RefusesTornRottedAndForeignBytes) {
  std::string bytes = EncodeBatch({1, 2, 3, 0, "payload"});
  std::string flipped = bytes;
  flipped[kBatchHeaderBytes + 2] ^= 1;
  std::string long_claim = bytes;
  long_claim[39] = '\x7f';  // length field's top byte: far beyond the limit
  for (const std::string& bad :
       {bytes.substr(0, bytes.size() - 1), flipped, std::string("VGSPOOL0") + bytes.substr(8),
        long_claim, std::string()}) {
    auto decoded = DecodeBatch(bad);
    ASSERT_FALSE(decoded.ok());
    EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << decoded.status();
  }
}

TEST(BatchFormatTest, FileNamesSortInSequenceOrderAndParseBack) {
  EXPECT_EQ(BatchFileName(42), "00000000000000000042.batch");
  EXPECT_LT(BatchFileName(9), BatchFileName(10));
  EXPECT_EQ(ParseBatchFileName(BatchFileName(UINT64_MAX)), UINT64_MAX);
  EXPECT_EQ(ParseBatchFileName("spool.state"), std::nullopt);
  EXPECT_EQ(ParseBatchFileName("0000000000000000004x.batch"), std::nullopt);
  EXPECT_EQ(ParseBatchFileName("99999999999999999999.batch"), std::nullopt);  // > UINT64_MAX
}

TEST_F(SpoolTest, AppendsAndReadsBackInOrder) {
  auto spool = Open();
  ASSERT_NE(spool, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto seq = spool->Append(100 + i, 10 + i, i, absl::StrCat("payload ", i));
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, static_cast<uint64_t>(i + 1));
  }
  EXPECT_THAT(spool->Sequences(), ElementsAre(1, 2, 3));
  auto second = spool->Read(2);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->payload, "payload 1");
  EXPECT_EQ(second->log_recnum, 11u);
  EXPECT_EQ(second->written_unix_nano, 101);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/" + BatchFileName(3)));
}

TEST_F(SpoolTest, RemoveDeletesOnlyTheAcknowledgedBatch) {
  auto spool = Open();
  ASSERT_NE(spool, nullptr);
  ASSERT_TRUE(spool->Append(1, 1, 0, "a").ok());
  ASSERT_TRUE(spool->Append(2, 2, 0, "b").ok());
  ASSERT_TRUE(spool->Remove(1).ok());
  EXPECT_THAT(spool->Sequences(), ElementsAre(2));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/" + BatchFileName(1)));
  EXPECT_TRUE(spool->Remove(1).ok());  // already gone: nothing to do
}

TEST_F(SpoolTest, RestartKeepsBatchesCountersAndNumbering) {
  {
    auto spool = Open();
    ASSERT_NE(spool, nullptr);
    ASSERT_TRUE(spool->Append(1, 1, 0, "a").ok());
    ASSERT_TRUE(spool->Append(2, 2, 0, "b").ok());
    ASSERT_TRUE(spool->SetAside(1, "refused").ok());
  }
  auto spool = Open();
  ASSERT_NE(spool, nullptr);
  EXPECT_THAT(spool->Sequences(), ElementsAre(2));
  EXPECT_EQ(spool->counters().refused_batches, 1u);
  ASSERT_TRUE(spool->Remove(2).ok());
  auto seq = spool->Append(3, 3, 0, "c");
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 3u);  // numbers are not reused once the spool emptied
  auto reopened = Open();
  ASSERT_NE(reopened, nullptr);
  auto seq4 = reopened->Append(4, 4, 0, "d");
  ASSERT_TRUE(seq4.ok());
  EXPECT_EQ(*seq4, 4u);
}

TEST_F(SpoolTest, FullSpoolDropsOldestFirstAndCountsTheirEvents) {
  const std::string payload(1000, 'x');
  const uint64_t batch_bytes = EncodeBatch({0, 0, 0, 0, payload}).size();
  auto spool = Open(3 * batch_bytes);
  ASSERT_NE(spool, nullptr);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(spool->Append(i, i, 7, payload).ok());
  EXPECT_THAT(spool->Sequences(), ElementsAre(3, 4, 5));
  EXPECT_LE(spool->bytes(), 3 * batch_bytes);
  EXPECT_EQ(spool->counters().dropped_batches, 2u);
  EXPECT_EQ(spool->counters().dropped_events, 14u);
  // Kept across a restart: losses stay reported.
  spool.reset();
  auto reopened = Open(3 * batch_bytes);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->counters().dropped_batches, 2u);
  EXPECT_EQ(reopened->counters().dropped_events, 14u);
}

TEST_F(SpoolTest, BatchLargerThanTheBoundIsRefusedAndChangesNothing) {
  auto spool = Open(1 << 20);
  ASSERT_NE(spool, nullptr);
  ASSERT_TRUE(spool->Append(1, 1, 0, "small").ok());
  auto big = spool->Append(2, 2, 0, std::string(2 << 20, 'y'));
  EXPECT_TRUE(absl::IsResourceExhausted(big.status())) << big.status();
  EXPECT_THAT(spool->Sequences(), ElementsAre(1));
  EXPECT_EQ(spool->counters().dropped_batches, 0u);
}

TEST_F(SpoolTest, CorruptBatchIsSetAsideCountedAndSkipped) {
  auto spool = Open();
  ASSERT_NE(spool, nullptr);
  ASSERT_TRUE(spool->Append(1, 1, 0, "first").ok());
  ASSERT_TRUE(spool->Append(2, 2, 0, "second").ok());
  const std::string path = dir_ + "/" + BatchFileName(1);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);  // torn
  auto read = spool->Read(1);
  EXPECT_TRUE(absl::IsDataLoss(read.status())) << read.status();
  EXPECT_THAT(spool->Sequences(), ElementsAre(2));
  EXPECT_EQ(spool->counters().corrupt_batches, 1u);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/corrupt/" + BatchFileName(1)));
  auto next = spool->Read(2);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->payload, "second");
}

TEST_F(SpoolTest, BatchRenamedOverAnotherSequenceIsCorrupt) {
  auto spool = Open();
  ASSERT_NE(spool, nullptr);
  ASSERT_TRUE(spool->Append(1, 1, 0, "one").ok());
  ASSERT_TRUE(spool->Append(2, 2, 0, "two").ok());
  std::filesystem::copy_file(dir_ + "/" + BatchFileName(1), dir_ + "/" + BatchFileName(2),
                             std::filesystem::copy_options::overwrite_existing);
  auto read = spool->Read(2);
  EXPECT_TRUE(absl::IsDataLoss(read.status())) << read.status();
  EXPECT_THAT(read.status().message(), HasSubstr("holds batch 1"));
}

TEST_F(SpoolTest, UnwritableDirectoryIsAStartupErrorNamingThePath) {
  // Root may write anywhere a mode allows, so use places no mode opens: below a regular file,
  // and sysfs.
  ASSERT_TRUE(WritePrivateFile(tmp_.path() + "/file", "x", false).ok());
  for (const std::string& dir : {tmp_.path() + "/file/spool", std::string("/sys/vigil-spool")}) {
    auto spool = Spool::Open({dir, 1 << 20});
    ASSERT_FALSE(spool.ok()) << dir;
    EXPECT_TRUE(absl::IsFailedPrecondition(spool.status())) << spool.status();
    EXPECT_THAT(spool.status().message(), HasSubstr(dir));
  }
}

TEST_F(SpoolTest, UnreadableStateFileStartsCountersFromZero) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ + "/spool.state") << "dropped_batches lots\n";
  auto spool = Open();
  ASSERT_NE(spool, nullptr);
  EXPECT_EQ(spool->counters(), SpoolCounters{});
}

TEST(SpoolStateTest, ParsesWhatItSerializes) {
  SpoolState state{{1, 2, 3, 4}, 99};
  auto parsed = ParseSpoolState(SerializeSpoolState(state));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->counters, state.counters);
  EXPECT_EQ(parsed->next_sequence, 99u);
  EXPECT_FALSE(ParseSpoolState("dropped_batches\n").ok());
}

}  // namespace
}  // namespace vigil::node::spool
