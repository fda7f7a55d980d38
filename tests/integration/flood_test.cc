// Abuse resistance end to end: while an honest vigil-node (real swtpm, real binary) reports
// to a real vigil-verifier, floods hit the same verifier at once (tests/testing/floods.h):
// enrollments begun and never completed with a genuine, chaining EK certificate, junk
// evidence from an enrolled but misbehaving node certificate, and oversized messages on both
// listeners. Each flood must be refused (each refusal is observed by the flooder as a gRPC
// status), and the honest node must keep getting affirming verdicts on its one stream
// throughout: every report it sent acknowledged, its stream never dropped.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/floods.h"

namespace vigil {
namespace {

using testing::Fabric;

// Only keeps a broken fabric from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kProgressBound = absl::Seconds(90);
// Affirming verdicts the honest node must collect while the floods run.
constexpr size_t kHonestVerdicts = 6;

// The node's verdicts appraised at or after `since`.
absl::StatusOr<std::vector<v1::Verdict>> VerdictsSince(v1::Fleet::Stub& fleet,
                                                       const std::string& node_id, int64_t since) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::ListVerdictsRequest request;
  request.set_node_id(node_id);
  request.set_since_unix_nano(since);
  request.set_page_size(1000);
  v1::ListVerdictsResponse response;
  grpc::Status s = fleet.ListVerdicts(&ctx, request, &response);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("ListVerdicts: ", s.error_message()));
  return std::vector<v1::Verdict>(response.verdicts().begin(), response.verdicts().end());
}

TEST(FloodTest, HonestNodeKeepsGettingVerdictsWhileFloodsAreRefused) {
  // A small total of pending enrollments, so the begun-and-abandoned flood hits the cap.
  Fabric::Options options;
  options.verifier_args = {"--max-pending-enrollments", "2", "--max-pending-enrollments-per-ek",
                           "4"};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNode().ok());
  absl::StatusOr<std::string> honest = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(honest.ok()) << honest.status();

  absl::StatusOr<std::unique_ptr<testing::Floods>> floods = testing::Floods::Start(f);
  ASSERT_TRUE(floods.ok()) << floods.status();
  // The floods run until the honest node collected its verdicts, all appraised after the
  // floods began, and every flood was refused.
  const int64_t flood_start = absl::ToUnixNanos(absl::Now());
  std::vector<v1::Verdict> during;
  absl::Time deadline = absl::Now() + kProgressBound;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::vector<v1::Verdict>> got = VerdictsSince(f.fleet(), *honest, flood_start);
    ASSERT_TRUE(got.ok()) << got.status();
    during = *std::move(got);
    if (during.size() >= kHonestVerdicts && (*floods)->EachRefused()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  (*floods)->Stop();

  EXPECT_GE(during.size(), kHonestVerdicts) << f.Logs();
  for (const v1::Verdict& v : during) {
    EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  }
  EXPECT_TRUE((*floods)->EachRefused()) << (*floods)->Describe();
  EXPECT_GT((*floods)->enrollments().refused, 0u);
  EXPECT_GT((*floods)->junk_evidence().refused, 0u);
  EXPECT_GT((*floods)->oversized_evidence().refused, 0u);
  EXPECT_GT((*floods)->oversized_enrollments().refused, 0u);
  // The honest node never lost its stream: no reconnection, so every report it sent was
  // answered on it.
  EXPECT_FALSE(absl::StrContains(f.NodeLog(), "attest stream to")) << f.Logs();
  EXPECT_TRUE(f.StopNode().ok());
}

}  // namespace
}  // namespace vigil
