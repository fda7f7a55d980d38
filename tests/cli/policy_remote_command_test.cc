#include "cli/policy_remote_command.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/cli/fake_fleet.h"

namespace vigil::cli {
namespace {

class PolicyRemoteCommandFleetTest : public testing::FakeFleetTest {};

TEST_F(PolicyRemoteCommandFleetTest, ApplySendsTheFileAndPrintsRevisionAndWarnings) {
  const std::string yaml = "name: agents\nworkloads: []\n";
  const std::string path = pki_->dir() + "/agents.yaml";
  std::ofstream(path) << yaml;
  fleet_.put_policy.mutable_policy()->set_name("agents");
  fleet_.put_policy.mutable_policy()->set_revision(4);
  fleet_.put_policy.mutable_policy()->set_sha256(std::string(64, 'c'));
  fleet_.put_policy.add_warnings("workload agent: selector rests only on comm");
  std::string out, err;
  ASSERT_EQ(RunVigilctl("policy apply " + path + ConnectionFlags(), &out, &err), 0) << err;
  EXPECT_EQ(out, "applied policy agents@4 (sha256 " + std::string(64, 'c') +
                     ")\nwarning: workload agent: selector rests only on comm\n");
  const auto requests = fleet_.Requests<v1::PutPolicyRequest>("PutPolicy");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].yaml(), yaml);
}

TEST_F(PolicyRemoteCommandFleetTest, MalformedPolicyShowsTheVerifiersPosition) {
  const std::string path = pki_->dir() + "/bad.yaml";
  std::ofstream(path) << "name: [\n";
  fleet_.errors["PutPolicy"] = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                            "line 1, column 7: end of flow sequence expected");
  std::ostringstream out, err;
  EXPECT_EQ(RunPolicyApply(Connection(), path, out, err), 1);
  EXPECT_EQ(err.str(),
            "vigilctl: PutPolicy: INVALID_ARGUMENT: line 1, column 7: end of flow sequence "
            "expected\n");
  EXPECT_EQ(RunPolicyApply(Connection(), pki_->dir() + "/missing.yaml", out, err), 2);
  EXPECT_EQ(fleet_.CallCount("PutPolicy"), 1);
}

TEST_F(PolicyRemoteCommandFleetTest, ListPrintsTableAndJson) {
  v1::PolicyInfo* p = fleet_.policies.add_policies();
  p->set_name("agents");
  p->set_revision(4);
  p->set_sha256(std::string(64, 'c'));
  p->set_updated_unix_nano(1'780'000'000'000'000'000);
  p->set_updated_by("alice (operator)");
  p->set_yaml("name: agents\n");
  std::ostringstream out, err;
  ASSERT_EQ(RunPolicyList(Connection(), /*json=*/false, out, err), 0) << err.str();
  EXPECT_EQ(out.str(),
            "NAME    REVISION  SHA256        UPDATED               UPDATED_BY\n"
            "agents  4         cccccccccccc  2026-05-28T20:26:40Z  alice (operator)\n");
  std::ostringstream json_out;
  ASSERT_EQ(RunPolicyList(Connection(), /*json=*/true, json_out, err), 0);
  const nlohmann::json json = nlohmann::json::parse(json_out.str());
  EXPECT_EQ(json["policies"][0]["name"], "agents");
  EXPECT_EQ(json["policies"][0]["revision"], "4");  // proto3 JSON: 64-bit integers are strings
  EXPECT_EQ(json["policies"][0]["yaml"], "name: agents\n");
}

}  // namespace
}  // namespace vigil::cli
