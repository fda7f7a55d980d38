#include "verifier/measured_batches.h"

#include <gtest/gtest.h>

#include <string>

namespace vigil::verifier {
namespace {

std::string Digest(uint64_t n) {
  std::string d(32, '\0');
  for (int i = 0; i < 8; ++i) d[i] = static_cast<char>(n >> (8 * i));
  return d;
}

TEST(MeasuredBatchesTest, ForgetsTheOldestPendingDigestPastTheBound) {
  MeasuredBatches batches;
  uint64_t recnum = 0;
  // The first is in delivery: only pending digests count towards the bound and are forgotten.
  batches.AddMeasured(Digest(0), 0);
  ASSERT_TRUE(batches.Take(Digest(0), &recnum));
  for (uint64_t n = 1; n <= MeasuredBatches::kMaxPending + 1; ++n)
    batches.AddMeasured(Digest(n), n);
  EXPECT_EQ(batches.pending(), MeasuredBatches::kMaxPending);
  EXPECT_EQ(batches.Find(Digest(1)), nullptr);
  ASSERT_NE(batches.Find(Digest(2)), nullptr);
  ASSERT_NE(batches.Find(Digest(0)), nullptr);
  EXPECT_EQ(batches.Find(Digest(0))->state, MeasuredBatches::State::kDelivering);
  // The forgotten digest is written as removed.
  bool removal = false;
  for (const MeasuredBatches::Change& c : batches.Changes()) {
    if (c.digest == Digest(1)) removal = !c.entry.has_value();
  }
  EXPECT_TRUE(removal);
}

TEST(MeasuredBatchesTest, ADeliveryThatWasNotStoredIsPendingAgain) {
  MeasuredBatches batches;
  EXPECT_TRUE(batches.AddMeasured(Digest(1), 40));
  batches.Written(batches.Changes());
  uint64_t recnum = 0;
  ASSERT_TRUE(batches.Take(Digest(1), &recnum));
  EXPECT_EQ(recnum, 40u);
  EXPECT_FALSE(batches.Take(Digest(1), &recnum));  // not twice at once
  EXPECT_EQ(batches.pending(), 0u);
  EXPECT_TRUE(batches.Changes().empty());  // in delivery is written as pending: unchanged
  batches.Settle(Digest(1), /*stored=*/false);
  EXPECT_EQ(batches.pending(), 1u);
  ASSERT_TRUE(batches.Take(Digest(1), &recnum));
  batches.Settle(Digest(1), /*stored=*/true);
  EXPECT_EQ(batches.delivered(), 1u);
  EXPECT_EQ(batches.Find(Digest(1))->state, MeasuredBatches::State::kDelivered);
  EXPECT_FALSE(batches.Take(Digest(1), &recnum));
  // Measured again (a resent record): not new, stays delivered.
  EXPECT_FALSE(batches.AddMeasured(Digest(1), 40));
  EXPECT_EQ(batches.Find(Digest(1))->state, MeasuredBatches::State::kDelivered);
}

TEST(MeasuredBatchesTest, AChangeMadeWhileWritingIsWrittenAgain) {
  MeasuredBatches batches;
  batches.AddMeasured(Digest(1), 1);
  const std::vector<MeasuredBatches::Change> writing = batches.Changes();
  uint64_t recnum = 0;
  ASSERT_TRUE(batches.Take(Digest(1), &recnum));
  batches.Settle(Digest(1), /*stored=*/true);  // changed after the writer copied it
  batches.Written(writing);
  const std::vector<MeasuredBatches::Change> next = batches.Changes();
  ASSERT_EQ(next.size(), 1u);
  ASSERT_TRUE(next[0].entry.has_value());
  EXPECT_EQ(next[0].entry->state, MeasuredBatches::State::kDelivered);
}

TEST(MeasuredBatchesTest, ForgetsTheOldestDeliveredDigestPastTheBound) {
  MeasuredBatches batches;
  uint64_t recnum = 0;
  for (uint64_t n = 0; n <= MeasuredBatches::kMaxDelivered; ++n) {
    batches.AddMeasured(Digest(n), n);
    ASSERT_TRUE(batches.Take(Digest(n), &recnum));
    batches.Settle(Digest(n), /*stored=*/true);
  }
  EXPECT_EQ(batches.delivered(), MeasuredBatches::kMaxDelivered);
  EXPECT_EQ(batches.Find(Digest(0)), nullptr);
  EXPECT_NE(batches.Find(Digest(1)), nullptr);
}

}  // namespace
}  // namespace vigil::verifier
