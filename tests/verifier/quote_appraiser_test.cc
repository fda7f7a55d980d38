#include "verifier/quote_appraiser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>

#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/tpm/software_ak.h"
#include "common/tpm/tpm_marshal.h"
#include "common/tpm/tpm_public.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tpm2_tools_util.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

using ::vigil::testing::ReadBytes;
using ::vigil::testing::RunTpm2Tool;
using ::vigil::testing::SwtpmFixture;
using ::vigil::tpm::SoftwareAk;

constexpr uint32_t kMeasurementPcr = 15;
const char kOtherNode[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const char kSoftNode[] = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

// A report measured under the start sequence's policy-bundle record (TypeDigest).
std::string Payload(const std::string& node_id, uint64_t sequence) {
  v1::RuntimeReport report;
  report.set_node_id(node_id);
  report.set_sequence(sequence);
  report.set_policy_digest(HexEncode(Sha256(kEventPolicyBundle)));
  return report.SerializeAsString();
}

std::string Nonce(char fill) { return std::string(32, fill); }

// The digest tests measure for an event type: SHA-256 of the type's name.
std::string TypeDigest(const std::string& type) { return std::string(DigestBytes(Sha256(type))); }

// The start sequence's event types, in order.
const std::vector<std::string>& StartTypes() {
  static const auto* types = new std::vector<std::string>{
      kEventNodeStart, kEventNodeBinary, kEventBpfObject, kEventBpfProgramTags, kEventPolicyBundle};
  return *types;
}

// A measurement-log entry of `type` carrying TypeDigest(type).
v1::MeasurementLogEntry Entry(uint64_t recnum, const std::string& type,
                              const std::string& digest = "") {
  v1::MeasurementLogEntry e;
  e.set_recnum(recnum);
  e.set_pcr(kMeasurementPcr);
  e.set_digest(digest.empty() ? TypeDigest(type) : digest);
  e.set_event_type(type);
  e.set_content("test");
  return e;
}

// Evidence quoted by tpm2_quote on a swtpm whose PCR 15 holds two measurements, shared by
// every test of the suite (quoting is the slow part); each test gets a fresh registry.
class QuoteAppraiserTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tpm = SwtpmFixture::Start();
    ASSERT_TRUE(tpm.ok()) << tpm.status();
    tpm_ = tpm->release();
    const std::string d = tpm_->scratch_dir();
    ASSERT_TRUE(
        Tool("tpm2_createek -G rsa -c " + d + "/ek.ctx -u " + d + "/ek.pub && tpm2_flushcontext -t")
            .ok());
    for (const char* ak : {"ak", "ak2"}) {
      auto out = Tool(absl::StrCat("tpm2_createak -C ", d, "/ek.ctx -c ", d, "/", ak,
                                   ".ctx -G ecc -g sha256 -s ecdsa -u ", d, "/", ak, ".pub -n ", d,
                                   "/", ak, ".name && tpm2_flushcontext -t"));
      ASSERT_TRUE(out.ok()) << out.status();
    }
    auto ek = tpm::ParseTpm2bPublic(ReadBytes(d + "/ek.pub"));
    ASSERT_TRUE(ek.ok());
    node_id_ = new std::string(tpm::NodeIdForEk(*ek));
    // The node's start sequence, each record's digest the hash of its type.
    measurements_ = new std::vector<std::pair<std::string, std::string>>();
    for (const std::string& type : StartTypes()) {
      measurements_->emplace_back(type, TypeDigest(type));
    }
    for (const auto& [type, m] : *measurements_) {
      ASSERT_TRUE(Tool(absl::StrCat("tpm2_pcrextend 15:sha256=", HexEncode(m))).ok());
    }
    older_ = new v1::Evidence(Quote("ak", Payload(*node_id_, 1), Nonce('o')));
    good_ = new v1::Evidence(Quote("ak", Payload(*node_id_, 2), Nonce('n')));
    other_ak_ = new v1::Evidence(Quote("ak2", Payload(*node_id_, 3), Nonce('n')));
    other_own_ = new v1::Evidence(Quote("ak2", Payload(kOtherNode, 5), Nonce('n')));
    garbage_payload_ = new v1::Evidence(Quote("ak", "\xff\xff not a report", Nonce('n')));
    foreign_payload_ = new v1::Evidence(Quote("ak", Payload(kOtherNode, 4), Nonce('n')));
  }

  static void TearDownTestSuite() {
    delete tpm_;
    for (auto* e : {older_, good_, other_ak_, other_own_, garbage_payload_, foreign_payload_})
      delete e;
    delete node_id_;
    delete measurements_;
  }

  static absl::StatusOr<std::string> Tool(const std::string& cmd) {
    return RunTpm2Tool(tpm_->tools_tcti(), cmd);
  }

  static v1::Evidence Quote(const std::string& ak, const std::string& payload,
                            const std::string& nonce) {
    const std::string d = tpm_->scratch_dir();
    Sha256Digest extra = Sha256Concat({nonce, DigestBytes(Sha256(payload))});
    auto out =
        Tool(absl::StrCat("tpm2_quote -c ", d, "/", ak, ".ctx -l sha256:0,15 -g sha256 -q ",
                          HexEncode(extra), " -m ", d, "/q.msg -s ", d, "/q.sig && ",
                          "tpm2_flushcontext -t && tpm2_pcrread sha256:0,15 -o ", d, "/q.pcrs"));
    EXPECT_TRUE(out.ok()) << out.status();
    v1::Evidence e;
    e.set_nonce(nonce);
    e.set_payload(payload);
    e.mutable_quote()->set_attest(ReadBytes(d + "/q.msg"));
    e.mutable_quote()->set_signature(ReadBytes(d + "/q.sig"));
    const std::string pcrs = ReadBytes(d + "/q.pcrs");
    EXPECT_EQ(pcrs.size(), 64u);
    uint32_t index[] = {0, 15};
    for (int i = 0; i < 2; ++i) {
      v1::PcrValue* v = e.mutable_quote()->add_pcr_values();
      v->set_index(index[i]);
      v->set_digest(pcrs.substr(32 * i, 32));
    }
    for (size_t i = 0; i < measurements_->size(); ++i) {
      *e.add_log_entries() = Entry(i, (*measurements_)[i].first);
    }
    return e;
  }

  void SetUp() override {
    ASSERT_NE(good_, nullptr) << "suite setup failed";
    auto registry = NodeRegistry::Open(":memory:");
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = std::move(*registry);
    const std::string d = tpm_->scratch_dir();
    ASSERT_TRUE(registry_
                    ->Bind({*node_id_, ReadBytes(d + "/ek.pub"), ReadBytes(d + "/ak.pub"),
                            ReadBytes(d + "/ak.name"), absl::Now()})
                    .ok());
    ASSERT_TRUE(registry_
                    ->Bind({kOtherNode, ReadBytes(d + "/ek.pub"), ReadBytes(d + "/ak2.pub"),
                            ReadBytes(d + "/ak2.name"), absl::Now()})
                    .ok());
    auto soft = SoftwareAk::Create();
    ASSERT_TRUE(soft.ok()) << soft.status();
    soft_ = std::move(*soft);
    ASSERT_TRUE(registry_
                    ->Bind({kSoftNode, ReadBytes(d + "/ek.pub"), soft_.tpm2b_public, soft_.name,
                            absl::Now()})
                    .ok());
    for (const auto& [type, m] : *measurements_) references_.Add(type, m, "test");
    for (const char* type : {kEventNoPolicy, kEventTpmRestart}) {
      references_.Add(type, TypeDigest(type), "test");
    }
    appraiser_ = MakeAppraiser(&references_, nullptr);
  }

  std::unique_ptr<QuoteAppraiser> MakeAppraiser(const ReferenceValues* references,
                                                const BootReferenceValues* boot) {
    auto a = QuoteAppraiser::Create(registry_.get(), references, boot,
                                    QuoteAppraiser::Options{kMeasurementPcr});
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? std::move(*a) : nullptr;
  }

  IssuedChallenge ChallengeFor(const v1::Evidence& e) const {
    return IssuedChallenge{e.nonce(), absl::Now() + absl::Minutes(1), {0, 15}, {}};
  }

  v1::Verdict Appraise(const std::string& node_id, const v1::Evidence& e,
                       const IssuedChallenge& c) {
    return appraiser_->Appraise(AppraisalInput{node_id, &c, &e});
  }

  v1::Verdict Appraise(const v1::Evidence& e) { return Appraise(*node_id_, e, ChallengeFor(e)); }

  // Re-signs `e` (as node kSoftNode) with the software AK after `edit` changes its attest.
  v1::Evidence Resigned(const v1::Evidence& e, const std::function<void(TPMS_ATTEST&)>& edit) {
    auto attest = UnmarshalTPMS_ATTEST(e.quote().attest());
    EXPECT_TRUE(attest.ok());
    attest->qualifiedSigner.size = static_cast<UINT16>(soft_.name.size());
    memcpy(attest->qualifiedSigner.name, soft_.name.data(), soft_.name.size());
    edit(*attest);
    v1::Evidence out = e;
    out.set_payload(Payload(kSoftNode, 9));
    Sha256Digest extra = Sha256Concat({out.nonce(), DigestBytes(Sha256(out.payload()))});
    attest->extraData.size = 32;
    memcpy(attest->extraData.buffer, extra.data(), 32);
    auto bytes = MarshalTPMS_ATTEST(*attest);
    EXPECT_TRUE(bytes.ok());
    auto sig = soft_.Sign(*bytes);
    EXPECT_TRUE(sig.ok());
    out.mutable_quote()->set_attest(*bytes);
    out.mutable_quote()->set_signature(*sig);
    return out;
  }

  // Evidence of node kSoftNode (software AK) whose delta is `log` from entry `send_from`, and
  // whose quoted PCR 15 is the replay of `log` from its last tpm-restart entry (or record 0).
  // The clock is the real quote's plus `tick`; restartCount the real one plus `restarts`.
  v1::Evidence LogEvidence(const std::vector<v1::MeasurementLogEntry>& log, size_t send_from = 0,
                           uint64_t tick = 0, uint32_t restarts = 0,
                           const std::function<void(TPMS_ATTEST&)>& edit = {}) {
    size_t epoch = 0;
    for (size_t i = 0; i < log.size(); ++i) {
      if (log[i].event_type() == kEventTpmRestart) epoch = i;
    }
    Sha256Digest pcr15{};
    for (size_t i = epoch; i < log.size(); ++i) {
      pcr15 = Sha256Concat({DigestBytes(pcr15), log[i].digest()});
    }
    v1::Evidence base = *good_;
    base.clear_log_entries();
    for (size_t i = send_from; i < log.size(); ++i) *base.add_log_entries() = log[i];
    base.mutable_quote()->mutable_pcr_values(1)->set_digest(std::string(DigestBytes(pcr15)));
    const Sha256Digest pcr_digest =
        Sha256Concat({base.quote().pcr_values(0).digest(), DigestBytes(pcr15)});
    return Resigned(base, [&](TPMS_ATTEST& a) {
      a.attested.quote.pcrDigest.size = 32;
      memcpy(a.attested.quote.pcrDigest.buffer, pcr_digest.data(), 32);
      a.clockInfo.clock += tick;
      a.clockInfo.restartCount += restarts;
      if (edit) edit(a);
    });
  }

  v1::Verdict AppraiseSoft(const v1::Evidence& e) {
    return Appraise(kSoftNode, e, ChallengeFor(e));
  }

  // The full start sequence, numbered from `first`.
  static std::vector<v1::MeasurementLogEntry> Sequence(uint64_t first) {
    std::vector<v1::MeasurementLogEntry> out;
    for (const auto& [type, digest] : *measurements_)
      out.push_back(Entry(first + out.size(), type));
    return out;
  }

  static SwtpmFixture* tpm_;
  static std::string* node_id_;
  static std::vector<std::pair<std::string, std::string>>* measurements_;
  static v1::Evidence* older_;
  static v1::Evidence* good_;
  static v1::Evidence* other_ak_;
  static v1::Evidence* other_own_;
  static v1::Evidence* garbage_payload_;
  static v1::Evidence* foreign_payload_;

  std::unique_ptr<NodeRegistry> registry_;
  ReferenceValues references_;
  SoftwareAk soft_;
  std::unique_ptr<QuoteAppraiser> appraiser_;
};

SwtpmFixture* QuoteAppraiserTest::tpm_ = nullptr;
std::string* QuoteAppraiserTest::node_id_ = nullptr;
std::vector<std::pair<std::string, std::string>>* QuoteAppraiserTest::measurements_ = nullptr;
v1::Evidence* QuoteAppraiserTest::older_ = nullptr;
v1::Evidence* QuoteAppraiserTest::good_ = nullptr;
v1::Evidence* QuoteAppraiserTest::other_ak_ = nullptr;
v1::Evidence* QuoteAppraiserTest::other_own_ = nullptr;
v1::Evidence* QuoteAppraiserTest::garbage_payload_ = nullptr;
v1::Evidence* QuoteAppraiserTest::foreign_payload_ = nullptr;

void ExpectRejected(const v1::Verdict& v, v1::AppraisalReason reason) {
  EXPECT_EQ(v.status(), v1::TRUST_REJECTED) << v.DebugString();
  ASSERT_EQ(v.reasons_size(), 1) << v.DebugString();
  EXPECT_EQ(v.reasons(0), reason) << v1::AppraisalReason_Name(v.reasons(0)) << ": " << v.detail();
}

TEST_F(QuoteAppraiserTest, AffirmsRealQuoteAndAcknowledgesLog) {
  v1::Verdict v = Appraise(*good_);
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  EXPECT_EQ(v.reasons_size(), 0);
  EXPECT_EQ(v.evidence_sha256(), HexEncode(Sha256(good_->payload())));
  EXPECT_EQ(appraiser_->LogEntriesAcknowledged(*node_id_), measurements_->size());
}

TEST_F(QuoteAppraiserTest, AcceptsLaterQuoteWithoutResendingHeldLog) {
  ASSERT_EQ(Appraise(*older_).status(), v1::TRUST_AFFIRMING);
  v1::Evidence next = *good_;
  next.clear_log_entries();
  EXPECT_EQ(Appraise(next).status(), v1::TRUST_AFFIRMING);
}

TEST_F(QuoteAppraiserTest, RejectsClockGoingBack) {
  ASSERT_EQ(Appraise(*good_).status(), v1::TRUST_AFFIRMING);
  ExpectRejected(Appraise(*older_), v1::CLOCK_NOT_ADVANCED);
}

TEST_F(QuoteAppraiserTest, RejectsReplayedQuote) {
  ASSERT_EQ(Appraise(*good_).status(), v1::TRUST_AFFIRMING);
  ExpectRejected(Appraise(*good_), v1::CLOCK_NOT_ADVANCED);
}

TEST_F(QuoteAppraiserTest, RejectsResetCountGoingDown) {
  auto state = registry_->Find(*node_id_);
  auto attest = UnmarshalTPMS_ATTEST(good_->quote().attest());
  ASSERT_TRUE(attest.ok());
  {
    absl::MutexLock lock(&state->mu);
    state->last_clock = QuoteClock{0, attest->clockInfo.resetCount + 1, 0};
  }
  ExpectRejected(Appraise(*good_), v1::RESET_COUNT_DECREASED);
}

TEST_F(QuoteAppraiserTest, RejectsRestartCountGoingDown) {
  auto state = registry_->Find(*node_id_);
  auto attest = UnmarshalTPMS_ATTEST(good_->quote().attest());
  ASSERT_TRUE(attest.ok());
  {
    absl::MutexLock lock(&state->mu);
    state->last_clock =
        QuoteClock{0, attest->clockInfo.resetCount, attest->clockInfo.restartCount + 1};
  }
  ExpectRejected(Appraise(*good_), v1::RESTART_COUNT_DECREASED);
}

TEST_F(QuoteAppraiserTest, RejectsQuoteByAnotherNodesAk) {
  // The other node's AK is known by its qualified name once it has reported.
  ASSERT_EQ(Appraise(kOtherNode, *other_own_, ChallengeFor(*other_own_)).status(),
            v1::TRUST_AFFIRMING);
  ExpectRejected(Appraise(*other_ak_), v1::AK_UNKNOWN);
}

TEST_F(QuoteAppraiserTest, RejectsEvidenceOfUnenrolledNode) {
  const std::string stranger(64, 'd');
  ExpectRejected(Appraise(stranger, *good_, ChallengeFor(*good_)), v1::AK_UNKNOWN);
}

TEST_F(QuoteAppraiserTest, RejectsUnknownMeasurement) {
  ReferenceValues only_first;
  only_first.Add((*measurements_)[0].first, (*measurements_)[0].second, "node start");
  auto strict = MakeAppraiser(&only_first, nullptr);
  IssuedChallenge c = ChallengeFor(*good_);
  ExpectRejected(strict->Appraise(AppraisalInput{*node_id_, &c, good_}), v1::UNKNOWN_MEASUREMENT);
}

TEST_F(QuoteAppraiserTest, RejectsMalformedPayloadAfterValidQuote) {
  ExpectRejected(Appraise(*garbage_payload_), v1::PAYLOAD_MALFORMED);
}

// RuntimeAppraiser parses the payload once and hands the report down: the quote checks and the
// payload checks apply to it as to a payload the appraiser parses itself.
TEST_F(QuoteAppraiserTest, AppraisesAReportItsCallerParsedFromThePayload) {
  v1::RuntimeReport report;
  ASSERT_TRUE(report.ParseFromString(good_->payload()));
  IssuedChallenge c = ChallengeFor(*good_);
  v1::Verdict v = appraiser_->Appraise(AppraisalInput{*node_id_, &c, good_, &report});
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  EXPECT_EQ(v.evidence_sha256(), HexEncode(Sha256(good_->payload())));
  ExpectRejected(appraiser_->Appraise(AppraisalInput{*node_id_, &c, good_, &report}),
                 v1::CLOCK_NOT_ADVANCED);
}

TEST_F(QuoteAppraiserTest, RejectsACallerParsedReportNamingAnotherNode) {
  v1::RuntimeReport report;
  ASSERT_TRUE(report.ParseFromString(foreign_payload_->payload()));
  IssuedChallenge c = ChallengeFor(*foreign_payload_);
  ExpectRejected(appraiser_->Appraise(AppraisalInput{*node_id_, &c, foreign_payload_, &report}),
                 v1::NODE_MISMATCH);
}

TEST_F(QuoteAppraiserTest, RejectsPayloadNamingAnotherNode) {
  ExpectRejected(Appraise(*foreign_payload_), v1::NODE_MISMATCH);
}

TEST_F(QuoteAppraiserTest, FailedAppraisalDoesNotAdvanceState) {
  v1::Evidence bad = *good_;
  bad.mutable_log_entries(1)->set_digest(std::string(32, 'x'));
  ExpectRejected(Appraise(bad), v1::LOG_REPLAY_MISMATCH);
  EXPECT_EQ(appraiser_->LogEntriesAcknowledged(*node_id_), 0u);
  EXPECT_EQ(Appraise(*good_).status(), v1::TRUST_AFFIRMING);
}

// A node enrolled with its SRK: every quote's qualifiedSigner must be the AK's qualified name
// computed from that parent. This swtpm's AK was created under the EK (endorsement
// hierarchy), so a binding that names an owner-hierarchy SRK (another parent, or the EK's
// public area placed in the owner hierarchy) refuses its quotes, on the first quote already;
// bound with its true parent's qualified name, the same quote is affirmed.
TEST_F(QuoteAppraiserTest, RefusesQuoteOfAnAkUnderAnotherParentThanItEnrolledWith) {
  const std::string d = tpm_->scratch_dir();
  auto created =
      Tool(absl::StrCat("tpm2_createprimary -C o -G ecc -c ", d, "/srk.ctx && tpm2_readpublic -c ",
                        d, "/srk.ctx -o ", d, "/srk.pub && tpm2_flushcontext -t"));
  ASSERT_TRUE(created.ok()) << created.status();
  auto ak = tpm::ParseTpm2bPublic(ReadBytes(d + "/ak.pub"));
  ASSERT_TRUE(ak.ok()) << ak.status();
  auto bind = [&](const std::string& parent_public, TPM2_HANDLE hierarchy) {
    auto parent = tpm::ParseTpm2bPublic(parent_public);
    ASSERT_TRUE(parent.ok()) << parent.status();
    ASSERT_TRUE(tpm::CheckStorageParentAttributes(*parent).ok());
    auto parent_qualified_name = tpm::PrimaryQualifiedName(hierarchy, *parent);
    ASSERT_TRUE(parent_qualified_name.ok());
    auto qualified_name = tpm::ChildQualifiedName(*parent_qualified_name, *ak);
    ASSERT_TRUE(qualified_name.ok());
    ASSERT_TRUE(registry_
                    ->Bind({*node_id_, ReadBytes(d + "/ek.pub"), ReadBytes(d + "/ak.pub"),
                            ReadBytes(d + "/ak.name"), absl::Now(), parent_public, *qualified_name})
                    .ok());
  };
  for (const std::string& parent : {ReadBytes(d + "/srk.pub"), ReadBytes(d + "/ek.pub")}) {
    ASSERT_NO_FATAL_FAILURE(bind(parent, TPM2_RH_OWNER));
    ExpectRejected(Appraise(*good_), v1::QUALIFIED_SIGNER_MISMATCH);
  }
  ASSERT_NO_FATAL_FAILURE(bind(ReadBytes(d + "/ek.pub"), TPM2_RH_ENDORSEMENT));
  EXPECT_EQ(Appraise(*good_).status(), v1::TRUST_AFFIRMING);
}

// A node enrolled without its SRK: the first accepted quote's qualifiedSigner is pinned, and
// the pin survives a restart of the verifier (it is persisted with the clock).
TEST_F(QuoteAppraiserTest, PinnedQualifiedSignerSurvivesRegistryReopen) {
  auto dir = ::vigil::testing::TestTempDir::Create("pin");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string db = dir->path() + "/registry.db";
  v1::Evidence first = Resigned(*good_, [](TPMS_ATTEST&) {});
  {
    auto registry = NodeRegistry::Open(db);
    ASSERT_TRUE(registry.ok()) << registry.status();
    ASSERT_TRUE(
        (*registry)->Bind({kSoftNode, "ek", soft_.tpm2b_public, soft_.name, absl::Now()}).ok());
    registry_ = *std::move(registry);
    appraiser_ = MakeAppraiser(&references_, nullptr);
    ASSERT_EQ(AppraiseSoft(first).status(), v1::TRUST_AFFIRMING);
    ASSERT_TRUE(registry_->Flush().ok());
    appraiser_.reset();
    registry_.reset();
  }
  auto registry = NodeRegistry::Open(db);
  ASSERT_TRUE(registry.ok()) << registry.status();
  registry_ = *std::move(registry);
  appraiser_ = MakeAppraiser(&references_, nullptr);
  // Same shape as the pinned name, but another value: refused after the restart too.
  v1::Evidence other = Resigned(*good_, [](TPMS_ATTEST& a) {
    a.qualifiedSigner.name[5] ^= 0x01;
    a.clockInfo.clock += 100;
  });
  ExpectRejected(AppraiseSoft(other), v1::QUALIFIED_SIGNER_MISMATCH);
  // And the clock persisted with it: the first quote again is refused as old.
  ExpectRejected(AppraiseSoft(first), v1::CLOCK_NOT_ADVANCED);
}

TEST_F(QuoteAppraiserTest, RefusesQualifiedSignerOfWrongShapeOnFirstQuote) {
  v1::Evidence e = Resigned(*good_, [](TPMS_ATTEST& a) { a.qualifiedSigner.size = 20; });
  ExpectRejected(Appraise(kSoftNode, e, ChallengeFor(e)), v1::QUALIFIED_SIGNER_MISMATCH);
}

TEST_F(QuoteAppraiserTest, SoftwareSignedQuoteReachesEveryCheckAndPasses) {
  v1::Evidence e = Resigned(*good_, [](TPMS_ATTEST&) {});
  EXPECT_EQ(Appraise(kSoftNode, e, ChallengeFor(e)).status(), v1::TRUST_AFFIRMING);
}

// Renumbers `log` 0, 1, 2, ... after entries were removed or moved.
std::vector<v1::MeasurementLogEntry> Renumbered(std::vector<v1::MeasurementLogEntry> log) {
  for (size_t i = 0; i < log.size(); ++i) log[i].set_recnum(i);
  return log;
}

TEST_F(QuoteAppraiserTest, SoftwareQuotedStartSequenceIsAffirmed) {
  v1::Verdict v = AppraiseSoft(LogEvidence(Sequence(0)));
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  // No boot reference values: the verdict says the boot chain was not appraised.
  EXPECT_NE(v.detail().find("boot PCRs not appraised"), std::string::npos) << v.detail();
}

TEST_F(QuoteAppraiserTest, EmptyLogOnFreshTpmIsMeasurementMissing) {
  // PCR 15 all zero and no log: vigil-node never ran in this boot.
  ExpectRejected(AppraiseSoft(LogEvidence({})), v1::MEASUREMENT_MISSING);
}

TEST_F(QuoteAppraiserTest, LogWithOnlyNodeStartIsMeasurementMissing) {
  ExpectRejected(AppraiseSoft(LogEvidence({Entry(0, kEventNodeStart)})), v1::MEASUREMENT_MISSING);
}

TEST_F(QuoteAppraiserTest, NodeWithoutProbesIsNeverAffirmed) {
  v1::Verdict v = AppraiseSoft(LogEvidence(
      {Entry(0, kEventNodeStart), Entry(1, kEventNodeBinary), Entry(2, kEventNoPolicy)}));
  ExpectRejected(v, v1::MEASUREMENT_MISSING);
  EXPECT_NE(v.detail().find("without its probes"), std::string::npos) << v.detail();
}

TEST_F(QuoteAppraiserTest, SwappedRecordsAreOutOfOrder) {
  for (auto [i, j] : {std::pair<int, int>{1, 2}, {2, 3}, {3, 4}, {1, 4}}) {
    std::vector<v1::MeasurementLogEntry> log = Sequence(0);
    std::swap(log[i], log[j]);
    ExpectRejected(AppraiseSoft(LogEvidence(Renumbered(log))), v1::MEASUREMENT_OUT_OF_ORDER);
  }
}

TEST_F(QuoteAppraiserTest, DigestKnownForAnotherTypeIsUnknownMeasurement) {
  // The BPF object's reference digest presented as the policy bundle.
  std::vector<v1::MeasurementLogEntry> log = Sequence(0);
  log[4].set_digest(TypeDigest(kEventBpfObject));
  v1::Verdict v = AppraiseSoft(LogEvidence(log));
  ExpectRejected(v, v1::UNKNOWN_MEASUREMENT);
  EXPECT_NE(v.detail().find("of type bpf-object"), std::string::npos) << v.detail();
}

// A node's log grows for as long as it runs (each bundle it applies adds a record); what the
// verifier holds of it does not: the count, the replay, and the latest start sequence and
// policy record. Each report sends only the entries after the acknowledged count, and a node
// restart within the boot (a new start sequence) replaces what is kept.
TEST_F(QuoteAppraiserTest, GrowingLogKeepsABoundedMeasurementState) {
  std::vector<v1::MeasurementLogEntry> log = Sequence(0);
  ASSERT_EQ(AppraiseSoft(LogEvidence(log)).status(), v1::TRUST_AFFIRMING);
  for (uint64_t round = 1; round <= 60; ++round) {
    const size_t acknowledged = appraiser_->LogEntriesAcknowledged(kSoftNode);
    ASSERT_EQ(acknowledged, log.size());
    if (round == 30) {
      for (const v1::MeasurementLogEntry& e : Sequence(log.size())) log.push_back(e);
    } else {
      log.push_back(Entry(log.size(), kEventPolicyBundle));
    }
    v1::Verdict v = AppraiseSoft(LogEvidence(log, acknowledged, round));
    ASSERT_EQ(v.status(), v1::TRUST_AFFIRMING) << round << ": " << v.detail();
    std::shared_ptr<NodeState> state = registry_->Find(kSoftNode);
    absl::MutexLock lock(&state->mu);
    const MeasurementState& m = state->measurements;
    EXPECT_EQ(m.entries, log.size());
    ASSERT_LE(m.kept.size(), StartTypes().size() + 1) << round;
    EXPECT_EQ(m.kept.front().event_type(), kEventNodeStart);
    EXPECT_EQ(m.kept.front().recnum(), round < 30 ? 0u : 5u + 29u) << round;
    EXPECT_EQ(m.kept.back().recnum(), log.size() - 1);
  }
  // A resent entry the verifier keeps must still be the same.
  std::vector<v1::MeasurementLogEntry> changed = log;
  changed[log.size() - 1].set_content("another");
  ExpectRejected(AppraiseSoft(LogEvidence(changed, log.size() - 1, 100)), v1::LOG_DISCONTINUOUS);
}

TEST_F(QuoteAppraiserTest, SpooledBatchRecordsJoinTheLedgerInTheSameStateChangeAsTheLog) {
  // The registry commits whatever a node's state holds when it is marked: the log count and
  // the batches that log measured must change together, or a verifier killed between two
  // commits would hold the log without the batches (and resent entries are not replayed).
  std::vector<v1::MeasurementLogEntry> log = Sequence(0);
  ASSERT_EQ(AppraiseSoft(LogEvidence(log)).status(), v1::TRUST_AFFIRMING);
  const std::string batch(32, '\x5a');
  log.push_back(Entry(log.size(), kEventSpoolBatch, batch));
  const size_t held = appraiser_->LogEntriesAcknowledged(kSoftNode);
  v1::Verdict v = AppraiseSoft(LogEvidence(log, held, 1));
  ASSERT_NE(v.status(), v1::TRUST_REJECTED) << v.detail();
  std::shared_ptr<NodeState> state = registry_->Find(kSoftNode);
  absl::MutexLock lock(&state->mu);
  EXPECT_EQ(state->log_entries(), log.size());
  const MeasuredBatches::Entry* e = state->spool_batches.Find(batch);
  ASSERT_NE(e, nullptr) << "the quote appraisal alone must record the measured batch";
  EXPECT_EQ(e->recnum, log.size() - 1);
  EXPECT_EQ(e->state, MeasuredBatches::State::kPending);
}

TEST_F(QuoteAppraiserTest, OnlyTheSequenceAfterTheLastNodeStartCounts) {
  // A node restarted within the boot and the new process measured only its start.
  std::vector<v1::MeasurementLogEntry> log = Sequence(0);
  log.push_back(Entry(5, kEventNodeStart));
  log.push_back(Entry(6, kEventNodeBinary));
  ExpectRejected(AppraiseSoft(LogEvidence(log)), v1::MEASUREMENT_MISSING);
  std::vector<v1::MeasurementLogEntry> full = Sequence(0);
  for (const v1::MeasurementLogEntry& e : Sequence(5)) full.push_back(e);
  EXPECT_EQ(AppraiseSoft(LogEvidence(full, 0, 1)).status(), v1::TRUST_AFFIRMING);
}

TEST_F(QuoteAppraiserTest, LogMismatchRecordIsNodeLogMismatch) {
  std::vector<v1::MeasurementLogEntry> log = {Entry(0, kEventLogMismatch)};
  for (v1::MeasurementLogEntry& e : Sequence(1)) log.push_back(e);
  ExpectRejected(AppraiseSoft(LogEvidence(log)), v1::NODE_LOG_MISMATCH);
}

TEST_F(QuoteAppraiserTest, AttackerTextIsEscapedInTheDetail) {
  std::vector<v1::MeasurementLogEntry> log = Sequence(0);
  log[2].set_event_type("bpf-object\n[info] appraisal node=x affirmed\x1b[2J");
  log[2].set_content("\xff\xfe");
  v1::Verdict v = AppraiseSoft(LogEvidence(log));
  ExpectRejected(v, v1::UNKNOWN_MEASUREMENT);
  EXPECT_EQ(v.detail().find('\n'), std::string::npos) << v.detail();
  EXPECT_EQ(v.detail().find('\x1b'), std::string::npos) << v.detail();
  EXPECT_NE(v.detail().find("bpf-object\\x0a[info]"), std::string::npos) << v.detail();
  EXPECT_NE(v.detail().find("\\xff\\xfe"), std::string::npos) << v.detail();
}

TEST_F(QuoteAppraiserTest, TpmRestartNeedsANewEpochWithTheStartSequence) {
  ASSERT_EQ(AppraiseSoft(LogEvidence(Sequence(0))).status(), v1::TRUST_AFFIRMING);
  // After Shutdown(STATE) + Startup(CLEAR) PCR 15 is reset. A node that extends only records
  // the verifier already accepted (hiding anything refused since) is not affirmed.
  ExpectRejected(AppraiseSoft(LogEvidence(Sequence(0), 5, 1, 1)), v1::MEASUREMENT_MISSING);
  // A new epoch that does not hold the start sequence again is not affirmed either.
  std::vector<v1::MeasurementLogEntry> log = Sequence(0);
  log.push_back(Entry(5, kEventTpmRestart));
  log.push_back(Entry(6, kEventNodeStart));
  ExpectRejected(AppraiseSoft(LogEvidence(log, 5, 2, 1)), v1::MEASUREMENT_MISSING);
  // The honest node: a tpm-restart record, then its full start sequence again.
  log.resize(6);
  for (const v1::MeasurementLogEntry& e : Sequence(6)) log.push_back(e);
  v1::Verdict v = AppraiseSoft(LogEvidence(log, 5, 3, 1));
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  EXPECT_EQ(appraiser_->LogEntriesAcknowledged(kSoftNode), 11u);
  // The epoch continues with later quotes.
  EXPECT_EQ(AppraiseSoft(LogEvidence(log, 11, 4, 1)).status(), v1::TRUST_AFFIRMING);
}

TEST_F(QuoteAppraiserTest, NewEpochWithoutATpmRestartIsRefused) {
  ASSERT_EQ(AppraiseSoft(LogEvidence(Sequence(0))).status(), v1::TRUST_AFFIRMING);
  std::vector<v1::MeasurementLogEntry> log = Sequence(0);
  log.push_back(Entry(5, kEventTpmRestart));
  for (const v1::MeasurementLogEntry& e : Sequence(6)) log.push_back(e);
  ExpectRejected(AppraiseSoft(LogEvidence(log, 5, 1, 0)), v1::LOG_REPLAY_MISMATCH);
}

TEST_F(QuoteAppraiserTest, UnsafeClockIsAWarningNotAffirmed) {
  v1::Verdict v =
      AppraiseSoft(LogEvidence(Sequence(0), 0, 0, 0, [](TPMS_ATTEST& a) { a.clockInfo.safe = 0; }));
  EXPECT_EQ(v.status(), v1::TRUST_WARNING) << v.DebugString();
  ASSERT_EQ(v.reasons_size(), 1);
  EXPECT_EQ(v.reasons(0), v1::CLOCK_UNSAFE);
}

TEST_F(QuoteAppraiserTest, BootPcrsAreComparedWithTheNodeClasses) {
  const std::string pcr0 = good_->quote().pcr_values(0).digest();
  BootReferenceValues other;
  other.AddClass({"other-firmware", {{0, std::string(32, '\x11')}}});
  auto strict = MakeAppraiser(&references_, &other);
  v1::Evidence e = LogEvidence(Sequence(0));
  IssuedChallenge c = ChallengeFor(e);
  v1::Verdict v = strict->Appraise(AppraisalInput{kSoftNode, &c, &e});
  ExpectRejected(v, v1::BOOT_PCR_MISMATCH);
  EXPECT_NE(v.detail().find(
                absl::StrCat("PCR 0 expected ", std::string(64, '1'), " got ", HexEncode(pcr0))),
            std::string::npos)
      << v.detail();

  BootReferenceValues classes = other;
  classes.AddClass({"lab-swtpm", {{0, pcr0}}});
  auto matching = MakeAppraiser(&references_, &classes);
  v = matching->Appraise(AppraisalInput{kSoftNode, &c, &e});
  EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.DebugString();
  EXPECT_NE(v.detail().find("node class lab-swtpm"), std::string::npos) << v.detail();
}

TEST(QuoteAppraiserOptionsTest, RefusesResettableAndBootMeasurementPcrs) {
  for (uint32_t pcr : {16u, 23u}) {
    EXPECT_EQ(QuoteAppraiser::CheckOptions({pcr, false}).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(QuoteAppraiser::CheckOptions({pcr, true}).ok());
  }
  for (uint32_t pcr : {0u, 7u, 24u}) {
    EXPECT_FALSE(QuoteAppraiser::CheckOptions({pcr, true}).ok()) << pcr;
  }
  EXPECT_TRUE(QuoteAppraiser::CheckOptions({15, false}).ok());
}

// One record of the start sequence left out, in turn.
class MissingRecordTest : public QuoteAppraiserTest,
                          public ::testing::WithParamInterface<size_t> {};

TEST_P(MissingRecordTest, IsMeasurementMissing) {
  std::vector<v1::MeasurementLogEntry> log = Sequence(0);
  log.erase(log.begin() + static_cast<std::ptrdiff_t>(GetParam()));
  ExpectRejected(AppraiseSoft(LogEvidence(Renumbered(log))), v1::MEASUREMENT_MISSING);
}

INSTANTIATE_TEST_SUITE_P(EachRecord, MissingRecordTest, ::testing::Range<size_t>(0, 5),
                         [](const auto& info) {
                           std::string name = StartTypes()[info.param];
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

class ReferenceValuesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-refvals-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
    return dir_ + "/" + name;
  }
  std::string dir_;
};

TEST_F(ReferenceValuesTest, TypedYamlMatchesOnlyItsOwnType) {
  const std::string hex = HexEncode(Sha256("vigil-node binary"));
  auto refs = ReferenceValues::Load(
      Write("rv.yaml", "reference_values:\n  - type: vigil-node-binary\n    digest: " + hex +
                           "\n    description: vigil-node 0.1\n"));
  ASSERT_TRUE(refs.ok()) << refs.status();
  EXPECT_EQ(refs->size(), 1u);
  const std::string digest(DigestBytes(Sha256("vigil-node binary")));
  EXPECT_TRUE(refs->Contains(kEventNodeBinary, digest));
  EXPECT_FALSE(refs->Contains(kEventBpfObject, digest));
  EXPECT_FALSE(refs->Contains(kEventNodeBinary, std::string(DigestBytes(Sha256("other")))));
  EXPECT_EQ(refs->Describe(kEventNodeBinary, digest), "vigil-node 0.1");
}

TEST_F(ReferenceValuesTest, RefusesUntypedFormsNamingFileAndLine) {
  const std::string hex = HexEncode(Sha256("vigil-node binary"));
  struct Case {
    std::string text;
    std::string where;
  } cases[] = {
      {"# known-good\n" + hex + "  vigil-node 0.1\n", "old.txt:2"},
      {"reference_values:\n  - " + hex + "\n", "old.txt:2"},
      {"reference_values:\n  - type: bpf-object\n    digest: " + hex + "\n  - digest: " + hex +
           "\n",
       "old.txt:4"},
      {"reference_values:\n  - type: nonsense\n    digest: " + hex + "\n", "old.txt:2"},
      {"reference_values:\n  - type: log-mismatch\n    digest: " + hex + "\n", "old.txt:2"},
      {"reference_values:\n  - type: bpf-object\n    digest: abcd\n", "old.txt:2"},
  };
  for (const Case& c : cases) {
    auto refs = ReferenceValues::Load(Write("old.txt", c.text));
    ASSERT_FALSE(refs.ok()) << c.text;
    EXPECT_EQ(refs.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(refs.status().message()).find(c.where), std::string::npos)
        << refs.status() << "\nfor\n"
        << c.text;
  }
  EXPECT_FALSE(ReferenceValues::Load(dir_ + "/missing.yaml").ok());
}

TEST_F(ReferenceValuesTest, BootClassesMatchAllTheirPcrsAndNameTheDifference) {
  const std::string a(64, 'a'), b(64, 'b');
  auto boot = BootReferenceValues::Load(Write(
      "boot.yaml", "node_classes:\n  - name: rack-a\n    pcrs: {0: " + a + ", 7: " + b + "}\n"));
  ASSERT_TRUE(boot.ok()) << boot.status();
  const std::string ra = *HexDecode(a), rb = *HexDecode(b);
  auto match = boot->Match({{0, ra}, {7, rb}, {3, ra}});
  ASSERT_TRUE(match.ok()) << match.status();
  EXPECT_EQ(*match, "rack-a");
  auto differs = boot->Match({{0, ra}, {7, ra}});
  ASSERT_FALSE(differs.ok());
  EXPECT_NE(std::string(differs.status().message()).find("PCR 7 expected " + b + " got " + a),
            std::string::npos)
      << differs.status();
  auto unquoted = boot->Match({{0, ra}});
  EXPECT_NE(
      std::string(unquoted.status().message()).find("PCR 7 expected " + b + " got (not quoted)"),
      std::string::npos);
  auto bad = BootReferenceValues::Load(
      Write("bad.yaml", "node_classes:\n  - name: x\n    pcrs:\n      9: " + a + "\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("bad.yaml:4"), std::string::npos)
      << bad.status();
}

class QuoteTamperTest;

// One mutation of valid evidence (or its challenge) and the reason it must be refused with.
struct Tamper {
  const char* name;
  v1::AppraisalReason reason;
  // Applied to a copy of the good evidence and its challenge; may re-sign through the test.
  std::function<void(QuoteTamperTest*, v1::Evidence&, IssuedChallenge&, std::string&)> apply;
};

class QuoteTamperTest : public QuoteAppraiserTest, public ::testing::WithParamInterface<Tamper> {
 public:
  using QuoteAppraiserTest::Appraise;
  using QuoteAppraiserTest::ChallengeFor;
  using QuoteAppraiserTest::Resigned;
};

TEST_P(QuoteTamperTest, RejectsWithItsOwnReason) {
  v1::Evidence e = *good_;
  IssuedChallenge c = ChallengeFor(e);
  std::string node = *node_id_;
  GetParam().apply(this, e, c, node);
  ExpectRejected(Appraise(node, e, c), GetParam().reason);
}

void SetSoft(QuoteTamperTest* t, v1::Evidence& e, IssuedChallenge& c, std::string& node,
             const std::function<void(TPMS_ATTEST&)>& edit) {
  // A first, valid quote pins the software AK's qualified name.
  v1::Evidence valid = t->Resigned(e, [](TPMS_ATTEST&) {});
  ASSERT_EQ(t->Appraise(kSoftNode, valid, t->ChallengeFor(valid)).status(), v1::TRUST_AFFIRMING);
  e = t->Resigned(e, edit);
  c.nonce = e.nonce();
  node = kSoftNode;
}

const Tamper kTampers[] = {
    {"Unquoted", v1::EVIDENCE_UNQUOTED,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) { e.clear_quote(); }},
    {"TruncatedAttest", v1::QUOTE_MALFORMED,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       e.mutable_quote()->mutable_attest()->resize(e.quote().attest().size() - 5);
     }},
    {"TruncatedSignature", v1::QUOTE_MALFORMED,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       e.mutable_quote()->mutable_signature()->resize(e.quote().signature().size() - 3);
     }},
    {"ForgedSignature", v1::SIGNATURE_INVALID,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       std::string* sig = e.mutable_quote()->mutable_signature();
       (*sig)[sig->size() - 1] ^= 0x01;
     }},
    {"AttestChangedAfterSigning", v1::SIGNATURE_INVALID,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       std::string* a = e.mutable_quote()->mutable_attest();
       (*a)[a->size() - 1] ^= 0x01;
     }},
    {"BadMagic", v1::ATTEST_MAGIC_INVALID,
     [](QuoteTamperTest* t, v1::Evidence& e, IssuedChallenge& c, std::string& n) {
       SetSoft(t, e, c, n, [](TPMS_ATTEST& a) { a.magic = 0x12345678; });
     }},
    {"BadType", v1::ATTEST_TYPE_INVALID,
     [](QuoteTamperTest* t, v1::Evidence& e, IssuedChallenge& c, std::string& n) {
       SetSoft(t, e, c, n, [](TPMS_ATTEST& a) { a.type = TPM2_ST_ATTEST_CERTIFY; });
     }},
    {"QualifiedSignerNotTheAk", v1::QUALIFIED_SIGNER_MISMATCH,
     [](QuoteTamperTest* t, v1::Evidence& e, IssuedChallenge& c, std::string& n) {
       SetSoft(t, e, c, n, [](TPMS_ATTEST& a) { a.qualifiedSigner.name[5] ^= 0x01; });
     }},
    {"WrongNonce", v1::EXTRA_DATA_MISMATCH,
     [](auto*, v1::Evidence&, IssuedChallenge& c, std::string&) { c.nonce = Nonce('w'); }},
    {"PayloadChangedAfterQuoting", v1::EXTRA_DATA_MISMATCH,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       e.set_payload(e.payload() + "x");
     }},
    {"PcrValueRemoved", v1::PCR_SELECTION_MISMATCH,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       e.mutable_quote()->mutable_pcr_values()->RemoveLast();
     }},
    {"ChallengeAskedOtherPcrs", v1::PCR_SELECTION_MISMATCH,
     [](auto*, v1::Evidence&, IssuedChallenge& c, std::string&) {
       c.pcr_selection = {0, 7, 15};
     }},
    {"PcrValueChanged", v1::PCR_DIGEST_MISMATCH,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       (*e.mutable_quote()->mutable_pcr_values(0)->mutable_digest())[0] ^= 0x01;
     }},
    {"LogEntryChanged", v1::LOG_REPLAY_MISMATCH,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       (*e.mutable_log_entries(0)->mutable_digest())[3] ^= 0x01;
     }},
    {"LastLogEntryRemoved", v1::LOG_REPLAY_MISMATCH,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       e.mutable_log_entries()->RemoveLast();
     }},
    {"FirstLogEntryRemoved", v1::LOG_DISCONTINUOUS,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       e.mutable_log_entries()->DeleteSubrange(0, 1);
     }},
    {"LogEntriesReordered", v1::LOG_DISCONTINUOUS,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       e.mutable_log_entries()->SwapElements(0, 1);
     }},
    {"LogEntriesReorderedAndRenumbered", v1::LOG_REPLAY_MISMATCH,
     [](auto*, v1::Evidence& e, IssuedChallenge&, std::string&) {
       e.mutable_log_entries()->SwapElements(0, 1);
       e.mutable_log_entries(0)->set_recnum(0);
       e.mutable_log_entries(1)->set_recnum(1);
     }},
};

INSTANTIATE_TEST_SUITE_P(Adversarial, QuoteTamperTest, ::testing::ValuesIn(kTampers),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace vigil::verifier
