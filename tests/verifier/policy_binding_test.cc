// Which policy digests evidence may carry: the stream's bookkeeping of the bundles it sent
// (including a bundle sent after the challenge it answers) and the check of a report's
// digest against the measurement log and the challenge.

#include "verifier/policy_binding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/digest.h"
#include "common/measurement_log.h"
#include "tests/testing/policy_fixture.h"

namespace vigil::verifier {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::MeasurementLogEntry Entry(uint64_t recnum, const std::string& type, std::string_view digest) {
  v1::MeasurementLogEntry e;
  e.set_recnum(recnum);
  e.set_pcr(15);
  e.set_event_type(type);
  e.set_digest(std::string(digest));
  return e;
}

// A start sequence whose policy record is `policy_type` with `policy_digest` (raw bytes).
std::vector<v1::MeasurementLogEntry> StartLog(const std::string& policy_type,
                                              std::string_view policy_digest) {
  return {Entry(0, kEventNodeStart, DigestBytes(Sha256("start"))),
          Entry(1, kEventNodeBinary, DigestBytes(Sha256("binary"))),
          Entry(2, kEventBpfObject, DigestBytes(Sha256("bpf"))),
          Entry(3, kEventBpfProgramTags, DigestBytes(Sha256("tags"))),
          Entry(4, policy_type, policy_digest)};
}

void ExpectBinds(const std::optional<AppraisalFailure>& f) {
  EXPECT_FALSE(f.has_value()) << v1::AppraisalReason_Name(f->reason) << ": " << f->detail;
}

std::string Raw(const std::string& hex) {
  auto bytes = HexDecode(hex);
  return bytes.ok() ? *bytes : std::string();
}

TEST(StreamPolicyLogTest, BeforeAnyBundleTheNodesOwnPolicyIsAcceptable) {
  StreamPolicyLog log;
  log.ChallengeIssued();
  IssuedChallenge c;
  log.Bind(&c);
  EXPECT_TRUE(c.node_policy_acceptable);
  EXPECT_THAT(c.policy_sha256, IsEmpty());
}

TEST(StreamPolicyLogTest, ABundleSentBeforeTheChallengeIsTheOnlyOneAccepted) {
  StreamPolicyLog log;
  EXPECT_TRUE(log.Sent("aa"));
  log.ChallengeIssued();
  IssuedChallenge c;
  log.Bind(&c);
  EXPECT_FALSE(c.node_policy_acceptable);
  EXPECT_THAT(c.policy_sha256, ElementsAre("aa"));
}

TEST(StreamPolicyLogTest, ABundleSentAfterTheChallengeIsAcceptedBesideTheEarlierOne) {
  // The node may read the bundle before it answers the challenge, or answer first.
  StreamPolicyLog log;
  log.Sent("aa");
  log.ChallengeIssued();
  EXPECT_TRUE(log.Sent("bb"));
  EXPECT_TRUE(log.Sent("cc"));
  IssuedChallenge c;
  log.Bind(&c);
  EXPECT_FALSE(c.node_policy_acceptable);
  EXPECT_THAT(c.policy_sha256, ElementsAre("aa", "bb", "cc"));

  // The next challenge comes after all of them: only the last is acceptable.
  log.ChallengeIssued();
  log.Bind(&c);
  EXPECT_THAT(c.policy_sha256, ElementsAre("cc"));
}

TEST(StreamPolicyLogTest, AFirstBundleAfterTheChallengeLeavesTheNodesOwnPolicyAcceptable) {
  StreamPolicyLog log;
  log.ChallengeIssued();
  log.Sent("bb");
  IssuedChallenge c;
  log.Bind(&c);
  EXPECT_TRUE(c.node_policy_acceptable);
  EXPECT_THAT(c.policy_sha256, ElementsAre("bb"));
  log.ChallengeIssued();
  log.Bind(&c);
  EXPECT_FALSE(c.node_policy_acceptable);
  EXPECT_THAT(c.policy_sha256, ElementsAre("bb"));
}

TEST(StreamPolicyLogTest, TheBundleSentLastIsNotSentAgain) {
  StreamPolicyLog log;
  EXPECT_TRUE(log.Sent("aa"));
  EXPECT_FALSE(log.Sent("aa"));
  EXPECT_TRUE(log.Sent("bb"));
  EXPECT_TRUE(log.Sent("aa"));  // a change back is a change
  EXPECT_EQ(log.last_sent(), "aa");
}

TEST(StreamPolicyLogTest, KeepsABoundedNumberOfDigestsPerChallenge) {
  StreamPolicyLog log;
  log.ChallengeIssued();
  for (size_t i = 0; i < 3 * StreamPolicyLog::kMaxAcceptable; ++i) {
    log.Sent(absl::StrCat("d", i));
  }
  IssuedChallenge c;
  log.Bind(&c);
  ASSERT_EQ(c.policy_sha256.size(), StreamPolicyLog::kMaxAcceptable);
  EXPECT_EQ(c.policy_sha256.back(), absl::StrCat("d", 3 * StreamPolicyLog::kMaxAcceptable - 1));
}

class CheckPolicyBindingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = testing::SmallPolicy("alpha", 1);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(policies_.Reset({*a}).ok());
    bundle_ = policies_.Current()->bundle;
  }

  std::optional<AppraisalFailure> Check(const std::vector<v1::MeasurementLogEntry>& log,
                                        const std::string& report_digest,
                                        const IssuedChallenge& challenge) {
    return CheckPolicyBinding(log, report_digest, challenge, refs_, &policies_, &bound_);
  }

  static IssuedChallenge Sent(std::vector<std::string> digests) {
    IssuedChallenge c;
    c.node_policy_acceptable = false;
    c.policy_sha256 = std::move(digests);
    return c;
  }

  PolicySet policies_;
  v1::PolicyBundle bundle_;
  ReferenceValues refs_;
  BoundPolicy bound_;
};

TEST_F(CheckPolicyBindingTest, ASentBundleMeasuredAndReportedBindsWithItsIds) {
  auto log = StartLog(kEventPolicyBundle, Raw(bundle_.sha256()));
  ExpectBinds(Check(log, bundle_.sha256(), Sent({bundle_.sha256()})));
  EXPECT_EQ(bound_.sha256, bundle_.sha256());
  EXPECT_THAT(bound_.policy_ids, ElementsAre("alpha@1"));
}

TEST_F(CheckPolicyBindingTest, AReportClaimingADigestItDidNotMeasureIsAMismatch) {
  auto log = StartLog(kEventNoPolicy, DigestBytes(Sha256("vigil: no policy bundle")));
  auto f = Check(log, bundle_.sha256(), Sent({bundle_.sha256()}));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->reason, v1::POLICY_DIGEST_MISMATCH);
  EXPECT_NE(f->detail.find(bundle_.sha256().substr(0, 12)), std::string::npos) << f->detail;
  EXPECT_NE(f->detail.find("measures none"), std::string::npos) << f->detail;
}

TEST_F(CheckPolicyBindingTest, ABundleTheStreamDidNotSendIsAMismatch) {
  const std::string other = HexEncode(Sha256("another bundle"));
  auto log = StartLog(kEventPolicyBundle, Raw(other));
  auto f = Check(log, other, Sent({bundle_.sha256()}));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->reason, v1::POLICY_DIGEST_MISMATCH);
  EXPECT_NE(f->detail.find(other.substr(0, 12)), std::string::npos) << f->detail;
  EXPECT_NE(f->detail.find(bundle_.sha256().substr(0, 12)), std::string::npos) << f->detail;
}

TEST_F(CheckPolicyBindingTest, NoPolicyIsAMismatchOnceABundleWasSent) {
  auto log = StartLog(kEventNoPolicy, DigestBytes(Sha256("vigil: no policy bundle")));
  auto f = Check(log, "", Sent({bundle_.sha256()}));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->reason, v1::POLICY_DIGEST_MISMATCH);
}

TEST_F(CheckPolicyBindingTest, TheLatestPolicyRecordCounts) {
  // Started with no policy, then applied the bundle: the bundle is what the node runs.
  auto log = StartLog(kEventNoPolicy, DigestBytes(Sha256("vigil: no policy bundle")));
  log.push_back(Entry(5, kEventPolicyBundle, Raw(bundle_.sha256())));
  ExpectBinds(Check(log, bundle_.sha256(), Sent({bundle_.sha256()})));
  auto f = Check(log, "", Sent({bundle_.sha256()}));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->reason, v1::POLICY_DIGEST_MISMATCH);
}

TEST_F(CheckPolicyBindingTest, OnlyTheCurrentEpochCounts) {
  auto log = StartLog(kEventPolicyBundle, Raw(bundle_.sha256()));
  log.push_back(Entry(5, kEventTpmRestart, DigestBytes(Sha256("restart"))));
  log.push_back(Entry(6, kEventNodeStart, DigestBytes(Sha256("start"))));
  EXPECT_EQ(LatestPolicyRecord(log), nullptr);
  auto f = Check(log, bundle_.sha256(), Sent({bundle_.sha256()}));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->reason, v1::POLICY_DIGEST_MISMATCH);
}

TEST_F(CheckPolicyBindingTest, WithoutABundleSentTheNodesOwnPolicyBinds) {
  IssuedChallenge own;  // node_policy_acceptable, nothing sent
  auto none = StartLog(kEventNoPolicy, DigestBytes(Sha256("vigil: no policy bundle")));
  ExpectBinds(Check(none, "", own));
  EXPECT_EQ(bound_.sha256, "");

  const std::string file = HexEncode(Sha256("a local --policy file"));
  auto local = StartLog(kEventPolicyBundle, Raw(file));
  auto f = Check(local, file, own);
  ASSERT_TRUE(f.has_value()) << "a file that is not a reference value binds to nothing";
  EXPECT_EQ(f->reason, v1::POLICY_DIGEST_MISMATCH);
  refs_.Add(kEventPolicyBundle, Raw(file), "local policy");
  ExpectBinds(Check(local, file, own));
  EXPECT_EQ(bound_.sha256, file);
  EXPECT_THAT(bound_.policy_ids, IsEmpty());
}

TEST_F(CheckPolicyBindingTest, ASentBundleTheSetNoLongerHoldsIsAMismatch) {
  const std::string first = bundle_.sha256();
  for (int revision = 2; revision < 3 + static_cast<int>(PolicySet::kKeptSnapshots); ++revision) {
    auto p = testing::SmallPolicy("alpha", revision);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_TRUE(policies_.Put(*p).ok());
  }
  ASSERT_EQ(policies_.Find(first), nullptr);
  auto log = StartLog(kEventPolicyBundle, Raw(first));
  auto f = Check(log, first, Sent({first}));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->reason, v1::POLICY_DIGEST_MISMATCH);
  EXPECT_NE(f->detail.find("no longer holds"), std::string::npos) << f->detail;
}

TEST_F(CheckPolicyBindingTest, AnUntrustedReportDigestIsEscapedInTheDetail) {
  auto log = StartLog(kEventPolicyBundle, Raw(bundle_.sha256()));
  auto f = Check(log, "\n\x01zz", Sent({bundle_.sha256()}));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->detail.find('\n'), std::string::npos) << f->detail;
}

}  // namespace
}  // namespace vigil::verifier
