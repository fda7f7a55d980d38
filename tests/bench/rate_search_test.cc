#include "bench/rate_search.h"

#include <vector>

#include "gtest/gtest.h"

namespace vigil::bench {
namespace {

// Runs the search against a system that is clean up to `capacity` (inclusive); returns the
// rates tried.
std::vector<double> SearchAgainst(RateSearch& search, double capacity) {
  std::vector<double> tried;
  while (!search.done() && tried.size() < 100) {
    const double rate = search.next();
    tried.push_back(rate);
    search.Record(rate, rate <= capacity);
  }
  return tried;
}

TEST(RateSearchTest, RampsGeometricallyUntilTheFirstLoss) {
  RateSearch search(1000, 2, 1e9, 1.1);
  std::vector<double> tried = SearchAgainst(search, 5000);
  ASSERT_GE(tried.size(), 4u);
  EXPECT_EQ(tried[0], 1000);
  EXPECT_EQ(tried[1], 2000);
  EXPECT_EQ(tried[2], 4000);
  EXPECT_EQ(tried[3], 8000);
}

TEST(RateSearchTest, BisectsToTheRequestedPrecision) {
  RateSearch search(1000, 2, 1e9, 1.1);
  SearchAgainst(search, 5000);
  EXPECT_TRUE(search.done());
  EXPECT_LE(search.best_clean(), 5000);
  EXPECT_GT(search.first_lossy(), 5000);
  EXPECT_LE(search.first_lossy() / search.best_clean(), 1.1);
}

TEST(RateSearchTest, StopsCleanAtTheMaximum) {
  RateSearch search(1000, 2, 3000, 1.1);
  std::vector<double> tried = SearchAgainst(search, 1e9);
  EXPECT_EQ(tried, (std::vector<double>{1000, 2000, 3000}));
  EXPECT_EQ(search.best_clean(), 3000);
  EXPECT_EQ(search.first_lossy(), 0);
  EXPECT_EQ(search.next(), 0);
}

TEST(RateSearchTest, SearchesDownwardsWhenTheFirstRateLoses) {
  RateSearch search(1000, 2, 1e9, 1.1, /*max_down=*/4);
  std::vector<double> tried = SearchAgainst(search, 300);
  ASSERT_GE(tried.size(), 3u);
  EXPECT_EQ(tried[1], 500);
  EXPECT_EQ(tried[2], 250);
  EXPECT_LE(search.best_clean(), 300);
  EXPECT_GT(search.best_clean(), 0);
  EXPECT_LE(search.first_lossy() / search.best_clean(), 1.1);
}

TEST(RateSearchTest, GivesUpWhenNothingIsClean) {
  RateSearch search(1000, 2, 1e9, 1.1, /*max_down=*/3);
  std::vector<double> tried = SearchAgainst(search, 0);
  EXPECT_EQ(tried, (std::vector<double>{1000, 500, 250, 125}));
  EXPECT_EQ(search.best_clean(), 0);
  EXPECT_EQ(search.first_lossy(), 125);
}

TEST(RateSearchTest, EndsWhenALowerRateLosesAfterAHigherOneWasClean) {
  RateSearch search(1000, 2, 1e9, 1.1);
  search.Record(1000, true);
  search.Record(2000, true);
  search.Record(4000, false);
  ASSERT_FALSE(search.done());
  search.Record(1500, false);  // noise: lossy below a clean rate
  EXPECT_TRUE(search.done());
  EXPECT_EQ(search.best_clean(), 2000);
  EXPECT_EQ(search.first_lossy(), 1500);
}

}  // namespace
}  // namespace vigil::bench
