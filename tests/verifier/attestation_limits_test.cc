// The Attest stream's limits (StreamLimits) at the RPC edge: a real in-process verifier with
// real certificates; each refusal is a RESOURCE_EXHAUSTED status, a counter, and costs no
// store write.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

#include "tests/testing/manual_clock.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/attestation_service.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

using testing::TestPki;
using testing::TestVerifier;
using testing::TestVerifierOptions;
using Stream = grpc::ClientReaderWriter<v1::NodeMessage, v1::VerifierMessage>;

using ManualClock = testing::AtomicManualClock;

v1::NodeMessage Evidence(const std::string& nonce, uint64_t sequence) {
  v1::RuntimeReport report;
  report.set_node_id(TestPki::kNodeId);
  report.set_sequence(sequence);
  v1::NodeMessage m;
  m.mutable_evidence()->set_nonce(nonce);
  m.mutable_evidence()->set_payload(report.SerializeAsString());
  return m;
}

class AttestationLimitsTest : public ::testing::Test {
 protected:
  void Start(StreamLimits limits) {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    TestVerifierOptions options;
    options.attestation.limits = limits;
    options.attestation.clock = [this] { return clock_.Now(); };
    absl::StatusOr<std::unique_ptr<TestVerifier>> verifier =
        TestVerifier::Start(*pki_, std::move(options));
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
  }

  // A stream as `identity`, its context and stub kept alive with it.
  struct Open {
    grpc::ClientContext ctx;
    std::unique_ptr<v1::Attestation::Stub> stub;
    std::unique_ptr<Stream> stream;
  };
  std::unique_ptr<Open> OpenStream(const CertAndKey& identity) {
    auto open = std::make_unique<Open>();
    open->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    open->stub = v1::Attestation::NewStub(verifier_->Channel(identity));
    open->stream = open->stub->Attest(&open->ctx);
    return open;
  }

  static std::string ReadChallenge(Stream& stream) {
    v1::VerifierMessage m;
    EXPECT_TRUE(stream.Read(&m));
    EXPECT_TRUE(m.has_challenge()) << m.DebugString();
    return m.challenge().nonce();
  }

  // Answers `nonce`; returns the next nonce after checking the acknowledgement.
  static std::string Answer(Stream& stream, const std::string& nonce, uint64_t sequence) {
    EXPECT_TRUE(stream.Write(Evidence(nonce, sequence)));
    v1::VerifierMessage ack;
    EXPECT_TRUE(stream.Read(&ack));
    EXPECT_TRUE(ack.has_acknowledgement()) << ack.DebugString();
    return ReadChallenge(stream);
  }

  // Reads what is left and returns the stream's status.
  static grpc::Status Drain(Stream& stream) {
    v1::VerifierMessage ignored;
    while (stream.Read(&ignored)) {
    }
    return stream.Finish();
  }

  ManualClock clock_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<TestVerifier> verifier_;
};

TEST_F(AttestationLimitsTest, RefusesAStreamBeyondThePerNodeLimitAndKeepsTheFirst) {
  Start({.max_streams = 0,
         .max_streams_per_node = 1,
         .evidence_per_second = 0,
         .evidence_burst = 20});
  auto first = OpenStream(pki_->node());
  std::string nonce = ReadChallenge(*first->stream);

  auto second = OpenStream(pki_->node());
  grpc::Status refused = Drain(*second->stream);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(verifier_->attestation().counters().streams_refused_per_node, 1u);

  // The first stream is untouched and still appraised.
  Answer(*first->stream, nonce, 1);
  EXPECT_EQ(verifier_->recorded().records().size(), 1u);
  EXPECT_EQ(verifier_->attestation().OpenStreams(), 1u);
}

TEST_F(AttestationLimitsTest, RefusesAStreamBeyondTheTotalLimit) {
  Start({.max_streams = 1,
         .max_streams_per_node = 0,
         .evidence_per_second = 0,
         .evidence_burst = 20});
  auto first = OpenStream(pki_->node());
  ReadChallenge(*first->stream);

  absl::StatusOr<CertAndKey> other = pki_->IssueNode(std::string(64, 'e'));
  ASSERT_TRUE(other.ok()) << other.status();
  auto second = OpenStream(*other);
  grpc::Status refused = Drain(*second->stream);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  AttestationCounters counters = verifier_->attestation().counters();
  EXPECT_EQ(counters.streams_refused_total, 1u);
  EXPECT_EQ(counters.streams_refused_per_node, 0u);
}

TEST_F(AttestationLimitsTest, EvidenceBeyondTheNodesRateEndsTheStreamWithoutAStoreWrite) {
  // Three tokens: the stream's open and two answers; the third answer is over the rate.
  Start({.max_streams = 20000,
         .max_streams_per_node = 0,
         .evidence_per_second = 0.001,
         .evidence_burst = 3});
  auto open = OpenStream(pki_->node());
  std::string nonce = ReadChallenge(*open->stream);
  nonce = Answer(*open->stream, nonce, 1);
  nonce = Answer(*open->stream, nonce, 2);
  ASSERT_TRUE(open->stream->Write(Evidence(nonce, 3)));
  grpc::Status ended = Drain(*open->stream);
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << ended.error_message();
  EXPECT_EQ(verifier_->recorded().records().size(), 2u);
  EXPECT_EQ(verifier_->attestation().counters().rate_limited, 1u);

  // Reconnecting does not refill the bucket: the new stream is refused before its challenge.
  auto again = OpenStream(pki_->node());
  v1::VerifierMessage m;
  EXPECT_FALSE(again->stream->Read(&m)) << m.DebugString();
  EXPECT_EQ(again->stream->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(verifier_->attestation().counters().rate_limited, 2u);
  EXPECT_EQ(verifier_->recorded().records().size(), 2u);
}

TEST_F(AttestationLimitsTest, JunkEvidenceIsRateLimitedLikeAnyOther) {
  // Evidence with a nonce the verifier never issued costs a store write and a challenge
  // each; the rate limit stops it after the burst.
  Start({.max_streams = 20000,
         .max_streams_per_node = 0,
         .evidence_per_second = 0.001,
         .evidence_burst = 5});
  auto open = OpenStream(pki_->node());
  ReadChallenge(*open->stream);
  int answered = 0;
  for (int i = 0; i < 50; ++i) {
    if (!open->stream->Write(Evidence(std::string(32, 'j'), i))) break;
    v1::VerifierMessage ack;
    if (!open->stream->Read(&ack)) break;
    ASSERT_TRUE(ack.has_acknowledgement()) << ack.DebugString();
    EXPECT_EQ(ack.acknowledgement().verdict().status(), v1::TRUST_REJECTED);
    ReadChallenge(*open->stream);
    ++answered;
  }
  EXPECT_EQ(answered, 4);  // five tokens, one taken by the open
  EXPECT_EQ(Drain(*open->stream).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(verifier_->recorded().records().size(), 4u);
  EXPECT_EQ(verifier_->attestation().counters().rate_limited, 1u);
}

TEST_F(AttestationLimitsTest, RenewalRequestsTakeFromTheSameBucket) {
  // Two tokens: the open and one renewal request. This verifier renews nothing, so a request
  // within the rate ends the stream UNIMPLEMENTED; one over the rate never gets that far.
  Start({.max_streams = 0,
         .max_streams_per_node = 0,
         .evidence_per_second = 0.001,
         .evidence_burst = 2});
  v1::NodeMessage renewal;
  renewal.mutable_renewal()->set_csr_pem("not looked at");

  auto first = OpenStream(pki_->node());
  ReadChallenge(*first->stream);
  ASSERT_TRUE(first->stream->Write(renewal));
  EXPECT_EQ(Drain(*first->stream).error_code(), grpc::StatusCode::UNIMPLEMENTED);

  clock_.Advance(absl::Seconds(1000));  // one token back: the next open
  auto second = OpenStream(pki_->node());
  ReadChallenge(*second->stream);
  ASSERT_TRUE(second->stream->Write(renewal));
  EXPECT_EQ(Drain(*second->stream).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(verifier_->attestation().counters().rate_limited, 1u);
}

}  // namespace
}  // namespace vigil::verifier
