// `vigil-node check --verifier` end to end: the real verifier started with
// deploy/policies/strict.yaml, swtpm, the real probes and the demo agents started by the
// check. The check acts as the node (enrolling on its first run), sends its quoted report
// and prints the verifier's verdict, which the Fleet API then returns. A running
// `vigil-node run` on the same state directory makes a check refuse (exit 2); a verifier
// that cannot be reached makes it exit 3, one that refuses the node (revoked) exit 1.

#include <unistd.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/testing/build_paths.h"
#include "tests/testing/demo_agent.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/program_run.h"
#include "tests/testing/reserved_port.h"
#include "tests/testing/temp_dir.h"

namespace vigil {
namespace {

using testing::ProgramRun;
using testing::RunProgram;
using json = nlohmann::json;
using testing::Fabric;

const std::string kStrict = vigil::testing::SourceDir() + "/deploy/policies/strict.yaml";

class CheckOnRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root";
    absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("check-on-record");
    ASSERT_TRUE(dir.ok()) << dir.status();
    tmp_ = *std::move(dir);
    Fabric::Options options;
    options.verifier_args = {"--policy", kStrict};
    absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
    ASSERT_TRUE(fabric.ok()) << fabric.status();
    fabric_ = *std::move(fabric);
  }

  // `vigil-node check` as this machine's node (the fabric's state directory and swtpm)
  // against `verifier`, with `args` before the command's `--`.
  ProgramRun Check(const std::string& verifier, std::vector<std::string> args) {
    Fabric& f = *fabric_;
    std::vector<std::string> argv = {vigil::testing::BuildDir() + "/node/vigil-node",
                                     "check",
                                     "--verifier",
                                     verifier,
                                     "--enroll-address",
                                     f.enroll_address(),
                                     "--ca-cert",
                                     f.pki().dir() + "/ca.crt",
                                     "--state-dir",
                                     f.state_dir(),
                                     "--tcti",
                                     f.tcti(),
                                     "--measurement-log",
                                     f.state_dir() + "/measurements.json"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, tmp_.path());
  }

  static json Parse(const ProgramRun& run) {
    json j = json::parse(run.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "stdout is not one JSON document:\n" << run.out << run.err;
    return j;
  }

  // Whether the Fleet API lists a verdict of `node_id` with `verdict_id` and `status`.
  bool OnRecord(const std::string& node_id, const std::string& verdict_id, v1::TrustStatus status) {
    v1::ListVerdictsRequest request;
    request.set_node_id(node_id);
    v1::ListVerdictsResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    grpc::Status st = fabric_->fleet().ListVerdicts(&ctx, request, &response);
    EXPECT_TRUE(st.ok()) << st.error_message();
    for (const v1::Verdict& v : response.verdicts()) {
      if (v.evidence_sha256() == verdict_id) return v.status() == status && v.node_id() == node_id;
    }
    return false;
  }

  testing::TestTempDir tmp_;
  std::unique_ptr<Fabric> fabric_;
};

TEST_F(CheckOnRecordTest, HardenedAgentIsAffirmedOnRecordAndNaiveOneContraindicated) {
  // The local file holds strict (its document byte for byte) and a policy the verifier never
  // sent: the check warns that the verdict on record does not appraise the second one, and
  // not about strict.
  const std::string local = tmp_.path() + "/local.yaml";
  std::ofstream(local) << testing::ReadWholeFile(kStrict)
                       << "---\napiVersion: vigil.dev/v1\nkind: RuntimePolicy\nmetadata:\n"
                          "  name: local-only\n  revision: 1\nspec:\n  workloads:\n"
                          "    - name: nothing\n      selectors: [comm=vgate-none]\n"
                          "  rules:\n    - id: local-only-rule\n      kind: no_new_privs\n"
                          "      controls: {nist_800_53: [AC-6]}\n";
  const std::string junit = tmp_.path() + "/hardened.xml";
  const ProgramRun hardened =
      Check(fabric_->verifier_address(),
            {"--policy", local, "--duration", "3", "--json", "--junit", junit, "--",
             testing::DemoAgent::BuiltPath("vigil-demo-hardened-agent")});
  ASSERT_EQ(hardened.exit_code, 0) << hardened.out << hardened.err << fabric_->Logs();
  json report = Parse(hardened);
  ASSERT_TRUE(report.contains("verifier")) << report.dump(2);
  const json& v = report["verifier"];
  EXPECT_EQ(v["outcome"], "acknowledged") << v.dump(2);
  EXPECT_EQ(v["status"], "AFFIRMING") << v.dump(2) << hardened.err << fabric_->Logs();
  EXPECT_EQ(v["policy_ids"], json::array({"strict@1"})) << v.dump(2);
  EXPECT_EQ(v["bundle"]["policy_ids"], json::array({"strict@1"})) << v.dump(2);
  EXPECT_TRUE(v["failing_rules"].empty()) << v.dump(2);
  EXPECT_EQ(report["attested"], true);
  const std::string node_id = v["node_id"];
  const std::string verdict_id = v["verdict_id"];
  ASSERT_EQ(verdict_id.size(), 64u) << v.dump(2);
  EXPECT_TRUE(OnRecord(node_id, verdict_id, v1::TRUST_AFFIRMING)) << v.dump(2);
  EXPECT_NE(hardened.err.find("policy local-only@1 is not among the verifier's policies"),
            std::string::npos)
      << hardened.err;
  EXPECT_EQ(hardened.err.find("policy strict@1 is not among"), std::string::npos) << hardened.err;
  const std::string xml = testing::ReadWholeFile(junit);
  EXPECT_NE(xml.find("name=\"verifier verdict\""), std::string::npos) << xml;
  EXPECT_EQ(xml.find("type=\"contraindicated\""), std::string::npos) << xml;

  // The same node again (its identity now in the state directory): the naive agent.
  const std::string naive_junit = tmp_.path() + "/naive.xml";
  const ProgramRun naive =
      Check(fabric_->verifier_address(),
            {"--policy", kStrict, "--duration", "3", "--json", "--junit", naive_junit, "--",
             testing::DemoAgent::BuiltPath("vigil-demo-naive-agent")});
  ASSERT_EQ(naive.exit_code, 1) << naive.out << naive.err << fabric_->Logs();
  report = Parse(naive);
  const json& nv = report["verifier"];
  EXPECT_EQ(nv["status"], "CONTRAINDICATED") << nv.dump(2);
  EXPECT_EQ(nv["node_id"], node_id);
  std::set<std::string> failing;
  for (const json& r : nv["failing_rules"]) failing.insert(r["rule_id"]);
  for (const char* id : {"seccomp-denies-process-access", "capabilities-dropped", "no-new-privs"}) {
    EXPECT_EQ(failing.count(id), 1u) << id << " not failing: " << nv.dump(2);
  }
  EXPECT_NE(nv["verdict_id"], verdict_id);
  EXPECT_TRUE(OnRecord(node_id, nv["verdict_id"], v1::TRUST_CONTRAINDICATED)) << nv.dump(2);
  EXPECT_EQ(naive.err.find("is not among the verifier's policies"), std::string::npos) << naive.err;
  const std::string naive_xml = testing::ReadWholeFile(naive_junit);
  EXPECT_NE(naive_xml.find("name=\"verifier verdict\""), std::string::npos) << naive_xml;
  EXPECT_NE(naive_xml.find("type=\"contraindicated\""), std::string::npos) << naive_xml;
}

TEST_F(CheckOnRecordTest, UnreachableIsThreeARunningNodeIsTwoAndARevokedNodeIsOne) {
  // Enrolled once against the real verifier, so what fails next is the verifier alone.
  const std::string hardened = testing::DemoAgent::BuiltPath("vigil-demo-hardened-agent");
  ProgramRun first = Check(fabric_->verifier_address(),
                           {"--policy", kStrict, "--duration", "1", "--json", "--", hardened});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err << fabric_->Logs();

  // Bound, never listening: connections are refused.
  absl::StatusOr<testing::ReservedPort> closed = testing::ReservedPort::Create();
  ASSERT_TRUE(closed.ok()) << closed.status();
  ProgramRun unreachable =
      Check(closed->address(), {"--policy", kStrict, "--duration", "1", "--json", "--", hardened});
  EXPECT_EQ(unreachable.exit_code, 3) << unreachable.out << unreachable.err;
  json report = Parse(unreachable);
  EXPECT_EQ(report["verifier"]["outcome"], "unreachable") << report.dump(2);
  EXPECT_EQ(report["attested"], false);

  // A `vigil-node run` on the same state directory holds its lock for its life.
  ASSERT_TRUE(fabric_->StartNode().ok());
  const std::string lock_path = fabric_->state_dir() + "/vigil-node.lock";
  const std::string node_pid = absl::StrCat(fabric_->node_pid());
  for (absl::Time deadline = absl::Now() + absl::Seconds(60);
       std::string(absl::StripAsciiWhitespace(testing::ReadWholeFile(lock_path))) != node_pid;) {
    ASSERT_LT(absl::Now(), deadline) << "the node never took the lock\n" << fabric_->Logs();
    absl::SleepFor(absl::Milliseconds(100));
  }
  ProgramRun held =
      Check(fabric_->verifier_address(), {"--policy", kStrict, "--duration", "1", "--", hardened});
  EXPECT_EQ(held.exit_code, 2) << held.out << held.err;
  EXPECT_TRUE(held.out.empty()) << held.out;
  EXPECT_NE(
      held.err.find(absl::StrCat("a vigil-node run holds this node's TPM log: pid ", node_pid)),
      std::string::npos)
      << held.err;
  EXPECT_NE(held.err.find(fabric_->state_dir()), std::string::npos) << held.err;
  EXPECT_TRUE(fabric_->StopNode().ok());

  // A revoked node: the verifier ends the stream PERMISSION_DENIED, nothing is on record and
  // the check fails even though every local rule passed.
  json enrolled = Parse(first);
  v1::RevokeNodeRequest revoke;
  revoke.set_node_id(enrolled["verifier"]["node_id"]);
  revoke.set_reason("check --verifier test");
  v1::RevokeNodeResponse revoked;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  grpc::Status st = fabric_->fleet().RevokeNode(&ctx, revoke, &revoked);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ProgramRun refused = Check(fabric_->verifier_address(),
                             {"--policy", kStrict, "--duration", "1", "--json", "--", hardened});
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  report = Parse(refused);
  EXPECT_EQ(report["summary"]["failed"], 0) << report.dump(2);
  EXPECT_EQ(report["verifier"]["outcome"], "refused") << report.dump(2);
  EXPECT_NE(report["verifier"]["error"].get<std::string>().find("revoked"), std::string::npos)
      << report.dump(2);
}

}  // namespace
}  // namespace vigil
