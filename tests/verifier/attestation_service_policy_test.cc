// Policy distribution on the Attest stream, against a real in-process verifier: the bundle
// goes out before the first challenge and again on every change, and each piece of evidence
// is appraised with exactly the digests the stream had sent it by then.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/policy_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/attestation_service.h"
#include "verifier/policy_set.h"
#include "verifier/unverified_appraiser.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

using ::testing::ElementsAre;
using testing::TestPki;
using testing::TestVerifier;
using testing::TestVerifierOptions;
using Stream = grpc::ClientReaderWriter<v1::NodeMessage, v1::VerifierMessage>;

// Keeps the challenge each appraisal was given; appraises as UnverifiedAppraiser does.
class ChallengeRecorder final : public EvidenceAppraiser {
 public:
  v1::Verdict Appraise(const AppraisalInput& input) override {
    {
      absl::MutexLock lock(&mu_);
      challenges_.push_back(*input.challenge);
    }
    return inner_.Appraise(input);
  }
  std::vector<IssuedChallenge> challenges() const {
    absl::MutexLock lock(&mu_);
    return challenges_;
  }

 private:
  UnverifiedAppraiser inner_;
  mutable absl::Mutex mu_;
  std::vector<IssuedChallenge> challenges_;
};

v1::NodeMessage Evidence(const std::string& nonce) {
  v1::RuntimeReport report;
  report.set_node_id(TestPki::kNodeId);
  report.set_sequence(1);
  v1::NodeMessage m;
  m.mutable_evidence()->set_nonce(nonce);
  m.mutable_evidence()->set_payload(report.SerializeAsString());
  return m;
}

class AttestationServicePolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    TestVerifierOptions options;
    options.appraiser = &recorder_;
    options.attestation.policies = &policies_;
    auto verifier = TestVerifier::Start(*pki_, std::move(options));
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
  }

  void Put(const std::string& name, int revision) {
    auto p = testing::SmallPolicy(name, revision);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_TRUE(policies_.Put(*p).ok());
  }

  std::unique_ptr<Stream> Open(grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stubs_.push_back(v1::Attestation::NewStub(verifier_->Channel(pki_->node())));
    return stubs_.back()->Attest(ctx);
  }

  static v1::VerifierMessage Read(Stream& stream) {
    v1::VerifierMessage m;
    EXPECT_TRUE(stream.Read(&m));
    return m;
  }

  ChallengeRecorder recorder_;
  PolicySet policies_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<TestVerifier> verifier_;
  std::vector<std::unique_ptr<v1::Attestation::Stub>> stubs_;
};

TEST_F(AttestationServicePolicyTest, SendsTheCurrentBundleBeforeTheFirstChallenge) {
  Put("alpha", 1);
  grpc::ClientContext ctx;
  auto stream = Open(&ctx);
  v1::VerifierMessage first = Read(*stream);
  ASSERT_TRUE(first.has_policy()) << first.DebugString();
  EXPECT_EQ(first.policy().sha256(), policies_.Current()->bundle.sha256());
  EXPECT_EQ(first.policy().content(), policies_.Current()->bundle.content());
  EXPECT_THAT(first.policy().policy_ids(), ElementsAre("alpha@1"));
  v1::VerifierMessage second = Read(*stream);
  ASSERT_TRUE(second.has_challenge()) << second.DebugString();

  ASSERT_TRUE(stream->Write(Evidence(second.challenge().nonce())));
  ASSERT_TRUE(Read(*stream).has_acknowledgement());
  auto seen = recorder_.challenges();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_FALSE(seen[0].node_policy_acceptable);
  EXPECT_THAT(seen[0].policy_sha256, ElementsAre(first.policy().sha256()));
}

TEST_F(AttestationServicePolicyTest, SendsNoBundleWhileTheSetIsEmpty) {
  grpc::ClientContext ctx;
  auto stream = Open(&ctx);
  v1::VerifierMessage first = Read(*stream);
  ASSERT_TRUE(first.has_challenge()) << first.DebugString();
  ASSERT_TRUE(stream->Write(Evidence(first.challenge().nonce())));
  ASSERT_TRUE(Read(*stream).has_acknowledgement());
  auto seen = recorder_.challenges();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].node_policy_acceptable);
  EXPECT_TRUE(seen[0].policy_sha256.empty());
}

TEST_F(AttestationServicePolicyTest, AChangeReachesOpenStreamsAndEvidenceMayCarryEitherDigest) {
  Put("alpha", 1);
  const std::string a = policies_.Current()->bundle.sha256();
  grpc::ClientContext ctx1, ctx2;
  auto one = Open(&ctx1);
  auto two = Open(&ctx2);
  ASSERT_EQ(Read(*one).policy().sha256(), a);
  v1::Challenge challenge = Read(*one).challenge();
  ASSERT_EQ(Read(*two).policy().sha256(), a);
  ASSERT_TRUE(Read(*two).has_challenge());

  // The change comes while the challenge is outstanding: the node may apply it before
  // answering, so the answer may carry either digest.
  Put("alpha", 2);
  const std::string b = policies_.Current()->bundle.sha256();
  v1::VerifierMessage pushed = Read(*one);
  ASSERT_TRUE(pushed.has_policy()) << pushed.DebugString();
  EXPECT_EQ(pushed.policy().sha256(), b);
  EXPECT_THAT(pushed.policy().policy_ids(), ElementsAre("alpha@2"));
  EXPECT_EQ(Read(*two).policy().sha256(), b);

  ASSERT_TRUE(one->Write(Evidence(challenge.nonce())));
  ASSERT_TRUE(Read(*one).has_acknowledgement());
  v1::VerifierMessage next = Read(*one);
  ASSERT_TRUE(next.has_challenge()) << next.DebugString();
  // Issued after the change: only the new digest.
  ASSERT_TRUE(one->Write(Evidence(next.challenge().nonce())));
  ASSERT_TRUE(Read(*one).has_acknowledgement());
  ASSERT_TRUE(Read(*one).has_challenge());

  auto seen = recorder_.challenges();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_THAT(seen[0].policy_sha256, ElementsAre(a, b));
  EXPECT_FALSE(seen[0].node_policy_acceptable);
  EXPECT_THAT(seen[1].policy_sha256, ElementsAre(b));

  // A stream that ended no longer listens; the other still gets changes.
  two->WritesDone();
  v1::VerifierMessage rest;
  while (two->Read(&rest)) {
  }
  EXPECT_TRUE(two->Finish().ok());
  Put("beta", 1);
  v1::VerifierMessage third = Read(*one);
  ASSERT_TRUE(third.has_policy()) << third.DebugString();
  EXPECT_THAT(third.policy().policy_ids(), ElementsAre("alpha@2", "beta@1"));
}

}  // namespace
}  // namespace vigil::verifier
