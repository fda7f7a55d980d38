// The node applies the verifier's policy bundles: a good bundle is measured into the PCR
// (a policy-bundle record the log replays), widens what the node observes and is reported;
// the same bundle again is not measured again; a tampered bundle is refused, unmeasured.
#include "node/agent/policy_applier.h"

#include <unistd.h>

#include <fstream>

#include "absl/strings/ascii.h"

#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/policy/bundle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "node/procfs/procfs.h"
#include "tests/testing/policy_fixture.h"
#include "tests/testing/swtpm_fixture.h"

namespace vigil::node {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using testing::SwtpmFixture;

class PolicyApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto swtpm = SwtpmFixture::Start();
    ASSERT_TRUE(swtpm.ok()) << swtpm.status();
    swtpm_ = std::move(*swtpm);
    const std::string dir = swtpm_->scratch_dir();
    std::ofstream(dir + "/boot_id") << "boot-one\n";
    tpm::NodeTpm::Options o;
    o.tcti = swtpm_->tcti();
    o.state_dir = dir + "/state";
    auto node = tpm::NodeTpm::Open(o);
    ASSERT_TRUE(node.ok()) << node.status();
    tpm_ = std::move(*node);
    Measurer::Options m;
    m.log_path = dir + "/run/measurements.json";
    m.boot_id_path = dir + "/boot_id";
    auto measurer = Measurer::Start(tpm_.get(), m);
    ASSERT_TRUE(measurer.ok()) << measurer.status();
    measurer_ = std::move(*measurer);

    auto comm = procfs::ReadFile("/proc/self/comm");
    ASSERT_TRUE(comm.ok()) << comm.status();
    comm_ = std::string(absl::StripTrailingAsciiWhitespace(*comm));
    Selector nothing;
    nothing.name = "comm=no-such-process";
    nothing.comm = "no-such-proc";
    matcher_ = std::make_unique<ProcessMatcher>(std::vector<Selector>{nothing});
    SnapshotOptions snap;
    snap.seccomp_syscalls = {"bpf"};
    snapshotter_ = std::make_unique<Snapshotter>(snap, &hashes_);
    NodeInfo info;
    info.node_id = "n1";
    builder_ = std::make_unique<ReportBuilder>(info, matcher_.get(), snapshotter_.get(), nullptr);
  }

  PolicyApplier MakeApplier(Measurer* measurer) {
    return PolicyApplier(
        PolicyTargets{matcher_.get(), snapshotter_.get(), builder_.get(), nullptr, measurer}, "");
  }

  // A bundle of one policy selecting this test process by comm.
  v1::PolicyBundle Bundle(int revision) {
    auto p = testing::SmallPolicy("alpha", revision, "comm=" + comm_, "ptrace");
    EXPECT_TRUE(p.ok()) << p.status();
    auto bundle = policy::BuildBundle({*p});
    EXPECT_TRUE(bundle.ok()) << bundle.status();
    return *bundle;
  }

  Sha256Digest Pcr15() {
    auto pcrs = tpm_->ReadPcrs({15});
    EXPECT_TRUE(pcrs.ok()) << pcrs.status();
    return pcrs.ok() ? (*pcrs)[0].value : Sha256Digest{};
  }

  std::unique_ptr<SwtpmFixture> swtpm_;
  std::unique_ptr<tpm::NodeTpm> tpm_;
  std::unique_ptr<Measurer> measurer_;
  std::string comm_;
  FileHashCache hashes_;
  std::unique_ptr<ProcessMatcher> matcher_;
  std::unique_ptr<Snapshotter> snapshotter_;
  std::unique_ptr<ReportBuilder> builder_;
};

TEST_F(PolicyApplierTest, MeasuresAppliesAndReportsABundle) {
  PolicyApplier applier = MakeApplier(measurer_.get());
  EXPECT_EQ(builder_->Build(1 << 20).processes_size(), 0);
  const v1::PolicyBundle bundle = Bundle(1);
  ASSERT_TRUE(applier.Apply(bundle).ok());
  EXPECT_EQ(applier.running_sha256(), bundle.sha256());

  // Measured: the log's last record is the bundle's digest, and the log replays to the PCR.
  MeasurementLog log = measurer_->log();
  ASSERT_EQ(log.records.size(), 2u);  // node-start, policy-bundle
  EXPECT_EQ(log.records[1].event_type, kEventPolicyBundle);
  EXPECT_EQ(HexEncode(log.records[1].digest), bundle.sha256());
  EXPECT_EQ(ReplayPcr(log.records, 15), Pcr15());

  // Applied: the bundle's selector beside the node's own, its syscalls beside the node's,
  // its sensitive files.
  std::vector<std::string> names;
  for (const Selector& s : matcher_->selectors()) names.push_back(s.name);
  EXPECT_THAT(names, ElementsAre("comm=no-such-process", "comm=" + comm_));
  EXPECT_THAT(snapshotter_->options().seccomp_syscalls, ElementsAre("bpf", "ptrace"));
  ASSERT_EQ(snapshotter_->options().sensitive_paths.size(), 1u);
  EXPECT_EQ(snapshotter_->options().sensitive_paths[0].glob, "/etc/agent/*.yaml");

  // Reported, and the newly selected process (this one) is observed.
  v1::RuntimeReport report = builder_->Build(1 << 20);
  EXPECT_EQ(report.policy_digest(), bundle.sha256());
  bool found = false;
  for (const v1::ProcessSnapshot& p : report.processes()) {
    if (p.pid() != getpid()) continue;
    found = true;
    EXPECT_THAT(p.matched_by(), Contains("comm=" + comm_));
  }
  EXPECT_TRUE(found) << report.DebugString();
}

TEST_F(PolicyApplierTest, TheSameBundleAgainIsNotMeasuredAgain) {
  PolicyApplier applier = MakeApplier(measurer_.get());
  ASSERT_TRUE(applier.Apply(Bundle(1)).ok());
  ASSERT_TRUE(applier.Apply(Bundle(1)).ok());
  EXPECT_EQ(measurer_->log().records.size(), 2u);
  EXPECT_EQ(applier.applied(), 1u);

  // A new revision is a new bundle: measured after the first.
  const v1::PolicyBundle two = Bundle(2);
  ASSERT_TRUE(applier.Apply(two).ok());
  MeasurementLog log = measurer_->log();
  ASSERT_EQ(log.records.size(), 3u);
  EXPECT_EQ(HexEncode(log.records[2].digest), two.sha256());
  EXPECT_EQ(builder_->Build(1 << 20).policy_digest(), two.sha256());
}

TEST_F(PolicyApplierTest, RefusesATamperedBundleAndKeepsTheOneItRuns) {
  PolicyApplier applier = MakeApplier(measurer_.get());
  const v1::PolicyBundle good = Bundle(1);
  ASSERT_TRUE(applier.Apply(good).ok());
  const Sha256Digest pcr = Pcr15();

  v1::PolicyBundle tampered = Bundle(2);
  tampered.set_content(tampered.content() + "# appended\n");
  absl::Status st = applier.Apply(tampered);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;

  v1::PolicyBundle relabelled = Bundle(2);
  relabelled.set_sha256(std::string(64, 'f'));
  EXPECT_EQ(applier.Apply(relabelled).code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(applier.refused(), 2u);
  EXPECT_EQ(applier.running_sha256(), good.sha256());
  EXPECT_EQ(measurer_->log().records.size(), 2u);
  EXPECT_EQ(Pcr15(), pcr) << "a refused bundle is not extended";
  EXPECT_EQ(builder_->Build(1 << 20).policy_digest(), good.sha256());
  EXPECT_THAT(snapshotter_->options().seccomp_syscalls, ElementsAre("bpf", "ptrace"));
}

TEST_F(PolicyApplierTest, WithoutATpmTheBundleIsAppliedAndReported) {
  PolicyApplier applier = MakeApplier(nullptr);
  const v1::PolicyBundle bundle = Bundle(1);
  ASSERT_TRUE(applier.Apply(bundle).ok());
  EXPECT_EQ(measurer_->log().records.size(), 1u);
  EXPECT_EQ(builder_->Build(1 << 20).policy_digest(), bundle.sha256());
}

}  // namespace
}  // namespace vigil::node
