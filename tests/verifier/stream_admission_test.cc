// Stream admission and the per-node token bucket, with a clock moved by hand.

#include "verifier/stream_admission.h"

#include <gtest/gtest.h>

namespace vigil::verifier {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

TEST(TokenBucketTest, StartsFullAndRefillsAtItsRate) {
  TokenBucket bucket(/*rate=*/2, /*burst=*/3, kStart);
  EXPECT_TRUE(bucket.Full(kStart));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.TryTake(kStart)) << i;
  EXPECT_FALSE(bucket.TryTake(kStart));
  // Half a second at 2 per second is one token, and only one.
  EXPECT_TRUE(bucket.TryTake(kStart + absl::Milliseconds(500)));
  EXPECT_FALSE(bucket.TryTake(kStart + absl::Milliseconds(500)));
  // Never more than the burst, however long it rested.
  EXPECT_TRUE(bucket.Full(kStart + absl::Hours(1)));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.TryTake(kStart + absl::Hours(1))) << i;
  EXPECT_FALSE(bucket.TryTake(kStart + absl::Hours(1)));
}

class StreamAdmissionTest : public ::testing::Test {
 protected:
  StreamAdmission Make(StreamLimits limits) {
    return StreamAdmission(limits, [this] { return now_; });
  }
  absl::Time now_ = kStart;
};

TEST_F(StreamAdmissionTest, RefusesAStreamBeyondThePerNodeLimitAndCountsIt) {
  StreamAdmission admission = Make({.max_streams = 0,
                                    .max_streams_per_node = 2,
                                    .evidence_per_second = 5,
                                    .evidence_burst = 20});
  ASSERT_TRUE(admission.Open("a").ok());
  ASSERT_TRUE(admission.Open("a").ok());
  absl::Status third = admission.Open("a");
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted) << third;
  // Another node is not affected.
  EXPECT_TRUE(admission.Open("b").ok());
  EXPECT_EQ(admission.counters().streams_refused_per_node, 1u);
  EXPECT_EQ(admission.open(), 3u);
  // A closed stream makes room again.
  admission.Close("a");
  EXPECT_TRUE(admission.Open("a").ok());
}

TEST_F(StreamAdmissionTest, RefusesAStreamBeyondTheTotalLimitAndCountsIt) {
  StreamAdmission admission = Make({.max_streams = 2,
                                    .max_streams_per_node = 0,
                                    .evidence_per_second = 5,
                                    .evidence_burst = 20});
  ASSERT_TRUE(admission.Open("a").ok());
  ASSERT_TRUE(admission.Open("b").ok());
  EXPECT_EQ(admission.Open("c").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(admission.counters().streams_refused_total, 1u);
  EXPECT_EQ(admission.counters().streams_refused_per_node, 0u);
  admission.Close("b");
  EXPECT_TRUE(admission.Open("c").ok());
}

TEST_F(StreamAdmissionTest, RateLimitsMessagesPerNodeAcrossItsStreams) {
  StreamAdmission admission = Make({.max_streams = 20000,
                                    .max_streams_per_node = 0,
                                    .evidence_per_second = 1,
                                    .evidence_burst = 4});
  ASSERT_TRUE(admission.Open("a").ok());  // one token
  ASSERT_TRUE(admission.Open("b").ok());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(admission.TakeMessage("a").ok()) << i;
  EXPECT_EQ(admission.TakeMessage("a").code(), absl::StatusCode::kResourceExhausted);
  // Node b has its own bucket.
  EXPECT_TRUE(admission.TakeMessage("b").ok());
  // Reopening does not refill a's bucket: the open itself is refused.
  admission.Close("a");
  EXPECT_EQ(admission.Open("a").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(admission.counters().rate_limited, 2u);
  // A second later there is one token again.
  now_ += absl::Seconds(1);
  EXPECT_TRUE(admission.Open("a").ok());
  EXPECT_EQ(admission.TakeMessage("a").code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(StreamAdmissionTest, ZeroTurnsEveryBoundOff) {
  StreamAdmission admission = Make({.max_streams = 0,
                                    .max_streams_per_node = 0,
                                    .evidence_per_second = 0,
                                    .evidence_burst = 20});
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(admission.Open("a").ok()) << i;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(admission.TakeMessage("a").ok()) << i;
  AttestationCounters c = admission.counters();
  EXPECT_EQ(c.streams_refused_total + c.streams_refused_per_node + c.rate_limited, 0u);
}

TEST_F(StreamAdmissionTest, ForgetsIdleNodesOnlyOnceTheirBucketRefilled) {
  StreamAdmission admission = Make({.max_streams = 20000,
                                    .max_streams_per_node = 0,
                                    .evidence_per_second = 1,
                                    .evidence_burst = 2});
  ASSERT_TRUE(admission.Open("a").ok());
  ASSERT_TRUE(admission.TakeMessage("a").ok());
  admission.Close("a");
  // Still empty after the sweep interval's first tick: the node is remembered, so closing
  // and reopening cannot be used to refill.
  EXPECT_EQ(admission.Open("a").code(), absl::StatusCode::kResourceExhausted);
  now_ += absl::Minutes(1);
  ASSERT_TRUE(admission.Open("a").ok());
  ASSERT_TRUE(admission.TakeMessage("a").ok());
  EXPECT_EQ(admission.TakeMessage("a").code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace vigil::verifier
