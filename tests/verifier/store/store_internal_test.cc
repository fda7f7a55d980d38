#include "verifier/store/store_internal.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
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
  ASSERT_TRUE(DecodeStoredEvidence(r.evidence, stored_evidence));
  EXPECT_EQ(stored_evidence.nonce(), "nonce");
}

TEST(StoredVerdictTest, TheWorkloadsOutcomesAreStoredOnceAndReadBackInTheirPlace) {
  const v1::Verdict verdict = verifier::testing::WithRuleOutcomes(
      MakeVerdict("node", v1::TRUST_WARNING, 1234,
                  {{"w1", "agent", v1::TRUST_WARNING}, {"w2", "runner", v1::TRUST_AFFIRMING}}));
  ASSERT_EQ(verdict.rules_size(), 5);
  const std::string whole = verdict.SerializeAsString();
  std::string buffer;
  const std::string stored = EncodeStoredVerdict(verdict);
  const std::optional<std::string_view> compact = ExpandStored(stored, buffer);
  ASSERT_TRUE(compact.has_value());
  EXPECT_EQ(compact->substr(0, 2), std::string_view("\0\1", 2));
  // The four flattened copies are gone: well under the whole verdict's size.
  EXPECT_LT(compact->size() * 10, whole.size() * 7) << compact->size() << " of " << whole.size();
  v1::Verdict read;
  ASSERT_TRUE(DecodeStoredVerdict(stored, read));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(read, verdict))
      << read.DebugString();
  // The compact form uncompressed (as version 4 stored it) reads the same.
  read.Clear();
  ASSERT_TRUE(DecodeStoredVerdict(*compact, read));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(read, verdict))
      << read.DebugString();
  // What was stored whole before this form reads as it always did.
  v1::Verdict legacy;
  ASSERT_TRUE(DecodeStoredVerdict(whole, legacy));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(legacy, verdict));
  // Truncated or foreign bytes are refused in both forms.
  EXPECT_FALSE(DecodeStoredVerdict(stored.substr(0, stored.size() - 3), read));
  EXPECT_FALSE(DecodeStoredVerdict(compact->substr(0, compact->size() - 3), read));
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
    std::string buffer;
    EXPECT_EQ(ExpandStored(stored, buffer), verdict.SerializeAsString());
    v1::Verdict read;
    ASSERT_TRUE(DecodeStoredVerdict(stored, read));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(read, verdict));
  }
}

// A verdict like the ones real nodes produce: many processes under the same rules, each
// outcome repeating its rule's controls, expectation and workload id.
v1::Verdict ManyOutcomes(int processes) {
  v1::Verdict verdict =
      MakeVerdict("node", v1::TRUST_AFFIRMING, 1234, {{"w1", "agent", v1::TRUST_AFFIRMING}});
  v1::WorkloadVerdict* w = verdict.mutable_workloads(0);
  for (int pid = 100; pid < 100 + processes; ++pid) {
    v1::RuleOutcome* r = w->add_rules();
    r->set_rule_id("no-admin-capabilities");
    r->set_pid(pid);
    r->set_status(v1::TRUST_AFFIRMING);
    r->set_reason("the capabilities are dropped");
    for (const char* c : {"NIST-800-53r5:AC-6", "NIST-800-53r5:AC-6(10)", "ISO27001:2022:A.8.2",
                          "ISO27001:2013:A.9.2.3", "SOC2:CC6.1"}) {
      r->add_controls(c);
    }
    r->set_kind("capabilities");
    r->set_observed("bnd=0x1ffffd6ffff prm=0x1ffffd6ffff eff=0x1ffffd6ffff amb=0x0");
    r->set_expected("CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_PTRACE absent");
    r->set_workload_id(std::string(64, 'e'));
  }
  for (const v1::RuleOutcome& r : w->rules()) *verdict.add_rules() = r;
  return verdict;
}

TEST(StoredVerdictTest, ALargeVerdictIsStoredCompressedAndReadsBackAsRecorded) {
  const v1::Verdict verdict = ManyOutcomes(40);
  const std::string whole = verdict.SerializeAsString();
  const std::string stored = EncodeStoredVerdict(verdict);
  EXPECT_EQ(stored.substr(0, 2), std::string("\0\2", 2));
  // Outcomes that repeat their rule's text compress several times over.
  EXPECT_LT(stored.size() * 5, whole.size()) << stored.size() << " of " << whole.size();
  v1::Verdict read;
  ASSERT_TRUE(DecodeStoredVerdict(stored, read));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(read, verdict));
}

TEST(StoredBlobTest, BytesThatDoNotShrinkAreKeptAsTheyAre) {
  std::string random(512, '\0');
  uint64_t x = 0x9e3779b97f4a7c15;
  for (char& c : random) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  random[0] = '\x0a';  // a message's first byte: never the compressed form's prefix
  for (const std::string& bytes : {random, std::string("\x0a\x01x", 3), std::string()}) {
    EXPECT_EQ(CompressStored(bytes), bytes);
    std::string buffer;
    EXPECT_EQ(ExpandStored(bytes, buffer), bytes);
  }
}

TEST(StoredBlobTest, ACorruptOrOverclaimingBlockIsRefused) {
  const std::string stored = EncodeStoredVerdict(ManyOutcomes(40));
  ASSERT_EQ(stored.substr(0, 2), std::string("\0\2", 2));
  const uint32_t size = static_cast<uint8_t>(stored[2]) | static_cast<uint8_t>(stored[3]) << 8 |
                        static_cast<uint8_t>(stored[4]) << 16 |
                        static_cast<uint8_t>(stored[5]) << 24;
  auto with_size = [&stored](uint32_t claimed) {
    std::string s = stored;
    for (int i = 0; i < 4; ++i) s[2 + i] = static_cast<char>(claimed >> (8 * i));
    return s;
  };
  std::string buffer;
  ASSERT_TRUE(ExpandStored(stored, buffer).has_value());
  EXPECT_EQ(ExpandStored(stored, buffer)->size(), size);
  // Truncated, cut to its header, or claiming another size than the block expands to.
  EXPECT_FALSE(ExpandStored(stored.substr(0, stored.size() - 1), buffer).has_value());
  EXPECT_FALSE(ExpandStored(stored.substr(0, 6), buffer).has_value());
  EXPECT_FALSE(ExpandStored(std::string("\0\2", 2), buffer).has_value());
  EXPECT_FALSE(ExpandStored(with_size(size + 1), buffer).has_value());
  EXPECT_FALSE(ExpandStored(with_size(size - 1), buffer).has_value());
  // A size no block of this length could expand to is refused before any memory is taken.
  buffer.clear();
  buffer.shrink_to_fit();
  EXPECT_FALSE(ExpandStored(with_size(0xffffffffu), buffer).has_value());
  EXPECT_FALSE(
      ExpandStored(with_size(static_cast<uint32_t>(stored.size()) * 300), buffer).has_value());
  EXPECT_LT(buffer.capacity(), stored.size() * 300);
  v1::Verdict read;
  EXPECT_FALSE(DecodeStoredVerdict(with_size(size + 1), read));
}

TEST(StoredEvidenceTest, EvidenceIsStoredCompressedAndReadsBackInEitherForm) {
  v1::RuntimeReport report;
  report.set_hostname("host-1");
  for (int pid = 100; pid < 140; ++pid) {
    v1::ProcessSnapshot* p = report.add_processes();
    p->set_pid(pid);
    p->set_comm("agent");
    p->set_exe_path("/opt/agent/bin/agent");
    p->set_exe_sha256(std::string(64, 'a'));
    p->set_cgroup("/system.slice/agent.service");
  }
  v1::Evidence evidence = WithPayload(report.SerializeAsString());
  evidence.set_nonce(std::string(32, 'n'));
  const std::string serialized = evidence.SerializeAsString();
  const std::string stored = EncodeStoredEvidence(evidence);
  EXPECT_EQ(stored.substr(0, 2), std::string("\0\2", 2));
  EXPECT_LT(stored.size() * 3, serialized.size()) << stored.size() << " of " << serialized.size();
  for (const std::string& bytes : {stored, serialized}) {
    v1::Evidence read;
    ASSERT_TRUE(DecodeStoredEvidence(bytes, read));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(read, evidence));
  }
  v1::Evidence read;
  EXPECT_FALSE(DecodeStoredEvidence(stored.substr(0, stored.size() - 2), read));
  const VerdictRecord r =
      MakeVerdictRecord("node", evidence, MakeVerdict("node", v1::TRUST_NONE, 5));
  EXPECT_EQ(r.evidence, stored);
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
