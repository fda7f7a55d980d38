// The Attest stream's handling of spooled batches: appraised, stored, then acknowledged;
// refused batches recorded and acknowledged as refused; a verifier without a batch appraiser
// ends the stream UNIMPLEMENTED.
#include <gtest/gtest.h>

#include <string>

#include "common/digest.h"
#include "common/measurement_log.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/attestation_service.h"
#include "verifier/spool_batch_appraiser.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil {
namespace {

using testing::TestPki;
using testing::TestVerifier;
using testing::TestVerifierOptions;
using Stream = grpc::ClientReaderWriter<v1::NodeMessage, v1::VerifierMessage>;

std::string Report(uint64_t sequence) {
  v1::RuntimeReport r;
  r.set_node_id(TestPki::kNodeId);
  r.set_sequence(sequence);
  r.add_events()->set_pid(77);
  return r.SerializeAsString();
}

v1::NodeMessage BatchMessage(uint64_t sequence, const std::string& payload) {
  v1::NodeMessage m;
  m.mutable_spool_batch()->set_sequence(sequence);
  m.mutable_spool_batch()->set_payload(payload);
  return m;
}

class AttestationServiceSpoolTest : public ::testing::Test {
 protected:
  void Start(bool with_batches) {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    TestVerifierOptions options;
    if (with_batches) options.attestation.spool_batches = spool_.batches();
    absl::StatusOr<std::unique_ptr<TestVerifier>> verifier =
        TestVerifier::Start(*pki_, std::move(options));
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stub_ = v1::Attestation::NewStub(verifier_->Channel(pki_->node()));
    stream_ = stub_->Attest(&ctx_);
    v1::VerifierMessage challenge;
    ASSERT_TRUE(stream_->Read(&challenge));
    ASSERT_TRUE(challenge.has_challenge());
  }

  // A batch the node measured, as a verified log would have told the ledger.
  void Measured(const std::string& payload) {
    google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry> entries;
    v1::MeasurementLogEntry* e = entries.Add();
    e->set_recnum(9);
    e->set_event_type(kEventSpoolBatch);
    e->set_digest(std::string(DigestBytes(Sha256(payload))));
    spool_.ledger().AddMeasured(TestPki::kNodeId, entries);
  }

  v1::SpoolBatchAck Send(uint64_t sequence, const std::string& payload) {
    EXPECT_TRUE(stream_->Write(BatchMessage(sequence, payload)));
    v1::VerifierMessage m;
    EXPECT_TRUE(stream_->Read(&m));
    EXPECT_TRUE(m.has_spool_ack()) << m.DebugString();
    return m.spool_ack();
  }

  verifier::UnverifiedAppraiser unused_;  // the stream appraiser the spool wiring wraps
  verifier::SpoolAppraisal spool_{&unused_, verifier::RuntimeAppraiser::Options{}};
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<TestVerifier> verifier_;
  std::unique_ptr<v1::Attestation::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<Stream> stream_;
};

TEST_F(AttestationServiceSpoolTest, MeasuredBatchIsStoredThenAcknowledgedOnce) {
  Start(true);
  const std::string payload = Report(5);
  Measured(payload);
  v1::SpoolBatchAck ack = Send(3, payload);
  EXPECT_EQ(ack.sequence(), 3u);
  EXPECT_TRUE(ack.accepted());
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_AFFIRMING) << ack.verdict().detail();
  EXPECT_EQ(ack.verdict().node_id(), TestPki::kNodeId);
  EXPECT_EQ(ack.verdict().evidence_sha256(), HexEncode(Sha256(payload)));
  // Resent (its acknowledgement lost): acknowledged, not stored again.
  v1::SpoolBatchAck again = Send(3, payload);
  EXPECT_TRUE(again.accepted());
  auto records = verifier_->recorded().records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].evidence.payload(), payload);
  EXPECT_EQ(records[0].verdict.status(), v1::TRUST_AFFIRMING);
  ASSERT_TRUE(stream_->WritesDone());
  EXPECT_TRUE(stream_->Finish().ok());
}

TEST_F(AttestationServiceSpoolTest, UnmeasuredBatchIsRecordedAndRefused) {
  Start(true);
  Measured(Report(5));
  const std::string altered = Report(6);
  v1::SpoolBatchAck ack = Send(4, altered);
  EXPECT_FALSE(ack.accepted());
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_REJECTED);
  ASSERT_EQ(ack.verdict().reasons_size(), 1);
  EXPECT_EQ(ack.verdict().reasons(0), v1::SPOOL_BATCH_UNMEASURED);
  auto records = verifier_->recorded().records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].verdict.reasons(0), v1::SPOOL_BATCH_UNMEASURED);
  ASSERT_TRUE(stream_->WritesDone());
  EXPECT_TRUE(stream_->Finish().ok());
}

TEST_F(AttestationServiceSpoolTest, VerifierWithoutBatchAppraiserEndsTheStreamUnimplemented) {
  Start(false);
  ASSERT_TRUE(stream_->Write(BatchMessage(1, Report(1))));
  v1::VerifierMessage m;
  EXPECT_FALSE(stream_->Read(&m));
  EXPECT_EQ(stream_->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(verifier_->recorded().records().empty());
}

}  // namespace
}  // namespace vigil
