#include "node/agent/report_builder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {
namespace {

// The serialized size of `gaps` as RuntimeReport.observation_gaps.
size_t SerializedSize(const std::vector<std::string>& gaps) {
  v1::RuntimeReport r;
  for (const std::string& g : gaps) r.add_observation_gaps(g);
  return r.ByteSizeLong();
}

std::vector<std::string> ManyGaps(int n) {
  std::vector<std::string> gaps;
  for (int i = 0; i < n; ++i) {
    gaps.push_back(absl::StrCat("pid ", 1000 + i, ": /proc/", 1000 + i,
                                "/map_files/7f0000000000-7f0000001000: Operation not permitted"));
  }
  return gaps;
}

TEST(FitGapsTest, KeepsGapsThatFit) {
  std::vector<std::string> gaps = ManyGaps(3);
  const std::vector<std::string> before = gaps;
  const size_t size = FitGaps(&gaps, 1 << 20);
  EXPECT_EQ(gaps, before);
  EXPECT_GE(size, SerializedSize(gaps));
}

TEST(FitGapsTest, LeavesOutTheGapsBeyondTheBudgetAndCountsThem) {
  std::vector<std::string> gaps = ManyGaps(100000);
  const std::vector<std::string> before = gaps;
  const size_t budget = 64 << 10;
  const size_t size = FitGaps(&gaps, budget);
  ASSERT_GE(gaps.size(), 2u);
  ASSERT_LT(gaps.size(), before.size());
  const size_t kept = gaps.size() - 1;
  for (size_t i = 0; i < kept; ++i) EXPECT_EQ(gaps[i], before[i]);  // the leading ones, in order
  EXPECT_EQ(gaps.back(), absl::StrCat("report truncated: ", before.size() - kept,
                                      " observation gaps left out to fit 65536 bytes"));
  EXPECT_LE(size, budget);
  EXPECT_LE(SerializedSize(gaps), size);
}

}  // namespace
}  // namespace vigil::node
