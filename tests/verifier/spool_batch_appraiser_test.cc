#include "verifier/spool_batch_appraiser.h"

#include <gtest/gtest.h>

#include <string>

#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/tpm/software_ak.h"
#include "tests/testing/registry_with_node.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

constexpr char kNode[] = "node-a";

// The stream's appraiser, reduced to the status it gives and the log entries it holds
// before and after the appraisal.
class FixedAppraiser final : public EvidenceAppraiser {
 public:
  explicit FixedAppraiser(v1::TrustStatus status, uint64_t held_before = 0, uint64_t held_after = 0)
      : status_(status), held_(held_before), held_after_(held_after) {}
  v1::Verdict Appraise(const AppraisalInput&) override {
    held_ = held_after_;
    v1::Verdict v;
    v.set_status(status_);
    return v;
  }
  uint64_t LogEntriesAcknowledged(const std::string&) const override { return held_; }

 private:
  v1::TrustStatus status_;
  uint64_t held_;
  uint64_t held_after_;
};

std::string Payload(const std::string& node, uint64_t sequence) {
  v1::RuntimeReport report;
  report.set_node_id(node);
  report.set_sequence(sequence);
  report.add_events()->set_pid(1234);
  return report.SerializeAsString();
}

v1::MeasurementLogEntry Record(uint64_t recnum, const std::string& type,
                               const std::string& payload) {
  v1::MeasurementLogEntry e;
  e.set_recnum(recnum);
  e.set_pcr(15);
  e.set_event_type(type);
  e.set_digest(std::string(DigestBytes(Sha256(payload))));
  return e;
}

// A registry in which kNode and "node-b" are enrolled.
std::unique_ptr<NodeRegistry> TwoNodes() {
  absl::StatusOr<std::unique_ptr<NodeRegistry>> registry = testing::RegistryWithNode(kNode);
  EXPECT_TRUE(registry.ok()) << registry.status();
  absl::StatusOr<tpm::SoftwareAk> ak = tpm::SoftwareAk::Create();
  EXPECT_TRUE(ak.ok()) << ak.status();
  EXPECT_TRUE((*registry)->Bind({"node-b", "ek-b", ak->tpm2b_public, ak->name, absl::Now()}).ok());
  return *std::move(registry);
}

v1::SpoolBatch Batch(uint64_t sequence, const std::string& payload) {
  v1::SpoolBatch b;
  b.set_sequence(sequence);
  b.set_payload(payload);
  return b;
}

class SpoolBatchAppraiserTest : public ::testing::Test {
 protected:
  // Evidence whose log delta measures `payloads`, appraised by a stream appraiser giving
  // `status`.
  void Stream(v1::TrustStatus status, const std::vector<v1::MeasurementLogEntry>& delta,
              uint64_t held_before = 0, uint64_t held_after = 0) {
    FixedAppraiser inner(status, held_before, held_after);
    SpoolRecordingAppraiser recording(&inner, &ledger_);
    v1::Evidence evidence;
    for (const auto& e : delta) *evidence.add_log_entries() = e;
    recording.Appraise(AppraisalInput{kNode, nullptr, &evidence});
  }

  std::unique_ptr<NodeRegistry> registry_ = TwoNodes();
  SpoolLedger ledger_{registry_.get()};
  SpoolBatchCheck check_{&ledger_};
  RuntimeAppraiser runtime_{&check_, RuntimeAppraiser::Options{}};
  SpoolBatchAppraiser batches_{&ledger_, &runtime_};
};

TEST_F(SpoolBatchAppraiserTest, AcceptsAMeasuredBatchOnceThenAcknowledgesResends) {
  const std::string payload = Payload(kNode, 7);
  Stream(v1::TRUST_AFFIRMING, {Record(40, kEventSpoolBatch, payload)});
  EXPECT_EQ(ledger_.Pending(kNode), 1u);

  SpoolBatchAppraiser::Result first = batches_.Appraise(kNode, Batch(1, payload));
  EXPECT_TRUE(first.accepted);
  EXPECT_FALSE(first.duplicate);
  EXPECT_EQ(first.verdict.status(), v1::TRUST_AFFIRMING) << first.verdict.detail();
  EXPECT_EQ(first.verdict.node_id(), kNode);
  EXPECT_EQ(first.verdict.report_sequence(), 7u);
  EXPECT_EQ(first.evidence.payload(), payload);
  EXPECT_EQ(ledger_.Pending(kNode), 0u);
  batches_.Settle(kNode, first, /*stored=*/true);

  SpoolBatchAppraiser::Result again = batches_.Appraise(kNode, Batch(1, payload));
  EXPECT_TRUE(again.accepted);
  EXPECT_TRUE(again.duplicate);
}

TEST_F(SpoolBatchAppraiserTest, ABatchWhoseVerdictWasNotStoredIsTakenAgain) {
  const std::string payload = Payload(kNode, 7);
  Stream(v1::TRUST_AFFIRMING, {Record(40, kEventSpoolBatch, payload)});
  SpoolBatchAppraiser::Result first = batches_.Appraise(kNode, Batch(1, payload));
  ASSERT_TRUE(first.accepted);
  // In delivery: neither pending nor delivered until its verdict is stored.
  EXPECT_EQ(ledger_.Pending(kNode), 0u);
  EXPECT_FALSE(ledger_.Delivered(kNode, first.digest));
  batches_.Settle(kNode, first, /*stored=*/false);
  EXPECT_EQ(ledger_.Pending(kNode), 1u);

  // Sent again on a new stream: appraised and stored again, not taken for a duplicate.
  SpoolBatchAppraiser::Result again = batches_.Appraise(kNode, Batch(1, payload));
  EXPECT_TRUE(again.accepted);
  EXPECT_FALSE(again.duplicate);
  EXPECT_EQ(again.verdict.status(), v1::TRUST_AFFIRMING) << again.verdict.detail();
  batches_.Settle(kNode, again, /*stored=*/true);
  EXPECT_TRUE(ledger_.Delivered(kNode, first.digest));
}

TEST_F(SpoolBatchAppraiserTest, RefusesABatchAlteredAfterItWasMeasured) {
  const std::string payload = Payload(kNode, 7);
  Stream(v1::TRUST_AFFIRMING, {Record(40, kEventSpoolBatch, payload)});
  std::string altered = payload;
  altered.back() ^= 1;  // still a RuntimeReport (the pid changes), not the measured bytes
  SpoolBatchAppraiser::Result result = batches_.Appraise(kNode, Batch(1, altered));
  EXPECT_FALSE(result.accepted);
  EXPECT_EQ(result.verdict.status(), v1::TRUST_REJECTED);
  ASSERT_EQ(result.verdict.reasons_size(), 1);
  EXPECT_EQ(result.verdict.reasons(0), v1::SPOOL_BATCH_UNMEASURED);
  EXPECT_EQ(result.verdict.trust_vector().sourced_data(), 96);
  EXPECT_EQ(ledger_.Pending(kNode), 1u);  // the genuine batch may still come
}

TEST_F(SpoolBatchAppraiserTest, LearnsRecordsOnlyFromVerifiedEvidence) {
  const std::string payload = Payload(kNode, 7);
  for (v1::TrustStatus status : {v1::TRUST_REJECTED, v1::TRUST_UNVERIFIED}) {
    Stream(status, {Record(40, kEventSpoolBatch, payload)});
  }
  EXPECT_EQ(ledger_.Pending(kNode), 0u);
  EXPECT_FALSE(batches_.Appraise(kNode, Batch(1, payload)).accepted);
  // A verified report that breaks a policy rule still proves its log.
  Stream(v1::TRUST_CONTRAINDICATED, {Record(40, kEventSpoolBatch, payload)});
  EXPECT_TRUE(batches_.Appraise(kNode, Batch(1, payload)).accepted);
}

TEST_F(SpoolBatchAppraiserTest, IgnoresResentRecordsTheAppraisalDidNotReplay) {
  const std::string forged = Payload(kNode, 1), genuine = Payload(kNode, 2);
  // The verifier held 50 entries: a "resent" record 10 was not compared with anything.
  Stream(v1::TRUST_AFFIRMING,
         {Record(10, kEventSpoolBatch, forged), Record(50, kEventSpoolBatch, genuine)},
         /*held_before=*/50, /*held_after=*/51);
  EXPECT_FALSE(batches_.Appraise(kNode, Batch(1, forged)).accepted);
  EXPECT_TRUE(batches_.Appraise(kNode, Batch(2, genuine)).accepted);
}

TEST_F(SpoolBatchAppraiserTest, AfterANewBootEveryRecordIsNew) {
  const std::string early = Payload(kNode, 1);
  // The held state started again (a reboot): 50 entries before, the new boot's 8 after.
  Stream(v1::TRUST_AFFIRMING, {Record(6, kEventSpoolBatch, early)}, /*held_before=*/50,
         /*held_after=*/8);
  EXPECT_TRUE(batches_.Appraise(kNode, Batch(1, early)).accepted);
}

TEST_F(SpoolBatchAppraiserTest, LearnsOnlyTheCurrentEpochAndOnlySpoolRecords) {
  const std::string before = Payload(kNode, 1), after = Payload(kNode, 2),
                    other = Payload(kNode, 3);
  Stream(v1::TRUST_AFFIRMING,
         {Record(10, kEventSpoolBatch, before), Record(11, kEventTpmRestart, "restart"),
          Record(12, kEventSpoolBatch, after), Record(13, kEventPolicyBundle, other)});
  EXPECT_FALSE(batches_.Appraise(kNode, Batch(1, before)).accepted);
  EXPECT_TRUE(batches_.Appraise(kNode, Batch(2, after)).accepted);
  EXPECT_FALSE(batches_.Appraise(kNode, Batch(3, other)).accepted);
}

TEST_F(SpoolBatchAppraiserTest, RefusesAnotherNodesBatchAndGarbage) {
  const std::string foreign = Payload("node-b", 7);
  Stream(v1::TRUST_AFFIRMING, {Record(40, kEventSpoolBatch, foreign)});
  SpoolBatchAppraiser::Result result = batches_.Appraise(kNode, Batch(1, foreign));
  EXPECT_FALSE(result.accepted);
  ASSERT_GT(result.verdict.reasons_size(), 0);
  EXPECT_EQ(result.verdict.reasons(0), v1::NODE_MISMATCH);

  SpoolBatchAppraiser::Result garbage = batches_.Appraise(kNode, Batch(2, "\xff\xff\xff"));
  EXPECT_FALSE(garbage.accepted);
  ASSERT_GT(garbage.verdict.reasons_size(), 0);
  EXPECT_EQ(garbage.verdict.reasons(0), v1::PAYLOAD_MALFORMED);
}

TEST_F(SpoolBatchAppraiserTest, KeepsNodesApart) {
  const std::string payload = Payload("", 7);  // names no node: only the ledger decides
  Stream(v1::TRUST_AFFIRMING, {Record(40, kEventSpoolBatch, payload)});
  // The same bytes presented by another node's stream match nothing of that node.
  SpoolBatchAppraiser::Result result = batches_.Appraise("node-b", Batch(1, payload));
  EXPECT_FALSE(result.accepted);
  ASSERT_EQ(result.verdict.reasons_size(), 1);
  EXPECT_EQ(result.verdict.reasons(0), v1::SPOOL_BATCH_UNMEASURED);
  EXPECT_TRUE(batches_.Appraise(kNode, Batch(1, payload)).accepted);
}

}  // namespace
}  // namespace vigil::verifier
