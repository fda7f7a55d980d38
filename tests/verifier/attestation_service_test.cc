// The Attest stream protocol, against a real in-process verifier with real certificates.

#include "verifier/attestation_service.h"

#include <gtest/gtest.h>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "tests/testing/manual_clock.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

using testing::TestPki;
using testing::TestVerifier;
using testing::TestVerifierOptions;
using Stream = grpc::ClientReaderWriter<v1::NodeMessage, v1::VerifierMessage>;

constexpr absl::Duration kTtl = absl::Seconds(60);

using ManualClock = testing::AtomicManualClock;

std::string Report(const std::string& node_id, uint64_t sequence) {
  v1::RuntimeReport report;
  report.set_node_id(node_id);
  report.set_sequence(sequence);
  v1::ProcessSnapshot* p = report.add_processes();
  p->set_pid(812);
  p->set_comm("hardened-agent");
  p->mutable_seccomp()->set_mode(2);
  return report.SerializeAsString();
}

v1::NodeMessage EvidenceMessage(const std::string& nonce, const std::string& payload) {
  v1::NodeMessage m;
  m.mutable_evidence()->set_nonce(nonce);
  m.mutable_evidence()->set_payload(payload);
  return m;
}

// The Attest method spoken with raw bytes, as a broken or hostile node would: each call blocks
// until its operation completes and returns whether it succeeded.
class RawAttestStream {
 public:
  explicit RawAttestStream(std::shared_ptr<grpc::Channel> channel) : stub_(std::move(channel)) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    call_ = stub_.PrepareCall(&ctx_, "/vigil.v1.Attestation/Attest", &cq_);
    call_->StartCall(Tag());
    started_ = Await();
  }

  ~RawAttestStream() {
    call_.reset();
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  bool started() const { return started_; }

  bool Write(std::string_view bytes) {
    grpc::Slice slice(bytes.data(), bytes.size());
    grpc::ByteBuffer buffer(&slice, 1);
    call_->Write(buffer, Tag());
    return Await();
  }

  bool Read(v1::VerifierMessage* message) {
    grpc::ByteBuffer buffer;
    call_->Read(&buffer, Tag());
    if (!Await()) return false;
    return grpc::SerializationTraits<v1::VerifierMessage>::Deserialize(&buffer, message).ok();
  }

  bool WritesDone() {
    call_->WritesDone(Tag());
    return Await();
  }

  // Reads (and drops) what the verifier still sends, then returns the stream's status.
  grpc::Status Finish() {
    v1::VerifierMessage ignored;
    while (Read(&ignored)) {
    }
    grpc::Status status;
    call_->Finish(&status, Tag());
    Await();
    return status;
  }

 private:
  void* Tag() { return reinterpret_cast<void*>(++next_tag_); }

  // Waits for the operation just started (one at a time) and returns whether it succeeded.
  bool Await() {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq_.Next(&tag, &ok));
    EXPECT_EQ(tag, reinterpret_cast<void*>(next_tag_));
    return ok;
  }

  grpc::ClientContext ctx_;
  grpc::CompletionQueue cq_;
  grpc::GenericStub stub_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool started_ = false;
  intptr_t next_tag_ = 0;
};

class AttestationServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    TestVerifierOptions options;
    options.attestation.nonce_ttl = kTtl;
    options.attestation.report_interval = absl::Milliseconds(2500);
    options.attestation.pcr_selection = {0, 7, 15};
    options.attestation.clock = [this] { return clock_.Now(); };
    absl::StatusOr<std::unique_ptr<TestVerifier>> verifier =
        TestVerifier::Start(*pki_, std::move(options));
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
  }

  std::unique_ptr<Stream> Open(const CertAndKey& identity, grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stub_ = v1::Attestation::NewStub(verifier_->Channel(identity));
    return stub_->Attest(ctx);
  }

  // Reads one message that must be a Challenge.
  v1::Challenge ReadChallenge(Stream& stream) {
    v1::VerifierMessage m;
    EXPECT_TRUE(stream.Read(&m));
    EXPECT_TRUE(m.has_challenge()) << m.DebugString();
    return m.challenge();
  }

  // Sends evidence and reads the Acknowledgement and the next Challenge.
  v1::Acknowledgement Answer(Stream& stream, const std::string& nonce, const std::string& payload,
                             v1::Challenge* next) {
    EXPECT_TRUE(stream.Write(EvidenceMessage(nonce, payload)));
    v1::VerifierMessage ack;
    EXPECT_TRUE(stream.Read(&ack));
    EXPECT_TRUE(ack.has_acknowledgement()) << ack.DebugString();
    *next = ReadChallenge(stream);
    return ack.acknowledgement();
  }

  ManualClock clock_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<TestVerifier> verifier_;
  std::unique_ptr<v1::Attestation::Stub> stub_;
};

TEST_F(AttestationServiceTest, SpeaksFirstWithAFreshChallenge) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  v1::Challenge c = ReadChallenge(*stream);
  EXPECT_EQ(c.nonce().size(), 32u);
  EXPECT_EQ(c.expires_unix_nano(), absl::ToUnixNanos(clock_.Now() + kTtl));
  EXPECT_EQ(c.report_interval_ms(), 2500u);
  EXPECT_EQ(std::vector<uint32_t>(c.pcr_selection().begin(), c.pcr_selection().end()),
            (std::vector<uint32_t>{0, 7, 15}));
  verifier_->recorded().AwaitConnected(TestPki::kNodeId, true);
}

TEST_F(AttestationServiceTest, AnswersEvidenceWithAcknowledgementThenANewChallenge) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  v1::Challenge first = ReadChallenge(*stream);
  std::string payload = Report(TestPki::kNodeId, 3);
  v1::Challenge second;
  v1::Acknowledgement ack = Answer(*stream, first.nonce(), payload, &second);

  EXPECT_EQ(ack.sequence(), 3u);
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_UNVERIFIED);
  EXPECT_EQ(ack.verdict().detail(), "evidence not bound to a TPM quote");
  EXPECT_EQ(ack.verdict().evidence_sha256(), HexEncode(Sha256(payload)));
  EXPECT_GT(ack.verdict().appraised_unix_nano(), 0);
  EXPECT_EQ(second.nonce().size(), 32u);
  EXPECT_NE(second.nonce(), first.nonce());

  auto records = verifier_->recorded().records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].node_id, TestPki::kNodeId);
  EXPECT_EQ(records[0].evidence.payload(), payload);
  EXPECT_EQ(records[0].verdict.status(), v1::TRUST_UNVERIFIED);
}

// Captures what the process logs at `level` while it lives (spdlog's default logger is the
// process's; the one before is put back).
class CapturedLog {
 public:
  explicit CapturedLog(spdlog::level::level_enum level)
      : before_(spdlog::default_logger()), before_level_(spdlog::get_level()) {
    auto logger = std::make_shared<spdlog::logger>(
        "captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    logger->set_level(level);
    spdlog::set_default_logger(std::move(logger));
    spdlog::set_level(level);
  }
  ~CapturedLog() {
    spdlog::set_default_logger(before_);
    spdlog::set_level(before_level_);
  }
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> before_;
  spdlog::level::level_enum before_level_;
};

TEST_F(AttestationServiceTest, LogsALinePerReportAndEachProcessOnlyAtDebug) {
  const std::string node = std::string(TestPki::kNodeId).substr(0, 12);
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  v1::Challenge challenge = ReadChallenge(*stream);
  {
    CapturedLog log(spdlog::level::info);
    v1::Challenge next;
    Answer(*stream, challenge.nonce(), Report(TestPki::kNodeId, 3), &next);
    challenge = next;
    const std::string text = log.text();
    EXPECT_NE(
        text.find(absl::StrCat("report node=", node, " seq=3 verdict=UNVERIFIED workloads=none")),
        std::string::npos)
        << text;
    EXPECT_EQ(text.find("pid=812"), std::string::npos) << text;
  }
  {
    CapturedLog log(spdlog::level::debug);
    v1::Challenge next;
    Answer(*stream, challenge.nonce(), Report(TestPki::kNodeId, 4), &next);
    const std::string text = log.text();
    EXPECT_NE(text.find(absl::StrCat("report node=", node, " seq=4 verdict=UNVERIFIED")),
              std::string::npos)
        << text;
    EXPECT_NE(text.find(absl::StrCat("report node=", node,
                                     " seq=4 pid=812 comm=hardened-agent seccomp=2")),
              std::string::npos)
        << text;
  }
}

TEST(ReportLogLineTest, NamesEachWorkloadWithItsStatusTellingSharedNamesApart) {
  v1::Verdict verdict;
  verdict.set_status(v1::TRUST_CONTRAINDICATED);
  auto add = [&verdict](const std::string& name, char id, v1::TrustStatus status) {
    v1::WorkloadVerdict* w = verdict.add_workloads();
    w->mutable_identity()->set_name(name);
    w->set_workload_id(std::string(64, id));
    w->set_status(status);
  };
  add("runner", 'a', v1::TRUST_AFFIRMING);
  add("agent", 'b', v1::TRUST_AFFIRMING);
  add("agent", 'c', v1::TRUST_CONTRAINDICATED);
  add("", 'd', v1::TRUST_WARNING);
  add("bad\nname", 'e', v1::TRUST_AFFIRMING);
  EXPECT_EQ(ReportLogLine(std::string(64, 'f'), 7, verdict),
            "report node=ffffffffffff seq=7 verdict=CONTRAINDICATED workloads=runner:AFFIRMING,"
            "agent#bbbbbbbbbbbb:AFFIRMING,agent#cccccccccccc:CONTRAINDICATED,"
            "#dddddddddddd:WARNING,bad\\x0aname:AFFIRMING");
  EXPECT_EQ(ReportLogLine("short", 0, v1::Verdict()),
            "report node=short seq=0 verdict=STATUS_UNSPECIFIED workloads=none");
}

TEST_F(AttestationServiceTest, RejectsAReusedNonce) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  v1::Challenge first = ReadChallenge(*stream);
  v1::Challenge next;
  Answer(*stream, first.nonce(), Report(TestPki::kNodeId, 1), &next);
  v1::Acknowledgement replay = Answer(*stream, first.nonce(), Report(TestPki::kNodeId, 1), &next);
  EXPECT_EQ(replay.verdict().status(), v1::TRUST_REJECTED);
  ASSERT_EQ(replay.verdict().reasons_size(), 1);
  EXPECT_EQ(replay.verdict().reasons(0), v1::NONCE_REUSED);
  // The fresh nonce still works after a rejection.
  v1::Acknowledgement ok = Answer(*stream, next.nonce(), Report(TestPki::kNodeId, 2), &next);
  EXPECT_EQ(ok.verdict().status(), v1::TRUST_UNVERIFIED);
}

TEST_F(AttestationServiceTest, RejectsANonceNeverIssuedOnThisStream) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  v1::Challenge first = ReadChallenge(*stream);
  std::string forged = first.nonce();
  forged[0] ^= 1;
  v1::Challenge next;
  v1::Acknowledgement ack = Answer(*stream, forged, Report(TestPki::kNodeId, 1), &next);
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_REJECTED);
  ASSERT_EQ(ack.verdict().reasons_size(), 1);
  EXPECT_EQ(ack.verdict().reasons(0), v1::NONCE_UNKNOWN);

  // A nonce issued on another stream is unknown here too.
  grpc::ClientContext other_ctx;
  auto other_stub = v1::Attestation::NewStub(verifier_->Channel(pki_->node()));
  other_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto other = other_stub->Attest(&other_ctx);
  v1::Challenge theirs = ReadChallenge(*other);
  ack = Answer(*stream, theirs.nonce(), Report(TestPki::kNodeId, 2), &next);
  EXPECT_EQ(ack.verdict().reasons(0), v1::NONCE_UNKNOWN);
}

TEST_F(AttestationServiceTest, RejectsAnExpiredNonce) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  v1::Challenge first = ReadChallenge(*stream);
  clock_.Advance(kTtl + absl::Nanoseconds(1));
  v1::Challenge next;
  v1::Acknowledgement ack = Answer(*stream, first.nonce(), Report(TestPki::kNodeId, 1), &next);
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_REJECTED);
  ASSERT_EQ(ack.verdict().reasons_size(), 1);
  EXPECT_EQ(ack.verdict().reasons(0), v1::NONCE_EXPIRED);
  // The next challenge expires relative to the (advanced) clock and is accepted.
  EXPECT_EQ(next.expires_unix_nano(), absl::ToUnixNanos(clock_.Now() + kTtl));
  ack = Answer(*stream, next.nonce(), Report(TestPki::kNodeId, 2), &next);
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_UNVERIFIED);
}

TEST_F(AttestationServiceTest, ANonceReplacedByANewerChallengeIsRefused) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  v1::Challenge first = ReadChallenge(*stream);
  v1::Challenge second;
  // Wrong nonce: the verifier answers with a new challenge that replaces `first`.
  Answer(*stream, "bogus", Report(TestPki::kNodeId, 1), &second);
  v1::Challenge third;
  v1::Acknowledgement ack = Answer(*stream, first.nonce(), Report(TestPki::kNodeId, 1), &third);
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_REJECTED);
  EXPECT_EQ(ack.verdict().reasons(0), v1::NONCE_EXPIRED);
}

TEST_F(AttestationServiceTest, RejectsAReportNamingAnotherNode) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  v1::Challenge first = ReadChallenge(*stream);
  v1::Challenge next;
  v1::Acknowledgement ack = Answer(*stream, first.nonce(), Report("someone-else", 5), &next);
  EXPECT_EQ(ack.sequence(), 5u);
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_REJECTED);
  ASSERT_EQ(ack.verdict().reasons_size(), 1);
  EXPECT_EQ(ack.verdict().reasons(0), v1::NODE_MISMATCH);
  // The sink records it under the certificate's node, not the claimed one.
  EXPECT_EQ(verifier_->recorded().records().at(0).node_id, TestPki::kNodeId);
}

TEST_F(AttestationServiceTest, RejectsAPayloadThatIsNotARuntimeReport) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  v1::Challenge first = ReadChallenge(*stream);
  v1::Challenge next;
  v1::Acknowledgement ack = Answer(*stream, first.nonce(), "\xff\xff\xff garbage", &next);
  EXPECT_EQ(ack.sequence(), 0u);
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_REJECTED);
  EXPECT_EQ(ack.verdict().reasons(0), v1::PAYLOAD_MALFORMED);
}

TEST_F(AttestationServiceTest, ClientCertificateMayNotAttest) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->client(), &ctx);
  v1::VerifierMessage m;
  EXPECT_FALSE(stream->Read(&m));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_TRUE(verifier_->recorded().records().empty());
}

TEST_F(AttestationServiceTest, RenewalWithoutARenewerEndsTheStreamUnimplemented) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  ReadChallenge(*stream);
  v1::NodeMessage renewal;
  renewal.mutable_renewal()->set_csr_pem("csr");
  ASSERT_TRUE(stream->Write(renewal));
  v1::VerifierMessage m;
  EXPECT_FALSE(stream->Read(&m));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(AttestationServiceTest, NodeClosingItsSideEndsTheStreamCleanly) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  ReadChallenge(*stream);
  ASSERT_TRUE(stream->WritesDone());
  v1::VerifierMessage m;
  EXPECT_FALSE(stream->Read(&m));
  EXPECT_TRUE(stream->Finish().ok());
  verifier_->recorded().AwaitConnected(TestPki::kNodeId, false);
}

TEST_F(AttestationServiceTest, UndecodableMessageEndsTheStreamInvalidArgument) {
  RawAttestStream stream(verifier_->Channel(pki_->node()));
  ASSERT_TRUE(stream.started());
  v1::VerifierMessage m;
  ASSERT_TRUE(stream.Read(&m));
  ASSERT_TRUE(m.has_challenge()) << m.DebugString();
  // 0xff opens a varint that never ends: no NodeMessage parses from these bytes.
  stream.Write(std::string_view("\xff\xff\xff", 3));
  grpc::Status status = stream.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(status.error_message(), "the stream carried a message that is not a NodeMessage");
  EXPECT_TRUE(verifier_->recorded().records().empty());
  verifier_->recorded().AwaitConnected(TestPki::kNodeId, false);
}

TEST_F(AttestationServiceTest, UndecodableMessageAfterEvidenceEndsTheStreamInvalidArgument) {
  RawAttestStream stream(verifier_->Channel(pki_->node()));
  ASSERT_TRUE(stream.started());
  v1::VerifierMessage m;
  ASSERT_TRUE(stream.Read(&m));
  ASSERT_TRUE(m.has_challenge());
  ASSERT_TRUE(stream.Write(
      EvidenceMessage(m.challenge().nonce(), Report(TestPki::kNodeId, 1)).SerializeAsString()));
  ASSERT_TRUE(stream.Read(&m));
  ASSERT_TRUE(m.has_acknowledgement()) << m.DebugString();
  EXPECT_EQ(m.acknowledgement().verdict().status(), v1::TRUST_UNVERIFIED);
  ASSERT_TRUE(stream.Read(&m));
  ASSERT_TRUE(m.has_challenge()) << m.DebugString();
  // A length-delimited field 1 (evidence) claiming more bytes than follow.
  stream.Write(std::string_view("\x0a\x7f\x0a", 3));
  grpc::Status status = stream.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(verifier_->recorded().records().size(), 1u);
}

TEST_F(AttestationServiceTest, MessageOverTheSizeLimitEndsTheStreamResourceExhausted) {
  // The client may send more than the verifier accepts (4 MiB here): the listener's limit
  // still applies to the raw method.
  RawAttestStream stream(
      testing::MakeChannel(verifier_->address(),
                           testing::ClientCredentials(pki_->ca_cert_pem(), pki_->node()), 8 << 20));
  ASSERT_TRUE(stream.started());
  v1::VerifierMessage m;
  ASSERT_TRUE(stream.Read(&m));
  ASSERT_TRUE(m.has_challenge());
  v1::NodeMessage big = EvidenceMessage(m.challenge().nonce(), std::string((4 << 20) + 1, 'x'));
  stream.Write(big.SerializeAsString());
  grpc::Status status = stream.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_TRUE(verifier_->recorded().records().empty());
}

TEST_F(AttestationServiceTest, EmptyStreamEndsCleanly) {
  RawAttestStream stream(verifier_->Channel(pki_->node()));
  ASSERT_TRUE(stream.started());
  ASSERT_TRUE(stream.WritesDone());
  grpc::Status status = stream.Finish();
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_TRUE(verifier_->recorded().records().empty());
  verifier_->recorded().AwaitConnected(TestPki::kNodeId, false);
}

TEST_F(AttestationServiceTest, CloseStreamsFinishesOpenStreamsAndRefusesNewOnes) {
  grpc::ClientContext ctx;
  auto stream = Open(pki_->node(), &ctx);
  ReadChallenge(*stream);
  verifier_->attestation().CloseStreams();
  v1::VerifierMessage m;
  EXPECT_FALSE(stream->Read(&m));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  verifier_->recorded().AwaitConnected(TestPki::kNodeId, false);

  grpc::ClientContext ctx2;
  auto late = Open(pki_->node(), &ctx2);
  EXPECT_FALSE(late->Read(&m));
  EXPECT_EQ(late->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace vigil::verifier
