#include "cli/verdicts_command.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/cli/fake_fleet.h"

namespace vigil::cli {
namespace {

using testing::CannedVerdict;
using testing::NodeId;

constexpr int64_t kT = 1'780'000'000'000'000'000;

TEST(VerdictsRequestTest, FiltersBecomeTheRequest) {
  VerdictsOptions options;
  options.node_id = NodeId('a');
  options.workload = "agent";
  options.statuses = {"contraindicated,WARNING", "trust_rejected"};
  options.since = "1h";
  options.until = "2026-05-28T20:26:40Z";
  const absl::Time now = absl::FromUnixSeconds(1'780'000'000);
  absl::StatusOr<v1::ListVerdictsRequest> request = VerdictsRequest(options, now);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->node_id(), NodeId('a'));
  EXPECT_EQ(request->workload(), "agent");
  ASSERT_EQ(request->statuses_size(), 3);
  EXPECT_EQ(request->statuses(0), v1::TRUST_CONTRAINDICATED);
  EXPECT_EQ(request->statuses(1), v1::TRUST_WARNING);
  EXPECT_EQ(request->statuses(2), v1::TRUST_REJECTED);
  EXPECT_EQ(request->since_unix_nano(), (1'780'000'000LL - 3600) * 1'000'000'000);
  EXPECT_EQ(request->until_unix_nano(), 1'780'000'000'000'000'000);
}

TEST(VerdictsRequestTest, BadFiltersAreRefused) {
  const absl::Time now = absl::FromUnixSeconds(1'780'000'000);
  VerdictsOptions options;
  options.statuses = {"fine"};
  EXPECT_NE(VerdictsRequest(options, now).status().message().find("unknown status \"fine\""),
            absl::string_view::npos);
  options.statuses = {"status_unspecified"};
  EXPECT_FALSE(VerdictsRequest(options, now).ok());
  options.statuses.clear();
  options.since = "yesterday";
  EXPECT_NE(VerdictsRequest(options, now).status().message().find("--since"),
            absl::string_view::npos);
  options.since = "1h";
  options.until = "2h";  // before --since
  EXPECT_FALSE(VerdictsRequest(options, now).ok());
}

class VerdictsCommandFleetTest : public testing::FakeFleetTest {
 protected:
  // Three pages: 2, 2 and 1 verdicts.
  void ThreePages() {
    v1::ListVerdictsResponse& p1 = fleet_.verdict_pages[""];
    *p1.add_verdicts() = CannedVerdict(NodeId('a'), kT);
    p1.add_verdicts()->set_node_id("first-page-2");
    p1.set_next_page_token("t1");
    v1::ListVerdictsResponse& p2 = fleet_.verdict_pages["t1"];
    p2.add_verdicts()->set_node_id("second-page-1");
    p2.add_verdicts()->set_node_id("second-page-2");
    p2.set_next_page_token("t2");
    fleet_.verdict_pages["t2"].add_verdicts()->set_node_id("third-page-1");
  }
};

TEST_F(VerdictsCommandFleetTest, FollowsPageTokensToTheLastPage) {
  ThreePages();
  VerdictsOptions options;
  options.connection = Connection();
  options.node_id = NodeId('a');
  options.statuses = {"contraindicated"};
  options.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(RunVerdicts(options, out, err), 0) << err.str();
  const nlohmann::json json = nlohmann::json::parse(out.str());
  ASSERT_EQ(json["verdicts"].size(), 5u);
  EXPECT_EQ(json["verdicts"][4]["node_id"], "third-page-1");
  EXPECT_EQ(json["next_page_token"], "");
  const auto requests = fleet_.Requests<v1::ListVerdictsRequest>("ListVerdicts");
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].page_token(), "");
  EXPECT_EQ(requests[1].page_token(), "t1");
  EXPECT_EQ(requests[2].page_token(), "t2");
  for (const v1::ListVerdictsRequest& r : requests) {
    // Every page carries the same filters.
    EXPECT_EQ(r.node_id(), NodeId('a'));
    ASSERT_EQ(r.statuses_size(), 1);
    EXPECT_EQ(r.statuses(0), v1::TRUST_CONTRAINDICATED);
  }
  EXPECT_EQ(requests[0].page_size(), 100u);
}

TEST_F(VerdictsCommandFleetTest, StopsAtTheLimitAndKeepsTheTokenToContinue) {
  ThreePages();
  VerdictsOptions options;
  options.connection = Connection();
  options.limit = 3;
  options.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(RunVerdicts(options, out, err), 0) << err.str();
  const nlohmann::json json = nlohmann::json::parse(out.str());
  ASSERT_EQ(json["verdicts"].size(), 3u);
  EXPECT_EQ(json["verdicts"][2]["node_id"], "second-page-1");
  EXPECT_EQ(json["next_page_token"], "t2");
  const auto requests = fleet_.Requests<v1::ListVerdictsRequest>("ListVerdicts");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].page_size(), 3u);
  EXPECT_EQ(requests[1].page_size(), 1u);  // only what is still wanted
}

TEST_F(VerdictsCommandFleetTest, TableShowsFailingRulesPerWorkload) {
  fleet_.verdict_pages[""].add_verdicts()->CopyFrom(CannedVerdict(NodeId('a'), kT));
  std::string out, err;
  ASSERT_EQ(RunVigilctl("verdicts --since 2026-01-01T00:00:00Z" + ConnectionFlags(), &out, &err), 0)
      << err;
  EXPECT_EQ(out,
            "APPRAISED             NODE          REPORT  STATUS           REASONS           "
            "FAILING_RULES\n"
            "2026-05-28T20:26:40Z  aaaaaaaaaaaa  7       CONTRAINDICATED  POLICY_VIOLATION  "
            "agent: seccomp-denies-ptrace [NIST-800-53r5:AC-6(10)]\n");
  const auto requests = fleet_.Requests<v1::ListVerdictsRequest>("ListVerdicts");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].since_unix_nano(), 1'767'225'600'000'000'000);
  EXPECT_EQ(requests[0].until_unix_nano(), 0);

  EXPECT_EQ(RunVigilctl("verdicts --status bogus" + ConnectionFlags(), &out, &err), 2);
  EXPECT_EQ(fleet_.CallCount("ListVerdicts"), 1);
}

TEST_F(VerdictsCommandFleetTest, RepeatedPageTokenEndsWithAnError) {
  fleet_.verdict_pages[""].set_next_page_token("loop");
  fleet_.verdict_pages["loop"].set_next_page_token("loop");
  fleet_.verdict_pages["loop"].add_verdicts();
  VerdictsOptions options;
  options.connection = Connection();
  std::ostringstream out, err;
  EXPECT_EQ(RunVerdicts(options, out, err), 1);
  EXPECT_NE(err.str().find("same page token twice"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace vigil::cli
