// Connection health end to end, with the real vigil-node on a swtpm and real vigil-verifiers:
// a node that goes silent without closing its connection is marked disconnected by the
// verifier's keepalive, and a node given two verifiers moves to the second when the first
// dies or silently freezes (the node's own keepalive).

#include <signal.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/fabric_fixture.h"

namespace vigil {
namespace {

using testing::Fabric;

// Only keeps a broken fabric from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kProgressBound = absl::Seconds(60);

// Polls GetNode on `fleet` until the node's connected flag is `connected`.
absl::Status AwaitConnected(v1::Fleet::Stub& fleet, const std::string& node_id, bool connected) {
  absl::Time deadline = absl::Now() + kProgressBound;
  while (absl::Now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::GetNodeRequest request;
    request.set_node_id(node_id);
    v1::GetNodeResponse response;
    grpc::Status s = fleet.GetNode(&ctx, request, &response);
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("GetNode: ", s.error_message()));
    if (response.node().connected() == connected) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("node never became ", connected ? "connected" : "disconnected"));
}

TEST(ConnectionHealthTest, VerifierMarksASilentNodeDisconnectedByKeepalive) {
  // Pings every second, one second to answer: a frozen node is noticed in about two.
  Fabric::Options options;
  options.verifier_args = {"--keepalive-time", "1s", "--keepalive-timeout", "1s"};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNode().ok());
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status();
  ASSERT_TRUE(AwaitConnected(f.fleet(), *node_id, true).ok()) << f.Logs();

  // SIGSTOP: the node's process stops answering anything, but its kernel keeps the TCP
  // connection open: no FIN, no RST. Only the verifier's unanswered pings can tell.
  ASSERT_EQ(kill(f.node_pid(), SIGSTOP), 0);
  absl::Cleanup resume = [&] { kill(f.node_pid(), SIGCONT); };
  absl::Status disconnected = AwaitConnected(f.fleet(), *node_id, false);
  EXPECT_TRUE(disconnected.ok()) << disconnected << "\n" << f.Logs();
  // The connection was closed under the stream (the keepalive timeout), not by the node.
  EXPECT_TRUE(absl::StrContains(f.Logs(), "disconnected (connection lost")) << f.Logs();
  std::move(resume).Invoke();

  // Back from the freeze, the node finds its connection gone, reconnects and is appraised.
  int64_t resumed = absl::ToUnixNanos(absl::Now());
  EXPECT_TRUE(AwaitConnected(f.fleet(), *node_id, true).ok()) << f.Logs();
  absl::StatusOr<std::string> again = f.AwaitVerdict(v1::TRUST_AFFIRMING, resumed);
  EXPECT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(f.StopNode().ok());
}

TEST(ConnectionHealthTest, NodeMovesToItsSecondVerifierWhenTheFirstDies) {
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start({});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  // The standby's port is reserved from the start; the node knows both addresses, in order.
  ASSERT_TRUE(f.StartNode({"--verifier", f.standby_address()}).ok());
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status();

  // The standby starts on a copy of the first verifier's store: the node is enrolled there.
  ASSERT_TRUE(f.StartStandbyVerifier().ok()) << f.Logs();
  ASSERT_EQ(kill(f.verifier_pid(), SIGKILL), 0);
  int64_t killed = absl::ToUnixNanos(absl::Now());

  absl::StatusOr<std::string> on_standby =
      f.AwaitVerdictOn(f.standby_fleet(), v1::TRUST_AFFIRMING, killed);
  ASSERT_TRUE(on_standby.ok()) << on_standby.status();
  EXPECT_EQ(*on_standby, *node_id);
  EXPECT_TRUE(AwaitConnected(f.standby_fleet(), *node_id, true).ok());
  // The node says where it went.
  EXPECT_TRUE(absl::StrContains(f.NodeLog(), f.standby_address())) << f.Logs();
  EXPECT_TRUE(f.StopNode().ok());
}

TEST(ConnectionHealthTest, NodeLeavesAFrozenVerifierForItsSecondByKeepalive) {
  // The verifiers accept pings every 500 ms; the node pings every second and gives up on a
  // connection after one more second without an answer.
  Fabric::Options options;
  options.verifier_args = {"--keepalive-min-ping-interval", "500ms"};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNode({"--verifier", f.standby_address(), "--keepalive-time-ms", "1000",
                           "--keepalive-timeout-ms", "1000"})
                  .ok());
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status();
  ASSERT_TRUE(f.StartStandbyVerifier().ok()) << f.Logs();

  // SIGSTOP: the first verifier's kernel keeps the connection open and acknowledges TCP,
  // but nothing answers the node's HTTP/2 pings, challenges or evidence any more.
  ASSERT_EQ(kill(f.verifier_pid(), SIGSTOP), 0);
  absl::Cleanup resume = [&] { kill(f.verifier_pid(), SIGCONT); };
  int64_t frozen = absl::ToUnixNanos(absl::Now());
  absl::StatusOr<std::string> on_standby =
      f.AwaitVerdictOn(f.standby_fleet(), v1::TRUST_AFFIRMING, frozen);
  ASSERT_TRUE(on_standby.ok()) << on_standby.status();
  EXPECT_EQ(*on_standby, *node_id);
  EXPECT_TRUE(absl::StrContains(f.NodeLog(), f.standby_address())) << f.Logs();
  std::move(resume).Invoke();
  EXPECT_TRUE(f.StopNode().ok());
}

}  // namespace
}  // namespace vigil
