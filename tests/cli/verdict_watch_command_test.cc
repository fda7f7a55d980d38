#include "cli/verdict_watch_command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/cli/fake_fleet.h"

namespace vigil::cli {
namespace {

using testing::NodeId;

v1::VerdictChange Change(const std::string& cursor, v1::TrustStatus from, v1::TrustStatus to) {
  v1::VerdictChange c;
  c.set_cursor(cursor);
  c.set_node_id(NodeId('a'));
  c.set_previous_status(from);
  c.set_status(to);
  c.mutable_verdict()->set_appraised_unix_nano(1'780'000'000'000'000'000);
  return c;
}

class WatchCommandFleetTest : public testing::FakeFleetTest {
 protected:
  WatchOptions Options() {
    WatchOptions options;
    options.connection = Connection();
    options.initial_backoff = absl::Milliseconds(10);
    return options;
  }
};

TEST_F(WatchCommandFleetTest, ResumesAfterTheLastPrintedCursorWhenTheStreamDrops) {
  fleet_.watch_scripts.push_back(
      {{Change("c1", v1::TRUST_AFFIRMING, v1::TRUST_WARNING),
        Change("c2", v1::TRUST_WARNING, v1::TRUST_CONTRAINDICATED)},
       grpc::Status(grpc::StatusCode::UNAVAILABLE, "verifier restarting")});
  // The verifier closes the next stream at once: no change, reconnect from the same cursor.
  fleet_.watch_scripts.push_back({{}, grpc::Status::OK});
  fleet_.watch_scripts.push_back(
      {{Change("c3", v1::TRUST_CONTRAINDICATED, v1::TRUST_AFFIRMING)}, grpc::Status::OK});
  WatchOptions options = Options();
  options.node_id = NodeId('a');
  options.cursor = "c0";
  options.max_changes = 3;
  std::ostringstream out, err;
  ASSERT_EQ(RunWatch(options, out, err), 0) << err.str();

  const auto requests = fleet_.Requests<v1::WatchVerdictsRequest>("WatchVerdicts");
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].cursor(), "c0");
  EXPECT_EQ(requests[1].cursor(), "c2");
  EXPECT_EQ(requests[2].cursor(), "c2");
  for (const auto& r : requests) EXPECT_EQ(r.node_id(), NodeId('a'));
  // Each change once, in order, each with its cursor first.
  EXPECT_EQ(out.str(),
            "c1  2026-05-28T20:26:40Z  aaaaaaaaaaaa  -  AFFIRMING -> WARNING  -\n"
            "c2  2026-05-28T20:26:40Z  aaaaaaaaaaaa  -  WARNING -> CONTRAINDICATED  -\n"
            "c3  2026-05-28T20:26:40Z  aaaaaaaaaaaa  -  CONTRAINDICATED -> AFFIRMING  -\n");
  EXPECT_NE(err.str().find("cannot reach the verifier at " + verifier_->address()),
            std::string::npos)
      << err.str();
  EXPECT_NE(err.str().find("reconnecting in 10ms after cursor c2"), std::string::npos) << err.str();
}

TEST_F(WatchCommandFleetTest, JsonLinesCarryTheWholeChange) {
  v1::VerdictChange change = Change("42", v1::TRUST_AFFIRMING, v1::TRUST_CONTRAINDICATED);
  change.set_workload_id(std::string(64, '1'));
  change.set_workload_name("agent");
  *change.mutable_verdict() = testing::CannedVerdict(NodeId('a'), 1);
  fleet_.watch_scripts.push_back({{change}, grpc::Status::OK});
  WatchOptions options = Options();
  options.json = true;
  options.max_changes = 1;
  std::ostringstream out, err;
  ASSERT_EQ(RunWatch(options, out, err), 0) << err.str();
  const std::string line = out.str();
  ASSERT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  const nlohmann::json json = nlohmann::json::parse(line);
  EXPECT_EQ(json["cursor"], "42");
  EXPECT_EQ(json["workload_name"], "agent");
  EXPECT_EQ(json["status"], "TRUST_CONTRAINDICATED");
  EXPECT_EQ(json["verdict"]["workloads"][0]["rules"][0]["controls"][0], "NIST-800-53r5:AC-6(10)");
  EXPECT_EQ(fleet_.Requests<v1::WatchVerdictsRequest>("WatchVerdicts")[0].cursor(), "");
}

TEST(WatchFormatTest, WorkloadChangeNamesItsFailingRules) {
  v1::VerdictChange change;
  change.set_cursor("9");
  change.set_node_id(NodeId('b'));
  change.set_workload_id(std::string(64, '1'));
  change.set_workload_name("agent");
  change.set_previous_status(v1::TRUST_AFFIRMING);
  change.set_status(v1::TRUST_CONTRAINDICATED);
  *change.mutable_verdict() = testing::CannedVerdict(NodeId('b'), 1'780'000'000'000'000'000);
  EXPECT_EQ(FormatChange(change, /*color=*/false),
            "9  2026-05-28T20:26:40Z  bbbbbbbbbbbb  agent  AFFIRMING -> CONTRAINDICATED  "
            "seccomp-denies-ptrace [NIST-800-53r5:AC-6(10)]");
}

TEST_F(WatchCommandFleetTest, AStreamTheServerCancelsIsResumedToo) {
  // A verifier shutting down cancels the calls still open: the watch reconnects.
  fleet_.watch_scripts.push_back(
      {{Change("c1", v1::TRUST_AFFIRMING, v1::TRUST_WARNING)}, grpc::Status::CANCELLED});
  fleet_.watch_scripts.push_back(
      {{Change("c2", v1::TRUST_WARNING, v1::TRUST_AFFIRMING)}, grpc::Status::OK});
  WatchOptions options = Options();
  options.max_changes = 2;
  std::ostringstream out, err;
  ASSERT_EQ(RunWatch(options, out, err), 0) << err.str();
  const auto requests = fleet_.Requests<v1::WatchVerdictsRequest>("WatchVerdicts");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].cursor(), "c1");
}

TEST_F(WatchCommandFleetTest, OtherErrorsEndTheWatch) {
  fleet_.watch_scripts.push_back(
      {{}, grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "role not allowed")});
  std::ostringstream out, err;
  EXPECT_EQ(RunWatch(Options(), out, err), 1);
  EXPECT_NE(err.str().find("WatchVerdicts: PERMISSION_DENIED"), std::string::npos) << err.str();
  EXPECT_EQ(fleet_.CallCount("WatchVerdicts"), 1);
}

}  // namespace
}  // namespace vigil::cli
