// Policy distribution end to end, with a real swtpm, a real in-process verifier (mutual-TLS
// gRPC, QuoteAppraiser, PolicySet) and the node's real stream client, policy applier,
// measurer and TPM sealer: the node gets the bundle when it connects, measures it and is
// affirmed under it; a policy change reaches it without a restart; evidence measured under
// another digest, or claiming one it did not measure, is POLICY_DIGEST_MISMATCH.

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/policy/bundle.h"
#include "node/agent/attest_client.h"
#include "node/agent/measurer.h"
#include "node/agent/policy_applier.h"
#include "node/agent/report_builder.h"
#include "node/agent/tpm_sealer.h"
#include "node/procfs/file_hash_cache.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/policy_fixture.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/node_registry.h"
#include "verifier/policy_set.h"
#include "verifier/quote_appraiser.h"

namespace vigil {
namespace {

using ::testing::ElementsAre;
using testing::TestPki;
using Stream = grpc::ClientReaderWriter<v1::NodeMessage, v1::VerifierMessage>;

// Only keeps a broken node from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kProgressBound = absl::Seconds(60);

class PolicyDistributionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto swtpm = testing::SwtpmFixture::Start();
    ASSERT_TRUE(swtpm.ok()) << swtpm.status();
    swtpm_ = std::move(*swtpm);
    const std::string dir = swtpm_->scratch_dir();
    std::ofstream(dir + "/boot_id") << "boot-one\n";
    node::tpm::NodeTpm::Options o;
    o.tcti = swtpm_->tcti();
    o.state_dir = dir + "/state";
    auto tpm = node::tpm::NodeTpm::Open(o);
    ASSERT_TRUE(tpm.ok()) << tpm.status();
    tpm_ = std::move(*tpm);

    // The node's start sequence, without a local policy.
    node::Measurer::Options m;
    m.log_path = dir + "/run/measurements.json";
    m.boot_id_path = dir + "/boot_id";
    auto measurer = node::Measurer::Start(tpm_.get(), m);
    ASSERT_TRUE(measurer.ok()) << measurer.status();
    measurer_ = std::move(*measurer);
    ASSERT_TRUE(measurer_->MeasureNodeBinary().ok());
    ASSERT_TRUE(measurer_
                    ->MeasureBpfObject("vigil_probes",
                                       "\x7f"
                                       "ELF")
                    .ok());
    ASSERT_TRUE(measurer_->MeasureBpfProgramTags("prog:0123456789abcdef").ok());
    ASSERT_TRUE(measurer_->MeasurePolicy("").ok());
    for (const MeasurementRecord& r : measurer_->log().records) {
      refs_.Add(r.event_type, std::string(DigestBytes(r.digest)), r.detail);
    }

    // The verifier: the node enrolled (its AK bound to the certificate's node id), the
    // policies, and the stream distributing them.
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::move(*pki);
    auto registry = verifier::NodeRegistry::Open(":memory:");
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = std::move(*registry);
    ASSERT_TRUE(registry_
                    ->Bind({TestPki::kNodeId, tpm_->ek_public(), tpm_->ak_public(),
                            tpm_->ak_name().substr(2), absl::Now()})
                    .ok());
    Put("alpha", 1);
    auto appraiser =
        verifier::QuoteAppraiser::Create(registry_.get(), &refs_, nullptr, {}, &policies_);
    ASSERT_TRUE(appraiser.ok()) << appraiser.status();
    appraiser_ = std::move(*appraiser);
    testing::TestVerifierOptions options;
    options.appraiser = appraiser_.get();
    options.attestation.policies = &policies_;
    options.attestation.pcr_selection = {0, 15};
    options.attestation.report_interval = absl::Milliseconds(200);
    auto verifier = testing::TestVerifier::Start(*pki_, std::move(options));
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = std::move(*verifier);

    // The node's observation side: this process is the workload.
    Selector self;
    self.name = absl::StrCat("pid=", getpid());
    self.pid = getpid();
    matcher_ = std::make_unique<node::ProcessMatcher>(std::vector<Selector>{self});
    snapshotter_ = std::make_unique<node::Snapshotter>(node::SnapshotOptions{}, &hashes_);
    node::NodeInfo info;
    info.node_id = TestPki::kNodeId;
    builder_ =
        std::make_unique<node::ReportBuilder>(info, matcher_.get(), snapshotter_.get(), nullptr);
    sealer_ = std::make_unique<node::TpmSealer>(tpm_.get(), measurer_.get(),
                                                std::vector<uint32_t>{0, 15});
    applier_ = std::make_unique<node::PolicyApplier>(
        node::PolicyTargets{matcher_.get(), snapshotter_.get(), builder_.get(), nullptr,
                            measurer_.get()},
        "");
  }

  void TearDown() override { StopNode(); }

  void Put(const std::string& name, int revision) {
    auto p = testing::SmallPolicy(name, revision);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_TRUE(policies_.Put(*p).ok());
  }

  void StartNode() {
    node::AttestClientOptions o;
    o.address = verifier_->address();
    const std::string prefix = absl::StrCat(pki_->dir(), "/node-", TestPki::kNodeId);
    auto creds =
        node::MakeNodeChannelCredentials(pki_->dir() + "/ca.crt", prefix + ".crt", prefix + ".key");
    ASSERT_TRUE(creds.ok()) << creds.status();
    o.credentials = [c = *creds]() -> absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> {
      return c;
    };
    o.initial_backoff = absl::Milliseconds(50);
    client_ =
        std::make_unique<node::AttestClient>(o, builder_.get(), sealer_.get(), applier_.get());
    client_thread_ = std::thread([this] { (void)client_->Run(); });
  }

  void StopNode() {
    if (!client_thread_.joinable()) return;
    client_->Shutdown();
    client_thread_.join();
  }

  // Waits for a recorded verdict whose policy digest is `digest`; returns it.
  std::optional<v1::Verdict> AwaitVerdictUnder(const std::string& digest) {
    absl::Time give_up = absl::Now() + kProgressBound;
    while (absl::Now() < give_up) {
      for (const auto& r : verifier_->recorded().records()) {
        if (r.verdict.policy_digest() == digest) return r.verdict;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return std::nullopt;
  }

  std::string LastVerdicts() {
    std::string out;
    for (const auto& r : verifier_->recorded().records()) {
      absl::StrAppend(&out, r.verdict.ShortDebugString(), "\n");
    }
    return out;
  }

  // The latest policy-bundle record's digest in the node's log (hex; "" when none).
  std::string LatestMeasuredBundle() {
    MeasurementLog log = measurer_->log();
    for (auto it = log.records.rbegin(); it != log.records.rend(); ++it) {
      if (it->event_type == kEventPolicyBundle) return HexEncode(it->digest);
    }
    return "";
  }

  // Opens a raw stream, reads the bundle and the challenge, and answers with a report that
  // claims `claimed` as its policy digest, sealed by the node's TPM sealer.
  v1::Verdict AnswerClaiming(const std::string& claimed, const std::string& expect_sent) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto stub = v1::Attestation::NewStub(verifier_->Channel(pki_->node()));
    std::unique_ptr<Stream> stream = stub->Attest(&ctx);
    v1::VerifierMessage bundle, challenge, ack;
    EXPECT_TRUE(stream->Read(&bundle));
    EXPECT_EQ(bundle.policy().sha256(), expect_sent) << bundle.DebugString();
    EXPECT_TRUE(stream->Read(&challenge));
    EXPECT_TRUE(challenge.has_challenge()) << challenge.DebugString();
    v1::RuntimeReport report;
    report.set_node_id(TestPki::kNodeId);
    report.set_policy_digest(claimed);
    auto evidence = sealer_->Seal(report.SerializeAsString(), challenge.challenge(),
                                  appraiser_->LogEntriesAcknowledged(TestPki::kNodeId));
    EXPECT_TRUE(evidence.ok()) << evidence.status();
    v1::NodeMessage m;
    *m.mutable_evidence() = *evidence;
    EXPECT_TRUE(stream->Write(m));
    EXPECT_TRUE(stream->Read(&ack));
    EXPECT_TRUE(ack.has_acknowledgement()) << ack.DebugString();
    ctx.TryCancel();
    return ack.acknowledgement().verdict();
  }

  std::unique_ptr<testing::SwtpmFixture> swtpm_;
  std::unique_ptr<node::tpm::NodeTpm> tpm_;
  std::unique_ptr<node::Measurer> measurer_;
  verifier::ReferenceValues refs_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<verifier::NodeRegistry> registry_;
  verifier::PolicySet policies_;
  std::unique_ptr<verifier::QuoteAppraiser> appraiser_;
  std::unique_ptr<testing::TestVerifier> verifier_;
  node::FileHashCache hashes_;
  std::unique_ptr<node::ProcessMatcher> matcher_;
  std::unique_ptr<node::Snapshotter> snapshotter_;
  std::unique_ptr<node::ReportBuilder> builder_;
  std::unique_ptr<node::TpmSealer> sealer_;
  std::unique_ptr<node::PolicyApplier> applier_;
  std::unique_ptr<node::AttestClient> client_;
  std::thread client_thread_;
};

TEST_F(PolicyDistributionTest, TheNodeRunsTheBundleItIsSentAndAChangeReachesItWithoutARestart) {
  const std::string first = policies_.Current()->bundle.sha256();
  StartNode();
  std::optional<v1::Verdict> v = AwaitVerdictUnder(first);
  ASSERT_TRUE(v.has_value()) << LastVerdicts();
  EXPECT_EQ(v->status(), v1::TRUST_AFFIRMING) << v->ShortDebugString();
  EXPECT_THAT(v->policy_ids(), ElementsAre("alpha@1"));
  EXPECT_EQ(LatestMeasuredBundle(), first);

  Put("alpha", 2);
  const std::string second = policies_.Current()->bundle.sha256();
  v = AwaitVerdictUnder(second);
  ASSERT_TRUE(v.has_value()) << LastVerdicts();
  EXPECT_EQ(v->status(), v1::TRUST_AFFIRMING) << v->ShortDebugString();
  EXPECT_THAT(v->policy_ids(), ElementsAre("alpha@2"));
  StopNode();

  node::AttestClient::Stats stats = client_->stats();
  EXPECT_EQ(stats.streams_opened, 1u) << "the change came on the open stream";
  EXPECT_EQ(stats.policies_received, 2u);
  EXPECT_EQ(stats.policies_refused, 0u);
  // Every verdict was affirming: none came under a digest the verifier did not accept.
  for (const auto& r : verifier_->recorded().records()) {
    EXPECT_EQ(r.verdict.status(), v1::TRUST_AFFIRMING) << r.verdict.ShortDebugString();
  }

  // The log: start sequence with no-policy-bundle, then each bundle once; it replays to the
  // quoted PCR (the verifier's affirming verdicts say so) and to the TPM's PCR now.
  MeasurementLog log = measurer_->log();
  ASSERT_EQ(log.records.size(), 7u);
  EXPECT_EQ(log.records[4].event_type, kEventNoPolicy);
  EXPECT_EQ(log.records[5].event_type, kEventPolicyBundle);
  EXPECT_EQ(HexEncode(log.records[5].digest), first);
  EXPECT_EQ(log.records[6].event_type, kEventPolicyBundle);
  EXPECT_EQ(HexEncode(log.records[6].digest), second);
  auto pcr = tpm_->ReadPcrs({15});
  ASSERT_TRUE(pcr.ok()) << pcr.status();
  EXPECT_EQ(ReplayPcr(log.records, 15), (*pcr)[0].value);
}

TEST_F(PolicyDistributionTest, AReportClaimingADigestItDidNotMeasureIsAMismatch) {
  const std::string sent = policies_.Current()->bundle.sha256();
  // The log's latest policy record is no-policy-bundle; the report claims the sent bundle.
  v1::Verdict v = AnswerClaiming(sent, sent);
  EXPECT_EQ(v.status(), v1::TRUST_REJECTED);
  EXPECT_THAT(v.reasons(), ElementsAre(v1::POLICY_DIGEST_MISMATCH)) << v.detail();
  EXPECT_NE(v.detail().find(sent.substr(0, 12)), std::string::npos) << v.detail();
}

TEST_F(PolicyDistributionTest, EvidenceUnderABundleThisStreamDidNotSendIsAMismatch) {
  const std::string old = policies_.Current()->bundle.sha256();
  Put("alpha", 2);
  const std::string sent = policies_.Current()->bundle.sha256();
  // A node fed the earlier bundle (which the verifier still knows, so the log checks pass)
  // measures and reports it, while the stream sent the current one.
  v1::PolicyBundle earlier = policies_.Find(old)->bundle;
  ASSERT_TRUE(applier_->Apply(earlier).ok());
  v1::Verdict v = AnswerClaiming(old, sent);
  EXPECT_EQ(v.status(), v1::TRUST_REJECTED);
  EXPECT_THAT(v.reasons(), ElementsAre(v1::POLICY_DIGEST_MISMATCH)) << v.detail();
  EXPECT_NE(v.detail().find(old.substr(0, 12)), std::string::npos) << v.detail();
  EXPECT_NE(v.detail().find(sent.substr(0, 12)), std::string::npos) << v.detail();
}

TEST_F(PolicyDistributionTest, ABundleTheVerifierNeverIssuedIsAnUnknownMeasurement) {
  auto foreign = testing::SmallPolicy("foreign", 1);
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  auto bundle = policy::BuildBundle({*foreign});
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  ASSERT_TRUE(applier_->Apply(*bundle).ok());
  v1::Verdict v = AnswerClaiming(bundle->sha256(), policies_.Current()->bundle.sha256());
  EXPECT_EQ(v.status(), v1::TRUST_REJECTED);
  EXPECT_THAT(v.reasons(), ElementsAre(v1::UNKNOWN_MEASUREMENT)) << v.detail();
  EXPECT_NE(v.detail().find("nor a policy bundle this verifier sent"), std::string::npos)
      << v.detail();
}

}  // namespace
}  // namespace vigil
