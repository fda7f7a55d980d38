// A TPM Restart (Shutdown(STATE), then Startup(CLEAR) after _TPM_Init, as hibernate and
// resume do) on a real swtpm: PCRs reset while resetCount stays. The node notices that its
// PCR no longer matches its log, opens a new log epoch with its start sequence measured
// again, reloads its AK (the TPM flushed it) and quotes; the real QuoteAppraiser affirms the
// quotes before and after the restart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/measurement_log.h"
#include "common/tpm/tpm_marshal.h"
#include "node/agent/measurer.h"
#include "node/agent/tpm_sealer.h"
#include "node/tpm/node_tpm.h"
#include "tests/testing/policy_fixture.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/tpm2_tools_util.h"
#include "verifier/quote_appraiser.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil {
namespace {

using testing::SwtpmFixture;

class TpmRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto swtpm = SwtpmFixture::Start();
    ASSERT_TRUE(swtpm.ok()) << swtpm.status();
    swtpm_ = std::move(*swtpm);
    dir_ = swtpm_->scratch_dir();
    std::ofstream(dir_ + "/boot_id") << "boot-one\n";
    node::tpm::NodeTpm::Options o;
    o.tcti = swtpm_->tcti();
    o.state_dir = dir_ + "/state";
    auto tpm = node::tpm::NodeTpm::Open(o);
    ASSERT_TRUE(tpm.ok()) << tpm.status();
    tpm_ = std::move(*tpm);
    auto registry = verifier::NodeRegistry::Open(":memory:");
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = std::move(*registry);
    ASSERT_TRUE(registry_
                    ->Bind({tpm_->node_id(), tpm_->ek_public(), tpm_->ak_public(),
                            tpm_->ak_name().substr(2), absl::Now()})
                    .ok());
  }

  // Shutdown(STATE); _TPM_Init over swtpm's control channel; Startup(CLEAR).
  void TpmRestart() {
    auto out = testing::RunTpm2Tool(swtpm_->tools_tcti(),
                                    absl::StrCat("tpm2_shutdown && swtpm_ioctl --tcp 127.0.0.1:",
                                                 swtpm_->port() + 1, " -i && tpm2_startup -c"));
    ASSERT_TRUE(out.ok()) << out.status();
  }

  node::Measurer::Options MeasurerOptions() const {
    node::Measurer::Options o;
    o.log_path = dir_ + "/run/measurements.json";
    o.boot_id_path = dir_ + "/boot_id";
    return o;
  }

  // Every digest the log holds, as a reference value of its record's type.
  static verifier::ReferenceValues ReferencesFor(const MeasurementLog& log) {
    verifier::ReferenceValues refs;
    for (const MeasurementRecord& r : log.records) {
      refs.Add(r.event_type, std::string(DigestBytes(r.digest)), r.detail);
    }
    return refs;
  }

  // `policy_digest`: what the report claims; `sent`: the bundles the stream sent (none: the
  // node's own policy is acceptable).
  v1::Verdict Appraise(verifier::QuoteAppraiser& appraiser, node::TpmSealer& sealer,
                       const std::string& nonce, v1::Evidence* evidence_out = nullptr,
                       const std::string& policy_digest = "",
                       const std::vector<std::string>& sent = {}) {
    v1::RuntimeReport report;
    report.set_node_id(tpm_->node_id());
    report.set_policy_digest(policy_digest);
    v1::Challenge challenge;
    challenge.set_nonce(nonce);
    for (uint32_t pcr : {0u, 15u}) challenge.add_pcr_selection(pcr);
    auto evidence = sealer.Seal(report.SerializeAsString(), challenge,
                                appraiser.LogEntriesAcknowledged(tpm_->node_id()));
    EXPECT_TRUE(evidence.ok()) << evidence.status();
    if (!evidence.ok()) return v1::Verdict();
    verifier::IssuedChallenge issued{nonce, absl::Now() + absl::Minutes(1), {0, 15}};
    issued.policy_sha256 = sent;
    issued.node_policy_acceptable = sent.empty();
    if (evidence_out != nullptr) *evidence_out = *evidence;
    return appraiser.Appraise(verifier::AppraisalInput{tpm_->node_id(), &issued, &*evidence});
  }

  std::unique_ptr<SwtpmFixture> swtpm_;
  std::string dir_;
  std::unique_ptr<node::tpm::NodeTpm> tpm_;
  std::unique_ptr<verifier::NodeRegistry> registry_;
};

TEST_F(TpmRestartTest, NodeMeasuresItsStartAgainAndTheVerifierAffirmsTheNewEpoch) {
  auto m = node::Measurer::Start(tpm_.get(), MeasurerOptions());
  ASSERT_TRUE(m.ok()) << m.status();
  node::Measurer& measurer = **m;
  ASSERT_TRUE(measurer.MeasureNodeBinary().ok());
  ASSERT_TRUE(measurer
                  .MeasureBpfObject("vigil_probes",
                                    "\x7f"
                                    "ELF")
                  .ok());
  ASSERT_TRUE(measurer.MeasureBpfProgramTags("prog:0123456789abcdef").ok());
  ASSERT_TRUE(measurer.MeasurePolicy("").ok());
  ASSERT_EQ(measurer.log().records.size(), 5u);

  // The verifier knows this build's measurements (and the epoch marker).
  verifier::ReferenceValues refs = ReferencesFor(measurer.log());
  refs.Add(kEventTpmRestart, std::string(DigestBytes(node::TpmRestartDigest())), "epoch");
  auto appraiser = verifier::QuoteAppraiser::Create(registry_.get(), &refs, nullptr, {});
  ASSERT_TRUE(appraiser.ok()) << appraiser.status();
  node::TpmSealer sealer(tpm_.get(), &measurer, {0, 15});

  v1::Evidence before;
  v1::Verdict v = Appraise(**appraiser, sealer, std::string(32, 'a'), &before);
  ASSERT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();

  TpmRestart();
  auto pcr = tpm_->ReadPcrs({15});
  ASSERT_TRUE(pcr.ok()) << pcr.status();
  EXPECT_EQ((*pcr)[0].value, Sha256Digest{}) << "a TPM Restart resets PCR 15";

  v1::Evidence after;
  v = Appraise(**appraiser, sealer, std::string(32, 'b'), &after);
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  EXPECT_FALSE(measurer.log_mismatch());

  // The quote says Restart, not Reset.
  auto a0 = UnmarshalTPMS_ATTEST(before.quote().attest());
  auto a1 = UnmarshalTPMS_ATTEST(after.quote().attest());
  ASSERT_TRUE(a0.ok() && a1.ok());
  EXPECT_EQ(a1->clockInfo.resetCount, a0->clockInfo.resetCount);
  EXPECT_EQ(a1->clockInfo.restartCount, a0->clockInfo.restartCount + 1);

  // The new epoch: tpm-restart, a fresh node-start, the start sequence again.
  MeasurementLog log = measurer.log();
  ASSERT_EQ(log.records.size(), 11u);
  const char* expected[] = {kEventTpmRestart, kEventNodeStart,      kEventNodeBinary,
                            kEventBpfObject,  kEventBpfProgramTags, kEventNoPolicy};
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(log.records[5 + i].event_type, expected[i]) << i;
  EXPECT_EQ(log.records[7].digest, log.records[1].digest);
  ASSERT_EQ(after.log_entries_size(), 6);
  EXPECT_EQ(after.log_entries(0).recnum(), 5u);
  const std::vector<MeasurementRecord> epoch(log.records.begin() + 5, log.records.end());
  EXPECT_EQ(std::string(DigestBytes(ReplayPcr(epoch, 15))), after.quote().pcr_values(1).digest());
}

TEST_F(TpmRestartTest, TheNewEpochMeasuresOnlyThePolicyBundleTheNodeRunsNow) {
  auto m = node::Measurer::Start(tpm_.get(), MeasurerOptions());
  ASSERT_TRUE(m.ok()) << m.status();
  node::Measurer& measurer = **m;
  ASSERT_TRUE(measurer.MeasureNodeBinary().ok());
  ASSERT_TRUE(measurer.MeasureBpfObject("vigil_probes", "bpf").ok());
  ASSERT_TRUE(measurer.MeasureBpfProgramTags("prog:0123456789abcdef").ok());
  ASSERT_TRUE(measurer.MeasurePolicy("").ok());
  // The start sequence's digests are reference values; the bundles are not: the verifier
  // knows them as bundles it sent.
  verifier::ReferenceValues refs = ReferencesFor(measurer.log());
  refs.Add(kEventTpmRestart, std::string(DigestBytes(node::TpmRestartDigest())), "epoch");

  verifier::PolicySet policies;
  auto first = testing::SmallPolicy("alpha", 1);
  auto second = testing::SmallPolicy("alpha", 2);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(policies.Reset({*first}).ok());
  const v1::PolicyBundle a = policies.Current()->bundle;
  ASSERT_TRUE(policies.Put(*second).ok());
  const v1::PolicyBundle b = policies.Current()->bundle;
  // The node ran the first bundle, then the verifier sent the second.
  ASSERT_TRUE(measurer.Measure(kEventPolicyBundle, "bundle alpha@1", Sha256(a.content())).ok());
  ASSERT_TRUE(measurer.Measure(kEventPolicyBundle, "bundle alpha@2", Sha256(b.content())).ok());

  auto appraiser = verifier::QuoteAppraiser::Create(registry_.get(), &refs, nullptr, {}, &policies);
  ASSERT_TRUE(appraiser.ok()) << appraiser.status();
  node::TpmSealer sealer(tpm_.get(), &measurer, {0, 15});
  v1::Verdict v =
      Appraise(**appraiser, sealer, std::string(32, 'a'), nullptr, b.sha256(), {b.sha256()});
  ASSERT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  EXPECT_EQ(v.policy_digest(), b.sha256());
  EXPECT_THAT(v.policy_ids(), ::testing::ElementsAre("alpha@2"));

  TpmRestart();
  v = Appraise(**appraiser, sealer, std::string(32, 'b'), nullptr, b.sha256(), {b.sha256()});
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  EXPECT_EQ(v.policy_digest(), b.sha256());

  // The new epoch holds the start sequence with the running bundle as its policy record:
  // neither no-policy-bundle nor the replaced bundle is measured again.
  MeasurementLog log = measurer.log();
  ASSERT_EQ(log.records.size(), 13u);
  const char* expected[] = {kEventTpmRestart, kEventNodeStart,      kEventNodeBinary,
                            kEventBpfObject,  kEventBpfProgramTags, kEventPolicyBundle};
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(log.records[7 + i].event_type, expected[i]) << i;
  EXPECT_EQ(HexEncode(log.records[12].digest), b.sha256());
}

}  // namespace
}  // namespace vigil
