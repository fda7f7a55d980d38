#include "bench/paired_interval.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace vigil::bench {
namespace {

TEST(PairedIntervalTest, MedianOfOddAndEvenCounts) {
  EXPECT_DOUBLE_EQ(Median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(Median({}), 0);
}

TEST(PairedIntervalTest, BootstrapIntervalContainsTheMedianAndStaysInsideTheSamples) {
  std::vector<double> samples = {1.01, 0.99, 1.02, 1.00, 0.98, 1.03, 1.00, 1.01, 0.97, 1.02, 1.00};
  Interval ci = BootstrapMedian(samples);
  EXPECT_DOUBLE_EQ(ci.estimate, 1.00);
  EXPECT_LE(ci.low, ci.estimate);
  EXPECT_GE(ci.high, ci.estimate);
  EXPECT_GE(ci.low, 0.97);
  EXPECT_LE(ci.high, 1.03);
  EXPECT_GT(ci.Width(), 0);
}

TEST(PairedIntervalTest, SameSamplesGiveTheSameIntervalAndMoreSamplesANarrowerOne) {
  std::vector<double> few, many;
  for (int i = 0; i < 9; ++i) few.push_back(1.0 + 0.01 * ((i * 7) % 9 - 4));
  for (int i = 0; i < 81; ++i) many.push_back(1.0 + 0.01 * ((i * 7) % 9 - 4));
  Interval a = BootstrapMedian(few), b = BootstrapMedian(few);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  EXPECT_LT(BootstrapMedian(many).Width(), a.Width());
}

TEST(PairedIntervalTest, SingleSampleIsAZeroWidthInterval) {
  Interval ci = BootstrapMedian({1.5});
  EXPECT_DOUBLE_EQ(ci.low, 1.5);
  EXPECT_DOUBLE_EQ(ci.high, 1.5);
}

TEST(PairedIntervalTest, PairsRatiosAndDifferencesByRound) {
  std::vector<int64_t> base = {100, 200, 400};
  std::vector<int64_t> config = {110, 210, 400};
  EXPECT_EQ(PairedRatios(config, base), (std::vector<double>{1.1, 1.05, 1.0}));
  EXPECT_EQ(PairedDifferences(config, base, 10), (std::vector<double>{1.0, 1.0, 0.0}));
}

TEST(PairedIntervalTest, BudgetIsMetOnlyWhenTheWholeIntervalIsInside) {
  EXPECT_EQ(Judge({1.000, 0.995, 1.009}, 1.01), Verdict::kMet);
  EXPECT_EQ(Judge({1.012, 1.0101, 1.02}, 1.01), Verdict::kNotMet);
  EXPECT_EQ(Judge({1.005, 0.999, 1.011}, 1.01), Verdict::kUndecided);
  EXPECT_STREQ(VerdictName(Verdict::kUndecided), "undecided");
}

TEST(PairedIntervalTest, RoundsForWidthScalesWithTheSquareOfTheExcess) {
  EXPECT_EQ(RoundsForWidth(0.005, 25, 0.01), 25);
  EXPECT_EQ(RoundsForWidth(0.02, 25, 0.01), 100);
  EXPECT_EQ(RoundsForWidth(0.01, 25, 0.01), 26);
}

}  // namespace
}  // namespace vigil::bench
