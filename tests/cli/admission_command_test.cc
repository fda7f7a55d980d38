#include "cli/admission_command.h"

#include <gtest/gtest.h>

#include <string>

#include "nlohmann/json.hpp"
#include "tests/cli/fake_fleet.h"

namespace vigil::cli {
namespace {

using testing::NodeId;

class AdmissionCommandFleetTest : public testing::FakeFleetTest {
 protected:
  std::string Check(const std::string& extra) {
    return "admission check --node " + NodeId('a') + extra + ConnectionFlags();
  }
};

TEST_F(AdmissionCommandFleetTest, AllowExitsZeroAndSendsTheQuestion) {
  fleet_.admission.set_allowed(true);
  fleet_.admission.set_status(v1::TRUST_AFFIRMING);
  fleet_.admission.set_ear_token("eyJhbGciOiJFUzI1NiJ9.e30.c2ln");
  fleet_.admission.set_appraised_unix_nano(1'780'000'000'000'000'000);
  std::string out, err;
  ASSERT_EQ(RunVigilctl(Check(" --workload agent --max-age 90s"), &out, &err), 0) << err;
  EXPECT_EQ(out, "allow: workload agent on node " + NodeId('a') +
                     " is AFFIRMING (appraised 2026-05-28T20:26:40Z)\n");
  const auto requests = fleet_.Requests<v1::CheckAdmissionRequest>("CheckAdmission");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].node_id(), NodeId('a'));
  EXPECT_EQ(requests[0].workload(), "agent");
  EXPECT_EQ(requests[0].max_age_ms(), 90'000);

  ASSERT_EQ(RunVigilctl(Check(" --json"), &out, &err), 0) << err;
  const nlohmann::json json = nlohmann::json::parse(out);
  EXPECT_EQ(json["decision"], "allow");
  EXPECT_EQ(json["allowed"], true);
  EXPECT_EQ(json["status"], "AFFIRMING");
  EXPECT_EQ(json["ear_token"], "eyJhbGciOiJFUzI1NiJ9.e30.c2ln");
  EXPECT_EQ(json["reasons"], nlohmann::json::array());
  EXPECT_EQ(fleet_.Requests<v1::CheckAdmissionRequest>("CheckAdmission")[1].max_age_ms(), 0);
}

TEST_F(AdmissionCommandFleetTest, DenyExitsOneWithEveryReason) {
  fleet_.admission.set_allowed(false);
  fleet_.admission.set_status(v1::TRUST_CONTRAINDICATED);
  fleet_.admission.add_reasons("workload agent is CONTRAINDICATED: seccomp-denies-ptrace");
  fleet_.admission.add_reasons("latest result is 5m old (max 1m)");
  std::string out, err;
  EXPECT_EQ(RunVigilctl(Check(""), &out, &err), 1) << err;
  EXPECT_EQ(out, "deny: node " + NodeId('a') +
                     " is CONTRAINDICATED (appraised never)\n"
                     "  workload agent is CONTRAINDICATED: seccomp-denies-ptrace\n"
                     "  latest result is 5m old (max 1m)\n");
  EXPECT_EQ(RunVigilctl(Check(" --json"), &out, &err), 1) << err;
  const nlohmann::json json = nlohmann::json::parse(out);
  EXPECT_EQ(json["decision"], "deny");
  EXPECT_EQ(json["allowed"], false);
  EXPECT_EQ(json["reasons"].size(), 2u);
  EXPECT_EQ(json["status"], "CONTRAINDICATED");
}

TEST_F(AdmissionCommandFleetTest, NoDecisionIsNeitherAllowNorDeny) {
  fleet_.errors["CheckAdmission"] =
      grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "role not allowed");
  std::string out, err;
  EXPECT_EQ(RunVigilctl(Check(""), &out, &err), 3);
  EXPECT_NE(err.find("CheckAdmission needs operator or orchestrator"), std::string::npos) << err;
  EXPECT_EQ(out, "");

  const std::string address = verifier_->address();
  verifier_->Stop();
  EXPECT_EQ(RunVigilctl(Check(""), &out, &err), 3);
  EXPECT_NE(err.find("cannot reach the verifier at " + address), std::string::npos) << err;
}

TEST_F(AdmissionCommandFleetTest, BadUsageExitsTwoWithoutAsking) {
  std::string out, err;
  EXPECT_EQ(RunVigilctl("admission check" + ConnectionFlags(), &out, &err), 2);  // no --node
  EXPECT_EQ(RunVigilctl(Check(" --max-age soon"), &out, &err), 2);
  EXPECT_NE(err.find("--max-age"), std::string::npos) << err;
  EXPECT_EQ(RunVigilctl("admission check --node " + NodeId('a') + " --verifier " +
                            verifier_->address() + " --pki-dir /nonexistent --client x",
                        &out, &err),
            2);
  EXPECT_EQ(fleet_.CallCount("CheckAdmission"), 0);
}

}  // namespace
}  // namespace vigil::cli
