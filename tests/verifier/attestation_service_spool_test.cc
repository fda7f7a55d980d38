// The Attest stream's handling of spooled batches: appraised, stored, then acknowledged;
// refused batches recorded and acknowledged as refused; a verifier without a batch appraiser
// ends the stream UNIMPLEMENTED.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <utility>

#include "common/digest.h"
#include "common/measurement_log.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/registry_with_node.h"
#include "tests/testing/temp_dir.h"
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
    if (with_batches) options.attestation.spool_batches = spool_->batches();
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
    spool_->ledger().AddMeasured(TestPki::kNodeId, entries);
  }

  v1::SpoolBatchAck Send(uint64_t sequence, const std::string& payload) {
    EXPECT_TRUE(stream_->Write(BatchMessage(sequence, payload)));
    v1::VerifierMessage m;
    EXPECT_TRUE(stream_->Read(&m));
    EXPECT_TRUE(m.has_spool_ack()) << m.DebugString();
    return m.spool_ack();
  }

  verifier::UnverifiedAppraiser unused_;  // the stream appraiser the spool wiring wraps
  // The spool ledger lives in the registry's node state: the node is enrolled there.
  void UseRegistry(std::unique_ptr<verifier::NodeRegistry> registry) {
    spool_.reset();
    registry_ = std::move(registry);
    spool_ = std::make_unique<verifier::SpoolAppraisal>(registry_.get(), &unused_,
                                                        verifier::RuntimeAppraiser::Options{});
  }

  std::unique_ptr<verifier::NodeRegistry> registry_ = *testing::RegistryWithNode(TestPki::kNodeId);
  std::unique_ptr<verifier::SpoolAppraisal> spool_ = std::make_unique<verifier::SpoolAppraisal>(
      registry_.get(), &unused_, verifier::RuntimeAppraiser::Options{});
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

// The records that measured two batches reach the verifier, which acknowledges them once the
// ledger is durable; the verifier dies before the batches arrive (its database as a crash
// leaves it) and starts again: the batches are accepted by the new process.
TEST_F(AttestationServiceSpoolTest, MeasuredBatchesSurviveAVerifierRestart) {
  absl::StatusOr<testing::TestTempDir> tmp = testing::TestTempDir::Create("spool-ledger");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  const std::string db = tmp->path() + "/verifier.db", crashed = tmp->path() + "/crashed";
  ASSERT_TRUE(std::filesystem::create_directory(crashed));
  const std::string first = Report(5), second = Report(6);
  {
    absl::StatusOr<std::unique_ptr<verifier::NodeRegistry>> registry =
        testing::RegistryWithNode(TestPki::kNodeId, db);
    ASSERT_TRUE(registry.ok()) << registry.status();
    UseRegistry(*std::move(registry));
    {
      // As the accepted quote that carried the records left the node's state.
      std::shared_ptr<verifier::NodeState> state = registry_->Find(TestPki::kNodeId);
      absl::MutexLock lock(&state->mu);
      state->last_clock = verifier::QuoteClock{100, 1, 0};
    }
    registry_->MarkDirty(TestPki::kNodeId);
    Measured(first);
    Measured(second);
    // What the stream waits for before it acknowledges the evidence.
    std::promise<absl::Status> durable;
    registry_->PersistThen(TestPki::kNodeId,
                           [&durable](absl::Status st) { durable.set_value(std::move(st)); });
    ASSERT_TRUE(durable.get_future().get().ok());
    // The files as a SIGKILL right after the acknowledgement would leave them.
    for (const char* suffix : {"", "-wal"}) {
      std::filesystem::copy_file(db + suffix, crashed + "/verifier.db" + suffix);
    }
    spool_.reset();
    registry_.reset();
  }
  absl::StatusOr<std::unique_ptr<verifier::NodeRegistry>> restarted =
      verifier::NodeRegistry::Open(crashed + "/verifier.db");
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  UseRegistry(*std::move(restarted));
  EXPECT_EQ(spool_->ledger().Pending(TestPki::kNodeId), 2u);
  Start(true);
  for (const auto& [sequence, payload] : {std::pair{1, first}, std::pair{2, second}}) {
    v1::SpoolBatchAck ack = Send(sequence, payload);
    EXPECT_TRUE(ack.accepted()) << ack.verdict().detail();
    EXPECT_EQ(ack.verdict().status(), v1::TRUST_AFFIRMING) << ack.verdict().detail();
  }
  EXPECT_EQ(verifier_->recorded().records().size(), 2u);
  EXPECT_EQ(spool_->ledger().Pending(TestPki::kNodeId), 0u);
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
