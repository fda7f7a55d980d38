#include "cli/audit_command.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/cli/fake_fleet.h"

namespace vigil::cli {
namespace {

class AuditCommandFleetTest : public testing::FakeFleetTest {
 protected:
  void TwoPages() {
    v1::AuditRecord* r = fleet_.audit_pages[""].add_records();
    r->set_time_unix_nano(1'780'000'000'000'000'000);
    r->set_actor("alice (operator)");
    r->set_action("node.revoke");
    r->set_target(std::string(64, 'a'));
    r->set_detail("disk image tampered");
    fleet_.audit_pages[""].set_next_page_token("p2");
    v1::AuditRecord* s = fleet_.audit_pages["p2"].add_records();
    s->set_time_unix_nano(1'779'999'000'000'000'000);
    s->set_actor("bob (operator)");
    s->set_action("policy.put");
    s->set_target("agents@4");
  }
};

TEST_F(AuditCommandFleetTest, TableFollowsPages) {
  TwoPages();
  std::ostringstream out, err;
  ASSERT_EQ(RunAuditLog(Connection(), 50, /*json=*/false, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "TIME                  ACTOR             ACTION       TARGET" +
                           std::string(60, ' ') + "DETAIL\n" +
                           "2026-05-28T20:26:40Z  alice (operator)  node.revoke  " +
                           std::string(64, 'a') + "  disk image tampered\n" +
                           "2026-05-28T20:10:00Z  bob (operator)    policy.put   agents@4" +
                           std::string(58, ' ') + "-\n");
  const auto requests = fleet_.Requests<v1::ListAuditRequest>("ListAudit");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].page_token(), "p2");
  EXPECT_EQ(requests[1].page_size(), 49u);
}

TEST_F(AuditCommandFleetTest, JsonStopsAtTheLimit) {
  TwoPages();
  std::string out, err;
  ASSERT_EQ(RunVigilctl("audit log --limit 1 --json" + ConnectionFlags(), &out, &err), 0) << err;
  const nlohmann::json json = nlohmann::json::parse(out);
  ASSERT_EQ(json["records"].size(), 1u);
  EXPECT_EQ(json["records"][0]["action"], "node.revoke");
  EXPECT_EQ(json["next_page_token"], "p2");
  EXPECT_EQ(fleet_.CallCount("ListAudit"), 1);
}

}  // namespace
}  // namespace vigil::cli
