#include "verifier/quote_appraiser.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "common/digest.h"
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

std::string Payload(const std::string& node_id, uint64_t sequence) {
  v1::RuntimeReport report;
  report.set_node_id(node_id);
  report.set_sequence(sequence);
  return report.SerializeAsString();
}

std::string Nonce(char fill) { return std::string(32, fill); }

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
    measurements_ =
        new std::vector<std::string>{std::string(DigestBytes(Sha256("vigil-node binary"))),
                                     std::string(DigestBytes(Sha256("bpf object")))};
    for (const std::string& m : *measurements_) {
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
      v1::MeasurementLogEntry* entry = e.add_log_entries();
      entry->set_recnum(i);
      entry->set_pcr(kMeasurementPcr);
      entry->set_digest((*measurements_)[i]);
      entry->set_event_type(i == 0 ? "vigil-node-binary" : "bpf-object");
      entry->set_content("test");
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
    for (const std::string& m : *measurements_) references_.Add(m, "test");
    appraiser_ = std::make_unique<QuoteAppraiser>(registry_.get(), &references_,
                                                  QuoteAppraiser::Options{kMeasurementPcr});
  }

  IssuedChallenge ChallengeFor(const v1::Evidence& e) const {
    return IssuedChallenge{e.nonce(), absl::Now() + absl::Minutes(1), {0, 15}};
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

  static SwtpmFixture* tpm_;
  static std::string* node_id_;
  static std::vector<std::string>* measurements_;
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
std::vector<std::string>* QuoteAppraiserTest::measurements_ = nullptr;
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
  EXPECT_EQ(appraiser_->LogEntriesAcknowledged(*node_id_), 2u);
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
  only_first.Add((*measurements_)[0], "binary");
  QuoteAppraiser strict(registry_.get(), &only_first, QuoteAppraiser::Options{kMeasurementPcr});
  IssuedChallenge c = ChallengeFor(*good_);
  ExpectRejected(strict.Appraise(AppraisalInput{*node_id_, &c, good_}), v1::UNKNOWN_MEASUREMENT);
}

TEST_F(QuoteAppraiserTest, RejectsMalformedPayloadAfterValidQuote) {
  ExpectRejected(Appraise(*garbage_payload_), v1::PAYLOAD_MALFORMED);
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

TEST_F(QuoteAppraiserTest, RefusesQualifiedSignerOfWrongShapeOnFirstQuote) {
  v1::Evidence e = Resigned(*good_, [](TPMS_ATTEST& a) { a.qualifiedSigner.size = 20; });
  ExpectRejected(Appraise(kSoftNode, e, ChallengeFor(e)), v1::QUALIFIED_SIGNER_MISMATCH);
}

TEST_F(QuoteAppraiserTest, SoftwareSignedQuoteReachesEveryCheckAndPasses) {
  v1::Evidence e = Resigned(*good_, [](TPMS_ATTEST&) {});
  EXPECT_EQ(Appraise(kSoftNode, e, ChallengeFor(e)).status(), v1::TRUST_AFFIRMING);
}

// Reference values feed UNKNOWN_MEASUREMENT; both file formats load the same digests.
TEST(ReferenceValuesTest, LoadsTextAndYamlAndRefusesBadDigests) {
  auto tmp = ::vigil::testing::TestTempDir::Create("refvals");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  const std::string dir = tmp->path();
  const std::string hex = HexEncode(Sha256("vigil-node binary"));
  std::ofstream(dir + "/ref.txt") << "# known-good\n" << hex << "  vigil-node 0.1\n\n";
  std::ofstream(dir + "/ref.yaml")
      << "reference_values:\n  - digest: " << hex << "\n    description: vigil-node 0.1\n";
  std::ofstream(dir + "/bad.txt") << hex << "\nnot-a-digest\n";
  for (const char* name : {"/ref.txt", "/ref.yaml"}) {
    auto refs = ReferenceValues::Load(dir + name);
    ASSERT_TRUE(refs.ok()) << refs.status();
    EXPECT_EQ(refs->size(), 1u);
    EXPECT_TRUE(refs->Contains(DigestBytes(Sha256("vigil-node binary"))));
    EXPECT_FALSE(refs->Contains(DigestBytes(Sha256("something else"))));
    EXPECT_EQ(refs->Describe(DigestBytes(Sha256("vigil-node binary"))), "vigil-node 0.1");
  }
  auto bad = ReferenceValues::Load(dir + "/bad.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("bad.txt:2"), std::string::npos)
      << bad.status();
  EXPECT_FALSE(ReferenceValues::Load(dir + "/missing.txt").ok());
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
