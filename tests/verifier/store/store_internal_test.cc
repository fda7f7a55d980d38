#include "verifier/store/store_internal.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "tests/verifier/store/store_test_util.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier::store_internal {
namespace {

using verifier::testing::MakeVerdict;

v1::Evidence WithPayload(std::string payload) {
  v1::Evidence evidence;
  evidence.set_payload(std::move(payload));
  return evidence;
}

TEST(HostnameOfTest, ReadsTheReportsHostnameAmongItsOtherFields) {
  v1::RuntimeReport report;
  report.set_node_id("node");
  report.set_sequence(7);
  report.set_hostname("host-1");
  report.add_processes()->set_pid(42);
  report.mutable_probes()->add_active_hooks("tracepoint/syscalls/sys_exit_ptrace");
  EXPECT_EQ(HostnameOf(WithPayload(report.SerializeAsString())), "host-1");
}

TEST(HostnameOfTest, TheLastHostnameWinsAsInAParse) {
  v1::RuntimeReport first;
  first.set_hostname("first");
  v1::RuntimeReport second;
  second.set_hostname("second");
  const std::string payload = first.SerializeAsString() + second.SerializeAsString();
  v1::RuntimeReport parsed;
  ASSERT_TRUE(parsed.ParseFromString(payload));
  EXPECT_EQ(HostnameOf(WithPayload(payload)), parsed.hostname());
}

TEST(HostnameOfTest, NoHostnameInWhatIsNotAReport) {
  EXPECT_EQ(HostnameOf(WithPayload("")), "");
  // A truncated field: the hostname's length runs past the payload.
  EXPECT_EQ(HostnameOf(WithPayload(std::string("\x22\x10host", 6))), "");
  // A varint that never ends.
  EXPECT_EQ(
      HostnameOf(WithPayload(std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11))), "");
  // A hostname that is not UTF-8 (a proto3 string refuses it).
  EXPECT_EQ(HostnameOf(WithPayload(std::string("\x22\x02\xc3\x28", 4))), "");
}

TEST(MakeVerdictRecordTest, HoldsTheVerdictSerializedWithTheFieldsTheStoreIndexes) {
  v1::Verdict verdict =
      MakeVerdict("node", v1::TRUST_WARNING, 1234,
                  {{"w1", "agent", v1::TRUST_WARNING}, {"w2", "runner", v1::TRUST_AFFIRMING}});
  verdict.set_from_spool(true);
  verdict.add_rules()->set_rule_id("seccomp-denies-ptrace");
  v1::RuntimeReport report;
  report.set_hostname("host-9");
  v1::Evidence evidence = WithPayload(report.SerializeAsString());
  evidence.set_nonce("nonce");

  const VerdictRecord r = MakeVerdictRecord("node-id", evidence, verdict);
  EXPECT_EQ(r.node_id, "node-id");
  EXPECT_EQ(r.hostname, "host-9");
  EXPECT_EQ(r.status, v1::TRUST_WARNING);
  EXPECT_EQ(r.appraised_unix_nano, 1234);
  EXPECT_EQ(r.evidence_sha256, verdict.evidence_sha256());
  EXPECT_EQ(r.policy_digest, "policy-digest");
  EXPECT_TRUE(r.from_spool);
  ASSERT_EQ(r.workloads.size(), 2u);
  EXPECT_EQ(r.workloads[0].workload_id, "w1");
  EXPECT_EQ(r.workloads[0].name, "agent");
  EXPECT_EQ(r.workloads[0].status, v1::TRUST_WARNING);
  EXPECT_EQ(r.workloads[1].workload_id, "w2");
  EXPECT_EQ(r.workloads[1].status, v1::TRUST_AFFIRMING);
  v1::Verdict stored;
  ASSERT_TRUE(DecodeStoredVerdict(r.verdict, stored));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(stored, verdict));
  v1::Evidence stored_evidence;
  ASSERT_TRUE(stored_evidence.ParseFromString(r.evidence));
  EXPECT_EQ(stored_evidence.nonce(), "nonce");
}

TEST(StoredVerdictTest, TheWorkloadsOutcomesAreStoredOnceAndReadBackInTheirPlace) {
  const v1::Verdict verdict = verifier::testing::WithRuleOutcomes(
      MakeVerdict("node", v1::TRUST_WARNING, 1234,
                  {{"w1", "agent", v1::TRUST_WARNING}, {"w2", "runner", v1::TRUST_AFFIRMING}}));
  ASSERT_EQ(verdict.rules_size(), 5);
  const std::string whole = verdict.SerializeAsString();
  const std::string stored = EncodeStoredVerdict(verdict);
  EXPECT_EQ(stored.substr(0, 2), std::string("\0\1", 2));
  // The four flattened copies are gone: well under the whole verdict's size.
  EXPECT_LT(stored.size() * 10, whole.size() * 7) << stored.size() << " of " << whole.size();
  v1::Verdict read;
  ASSERT_TRUE(DecodeStoredVerdict(stored, read));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(read, verdict))
      << read.DebugString();
  // What was stored whole before this form reads as it always did.
  v1::Verdict legacy;
  ASSERT_TRUE(DecodeStoredVerdict(whole, legacy));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(legacy, verdict));
  // Truncated or foreign bytes are refused in both forms.
  EXPECT_FALSE(DecodeStoredVerdict(stored.substr(0, stored.size() - 3), read));
  EXPECT_FALSE(DecodeStoredVerdict(std::string("\0\1\xff", 3), read));
}

TEST(StoredVerdictTest, RulesThatAreNotTheWorkloadsOutcomesAreStoredWhole) {
  v1::Verdict changed = verifier::testing::WithRuleOutcomes(
      MakeVerdict("node", v1::TRUST_WARNING, 1234, {{"w1", "agent", v1::TRUST_WARNING}}));
  // A flattened outcome that differs from its workload's, in a field the check does not name.
  changed.mutable_rules(2)->set_expected("something else");
  v1::Verdict missing = verifier::testing::WithRuleOutcomes(
      MakeVerdict("node", v1::TRUST_WARNING, 1234, {{"w1", "agent", v1::TRUST_WARNING}}));
  missing.mutable_rules()->RemoveLast();
  for (const v1::Verdict& verdict : {changed, missing, MakeVerdict("node", v1::TRUST_NONE, 5)}) {
    const std::string stored = EncodeStoredVerdict(verdict);
    EXPECT_EQ(stored, verdict.SerializeAsString());
    v1::Verdict read;
    ASSERT_TRUE(DecodeStoredVerdict(stored, read));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(read, verdict));
  }
}

TEST(MaterializeTest, ParsesTheLatestVerdictIntoTheSummary) {
  CachedNode node;
  node.summary.node_id = "node";
  node.summary.hostname = "host";
  node.summary.revoked = true;
  node.latest_verdict = MakeVerdict("node", v1::TRUST_REJECTED, 55).SerializeAsString();
  const NodeResultSummary s = Materialize(node);
  EXPECT_EQ(s.node_id, "node");
  EXPECT_EQ(s.hostname, "host");
  EXPECT_TRUE(s.revoked);
  EXPECT_EQ(s.latest_verdict.status(), v1::TRUST_REJECTED);
  EXPECT_EQ(s.latest_verdict.appraised_unix_nano(), 55);
  // No verdict yet: an empty one.
  EXPECT_EQ(Materialize(CachedNode{}).latest_verdict.status(), v1::TRUST_STATUS_UNSPECIFIED);
}

// The writer loop over plain numbers: what it commits, batch by batch.
class WriterLoopTest : public ::testing::Test {
 protected:
  void Start(StoreOptions options) {
    writer_ = std::thread([this, options] {
      RunWriterLoop(
          mu_, cv_, queue_, stopping_, options, [](auto*) { return 0; },
          [this](std::vector<int>& ops) {
            std::lock_guard<std::mutex> lock(batches_mu_);
            batches_.push_back(ops);
            if (batches_.size() == 1) first_commit_.set_value();
          });
    });
  }

  void Enqueue(int op) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(op);
    }
    cv_.notify_one();
  }

  std::vector<std::vector<int>> Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    writer_.join();
    std::lock_guard<std::mutex> lock(batches_mu_);
    return batches_;
  }

  std::promise<void> first_commit_;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> queue_;
  bool stopping_ = false;
  std::thread writer_;
  std::mutex batches_mu_;
  std::vector<std::vector<int>> batches_;
};

TEST_F(WriterLoopTest, WithoutAWindowEachWriteCommitsWhenTheWriterSeesIt) {
  Start(StoreOptions{});
  Enqueue(1);
  first_commit_.get_future().wait();
  Enqueue(2);
  EXPECT_EQ(Stop(), (std::vector<std::vector<int>>{{1}, {2}}));
}

TEST_F(WriterLoopTest, AWriteArrivingWithinTheWindowJoinsTheCommitOfTheOneBefore) {
  StoreOptions options;
  // Far longer than the gap below, so a loaded machine cannot split the batch.
  options.commit_window = absl::Seconds(2);
  Start(options);
  Enqueue(1);
  // Without the window the writer commits the first write alone meanwhile (the test above).
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Enqueue(2);
  Enqueue(3);
  EXPECT_EQ(Stop(), (std::vector<std::vector<int>>{{1, 2, 3}}));
}

}  // namespace
}  // namespace vigil::verifier::store_internal
