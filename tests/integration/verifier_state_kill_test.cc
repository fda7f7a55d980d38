// Durability of the verifier's per-node appraisal state under SIGKILL: the real vigil-verifier
// binary appraises TPM-quoted evidence (software AKs, enrolled in its --db beforehand) from
// several nodes whose measurement logs keep growing, and is killed with SIGKILL at varied
// moments and restarted on the same --db, again and again. Nodes behave as vigil-node does:
// each sends log entries from the count the verifier last acknowledged, and its TPM clock
// only moves forward. Afterwards:
//  - every acknowledged verdict is in the store, and none was a rejection: a verifier that
//    had lost an acknowledged log entry would refuse the next delta (LOG_DISCONTINUOUS) or
//    its replay (LOG_REPLAY_MISMATCH), and the node would be stuck;
//  - the persisted state holds, for each node, at least the log entries and the clock of the
//    last acknowledgement;
//  - every node gets a verdict after the last restart, and a quote whose clock did not
//    advance past the last acknowledged one is still refused (no replay window reopened).
// While the verifier is down, each node spools batches as vigil-node does (a "spool-batch"
// record measures each batch's digest) and delivers the backlog once its records are
// acknowledged, while the verifier keeps being killed: every batch the node deleted as
// acknowledged has its verdict stored, none is refused as unmeasured (the verifier keeps the
// measured digests across kills), and every backlog drains.

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/tpm/software_ak.h"
#include "common/tpm/tpm_marshal.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/killable_verifier.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/reserved_port.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/node_registry.h"
#include "verifier/store/sqlite_store.h"
#include "vigil/v1/attestation.grpc.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil {
namespace {

using testing::TestPki;
using tpm::SoftwareAk;

// Only keeps a broken verifier from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kProgressBound = absl::Seconds(60);
constexpr int kNodes = 3;
constexpr int kKills = 20;
constexpr uint32_t kMeasurementPcr = 15;
// A node measures one more record every this many reports.
constexpr uint64_t kReportsPerMeasurement = 3;
// Batches each node spools while the verifier is down, every so many kills.
constexpr int kBatchesPerOutage = 3;
constexpr int kKillsPerOutageWithBatches = 2;

std::string NodeId(int i) { return absl::StrCat(std::string(62, 'd'), "0", i); }

// The digest a record of `type` carries in this test (each one a reference value).
std::string DigestOf(const std::string& type) {
  return std::string(DigestBytes(Sha256(absl::StrCat("kill-test ", type))));
}

v1::MeasurementLogEntry Record(uint64_t recnum, const std::string& type) {
  v1::MeasurementLogEntry e;
  e.set_recnum(recnum);
  e.set_pcr(kMeasurementPcr);
  e.set_digest(DigestOf(type));
  e.set_event_type(type);
  e.set_content(absl::StrCat("record ", recnum));
  return e;
}

// A batch the node spooled: its sequence, payload and the record that measured it.
struct SpooledBatch {
  uint64_t sequence = 0;
  std::string payload;
  uint64_t recnum = 0;
};

// What a node saw acknowledged.
struct Acked {
  std::string evidence_sha256;
  v1::Verdict verdict;
  uint64_t log_entries_acknowledged = 0;
  uint64_t clock = 0;
};

// One node with a software AK standing in for its TPM: a PCR, a measurement log that starts
// with the start sequence and grows, and a clock. Answers every Challenge with quoted
// evidence, sending log entries from the last acknowledged count, and reconnects (on a fresh
// channel) whenever the stream ends, until stopped.
class QuotingNode {
 public:
  QuotingNode(std::string node_id, SoftwareAk ak, CertAndKey identity, std::string ca_pem,
              std::string address)
      : node_id_(std::move(node_id)),
        ak_(std::move(ak)),
        identity_(std::move(identity)),
        ca_pem_(std::move(ca_pem)),
        address_(std::move(address)) {
    for (const char* type : {kEventNodeStart, kEventNodeBinary, kEventBpfObject,
                             kEventBpfProgramTags, kEventNoPolicy}) {
      Measure(type);
    }
  }
  ~QuotingNode() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
      if (ctx_ != nullptr) ctx_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

  size_t acknowledged() const {
    absl::MutexLock lock(&mu_);
    return acked_.size();
  }
  std::vector<Acked> acked() const {
    absl::MutexLock lock(&mu_);
    return acked_;
  }
  std::vector<std::string> problems() const {
    absl::MutexLock lock(&mu_);
    return problems_;
  }
  size_t log_size() const {
    absl::MutexLock lock(&mu_);
    return log_.size();
  }
  // Spools `n` batches as vigil-node does while it has no stream: each a report whose digest
  // a "spool-batch" record measures.
  void SpoolBatches(int n) {
    absl::MutexLock lock(&mu_);
    for (int i = 0; i < n; ++i) {
      v1::RuntimeReport report;
      report.set_node_id(node_id_);
      report.set_sequence(++sequence_);
      report.set_hostname(absl::StrCat("state-kill-", node_id_.substr(60), "-spooled"));
      SpooledBatch batch{++batch_sequence_, report.SerializeAsString(), log_.size()};
      v1::MeasurementLogEntry e = Record(log_.size(), kEventSpoolBatch);
      e.set_digest(std::string(DigestBytes(Sha256(batch.payload))));
      e.set_content(absl::StrCat("report ", report.sequence(), ", 0 events"));
      log_.push_back(e);
      pcr_ = Sha256Concat({DigestBytes(pcr_), e.digest()});
      spool_.push_back(std::move(batch));
    }
  }
  // Batches spooled and not deleted yet.
  size_t spooled() const {
    absl::MutexLock lock(&mu_);
    return spool_.size();
  }
  // SHA-256 (hex) of each batch the node deleted because the verifier acknowledged it.
  std::vector<std::string> deleted_batches() const {
    absl::MutexLock lock(&mu_);
    return deleted_;
  }
  const std::string& node_id() const { return node_id_; }

  // One stream, one challenge answered with a quote whose clock is `clock` (instead of the
  // next one): the verdict of the acknowledgement. Only while the node is stopped.
  absl::StatusOr<v1::Verdict> AnswerOnceWithClock(uint64_t clock) {
    auto stub = v1::Attestation::NewStub(
        testing::MakeChannel(address_, testing::ClientCredentials(ca_pem_, identity_)));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kProgressBound));
    auto stream = stub->Attest(&ctx);
    v1::VerifierMessage m;
    while (stream->Read(&m)) {
      if (m.has_challenge()) {
        absl::MutexLock lock(&mu_);
        absl::StatusOr<v1::NodeMessage> evidence = Answer(m.challenge(), clock);
        if (!evidence.ok()) return evidence.status();
        if (!stream->Write(*evidence)) break;
      } else if (m.has_acknowledgement()) {
        v1::Verdict verdict = m.acknowledgement().verdict();
        ctx.TryCancel();
        stream->Finish();
        return verdict;
      }
    }
    return absl::UnavailableError(stream->Finish().error_message());
  }

 private:
  void Measure(const std::string& type) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    log_.push_back(Record(log_.size(), type));
    pcr_ = Sha256Concat({DigestBytes(pcr_), log_.back().digest()});
  }

  // Quoted evidence answering `challenge`, the TPM clock reading `clock`.
  absl::StatusOr<v1::NodeMessage> Answer(const v1::Challenge& challenge, uint64_t clock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::RuntimeReport report;
    report.set_node_id(node_id_);
    report.set_sequence(++sequence_);
    report.set_hostname(absl::StrCat("state-kill-", node_id_.substr(60)));
    v1::NodeMessage message;
    v1::Evidence& e = *message.mutable_evidence();
    e.set_nonce(challenge.nonce());
    e.set_payload(report.SerializeAsString());
    for (size_t i = log_acknowledged_; i < log_.size(); ++i) *e.add_log_entries() = log_[i];

    TPMS_ATTEST a{};
    a.magic = TPM2_GENERATED_VALUE;
    a.type = TPM2_ST_ATTEST_QUOTE;
    a.qualifiedSigner.size = static_cast<UINT16>(ak_.name.size());
    memcpy(a.qualifiedSigner.name, ak_.name.data(), ak_.name.size());
    const Sha256Digest extra = Sha256Concat({challenge.nonce(), DigestBytes(Sha256(e.payload()))});
    a.extraData.size = 32;
    memcpy(a.extraData.buffer, extra.data(), 32);
    a.clockInfo.clock = clock;
    a.clockInfo.resetCount = 1;
    a.clockInfo.safe = 1;
    TPMS_PCR_SELECTION& sel = a.attested.quote.pcrSelect.pcrSelections[0];
    a.attested.quote.pcrSelect.count = 1;
    sel.hash = TPM2_ALG_SHA256;
    sel.sizeofSelect = 3;
    std::set<uint32_t> pcrs(challenge.pcr_selection().begin(), challenge.pcr_selection().end());
    std::string concat;
    for (uint32_t index : pcrs) {
      sel.pcrSelect[index / 8] |= static_cast<uint8_t>(1u << (index % 8));
      std::string value =
          index == kMeasurementPcr ? std::string(DigestBytes(pcr_)) : std::string(32, '\0');
      v1::PcrValue* v = e.mutable_quote()->add_pcr_values();
      v->set_index(index);
      v->set_digest(value);
      concat += value;
    }
    const Sha256Digest pcr_digest = Sha256(concat);
    a.attested.quote.pcrDigest.size = 32;
    memcpy(a.attested.quote.pcrDigest.buffer, pcr_digest.data(), 32);
    absl::StatusOr<std::string> attest = MarshalTPMS_ATTEST(a);
    if (!attest.ok()) return attest.status();
    absl::StatusOr<std::string> signature = ak_.Sign(*attest);
    if (!signature.ok()) return signature.status();
    e.mutable_quote()->set_attest(*attest);
    e.mutable_quote()->set_signature(*signature);
    return message;
  }

  void Run() {
    while (true) {
      auto stub = v1::Attestation::NewStub(
          testing::MakeChannel(address_, testing::ClientCredentials(ca_pem_, identity_)));
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + kProgressBound));
      {
        absl::MutexLock lock(&mu_);
        if (stop_) return;
        ctx_ = &ctx;
      }
      auto stream = stub->Attest(&ctx);
      std::optional<Acked> in_flight;
      bool batch_in_flight = false;
      // As vigil-node: the oldest spooled batch, once the verifier holds its record and no
      // other batch awaits its acknowledgement.
      auto send_batch = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (batch_in_flight || spool_.empty() || spool_.front().recnum >= log_acknowledged_) {
          return true;
        }
        v1::NodeMessage message;
        v1::SpoolBatch& b = *message.mutable_spool_batch();
        b.set_sequence(spool_.front().sequence);
        b.set_payload(spool_.front().payload);
        b.set_log_recnum(spool_.front().recnum);
        batch_in_flight = true;
        return stream->Write(message);
      };
      v1::VerifierMessage m;
      while (stream->Read(&m)) {
        absl::MutexLock lock(&mu_);
        if (m.has_spool_ack()) {
          const v1::SpoolBatchAck& ack = m.spool_ack();
          if (!batch_in_flight || spool_.empty() || ack.sequence() != spool_.front().sequence) {
            problems_.push_back(absl::StrCat("acknowledgement for batch ", ack.sequence(),
                                             " that is not the batch in flight"));
          } else if (!ack.accepted()) {
            problems_.push_back(
                absl::StrCat("batch ", ack.sequence(), " refused: ", ack.verdict().detail()));
            spool_.pop_front();  // set aside, as vigil-node does
          } else {
            deleted_.push_back(HexEncode(Sha256(spool_.front().payload)));
            spool_.pop_front();
          }
          batch_in_flight = false;
          if (!send_batch()) break;
        } else if (m.has_acknowledgement()) {
          const v1::Acknowledgement& ack = m.acknowledgement();
          if (!in_flight.has_value() ||
              ack.verdict().evidence_sha256() != in_flight->evidence_sha256) {
            problems_.push_back(absl::StrCat("acknowledgement for ",
                                             ack.verdict().evidence_sha256(),
                                             " that is not the evidence in flight"));
          } else {
            in_flight->verdict = ack.verdict();
            in_flight->log_entries_acknowledged = ack.log_entries_acknowledged();
            log_acknowledged_ = ack.log_entries_acknowledged();
            acked_.push_back(*std::move(in_flight));
          }
          in_flight.reset();
          if (!send_batch()) break;
        } else if (m.has_challenge()) {
          // The log keeps growing: the verifier must keep up with it across restarts.
          if (sequence_ % kReportsPerMeasurement == kReportsPerMeasurement - 1) {
            Measure(kEventNoPolicy);
          }
          absl::StatusOr<v1::NodeMessage> evidence = Answer(m.challenge(), ++clock_);
          if (!evidence.ok()) {
            problems_.push_back(std::string(evidence.status().message()));
            break;
          }
          in_flight = Acked{HexEncode(Sha256(evidence->evidence().payload())), {}, 0, clock_};
          if (!stream->Write(*evidence)) break;
        }
      }
      stream->Finish();
      {
        absl::MutexLock lock(&mu_);
        ctx_ = nullptr;
        if (stop_) return;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  const std::string node_id_;
  const SoftwareAk ak_;
  const CertAndKey identity_;
  const std::string ca_pem_;
  const std::string address_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<v1::MeasurementLogEntry> log_ ABSL_GUARDED_BY(mu_);
  Sha256Digest pcr_ ABSL_GUARDED_BY(mu_) = {};
  uint64_t log_acknowledged_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t clock_ ABSL_GUARDED_BY(mu_) = 1000;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Acked> acked_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> problems_ ABSL_GUARDED_BY(mu_);
  std::deque<SpooledBatch> spool_ ABSL_GUARDED_BY(mu_);
  uint64_t batch_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> deleted_ ABSL_GUARDED_BY(mu_);
};

class VerifierStateKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("verifier-state-kill");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
    absl::StatusOr<testing::ReservedPort> port = testing::ReservedPort::Create();
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *std::move(port);
    db_ = dir_.path() + "/vigil.db";
    references_ = dir_.path() + "/reference-values.yaml";
    std::ofstream out(references_);
    out << "reference_values:\n";
    for (const char* type : {kEventNodeStart, kEventNodeBinary, kEventBpfObject,
                             kEventBpfProgramTags, kEventNoPolicy}) {
      out << "  - {type: " << type << ", digest: " << HexEncode(DigestOf(type))
          << ", description: kill test}\n";
    }
    ASSERT_TRUE(out.good());
  }

  void StartVerifier() {
    if (verifier_ == nullptr) {
      verifier_ = std::make_unique<testing::KillableVerifier>(
          std::vector<std::string>{"--pki-dir", pki_->dir(), "--listen", port_.address(), "--db",
                                   db_, "--reference-values", references_, "--report-interval",
                                   "1s",
                                   // Nodes here answer every challenge at once, far above a real
                                   // node's rate: this test is about durability, not the
                                   // per-node rate limit.
                                   "--evidence-rate", "0"},
          dir_.path() + "/verifier.log", port_.port());
    }
    absl::Status started = verifier_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  // Acknowledgements of evidence and of spooled batches, over every node.
  size_t TotalAcknowledged() const {
    size_t n = 0;
    for (const auto& c : nodes_) n += c->acknowledged() + c->deleted_batches().size();
    return n;
  }

  void AwaitAcknowledgedBeyond(size_t n) {
    absl::Status st = verifier_->AwaitWhileRunning([&] { return TotalAcknowledged() > n; },
                                                   absl::StrCat("no acknowledgement beyond ", n));
    ASSERT_TRUE(st.ok()) << st;
  }

  // Waits until every node saw an acknowledgement beyond `counts` (its count before).
  void AwaitEveryNodeBeyond(const std::vector<size_t>& counts) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      absl::Status st =
          verifier_->AwaitWhileRunning([&] { return nodes_[i]->acknowledged() > counts[i]; },
                                       absl::StrCat(nodes_[i]->node_id(), " got no verdict"));
      ASSERT_TRUE(st.ok()) << st;
    }
  }

  void KillVerifier() {
    absl::Status killed = verifier_->Kill();
    ASSERT_TRUE(killed.ok()) << killed;
  }

  std::string Log() const { return verifier_->LogTail(); }

  std::unique_ptr<TestPki> pki_;
  testing::TestTempDir dir_;
  testing::ReservedPort port_;
  std::string db_;
  std::string references_;
  std::unique_ptr<testing::KillableVerifier> verifier_;
  std::vector<std::unique_ptr<QuotingNode>> nodes_;
};

TEST_F(VerifierStateKillTest, NoAcknowledgedLogEntryClockOrVerdictIsLostToSigkill) {
  // Enrolled beforehand, as credential activation would have left them.
  {
    absl::StatusOr<std::unique_ptr<verifier::NodeRegistry>> registry =
        verifier::NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    for (int i = 0; i < kNodes; ++i) {
      absl::StatusOr<SoftwareAk> ak = SoftwareAk::Create();
      ASSERT_TRUE(ak.ok()) << ak.status();
      ASSERT_TRUE((*registry)
                      ->Bind({NodeId(i), "ek-public", ak->tpm2b_public, ak->name, absl::Now()})
                      .ok());
      absl::StatusOr<CertAndKey> cert = pki_->IssueNode(NodeId(i));
      ASSERT_TRUE(cert.ok()) << cert.status();
      nodes_.push_back(std::make_unique<QuotingNode>(NodeId(i), *std::move(ak), *cert,
                                                     pki_->ca_cert_pem(), port_.address()));
    }
  }
  ASSERT_NO_FATAL_FAILURE(StartVerifier());
  for (auto& n : nodes_) n->Start();

  absl::BitGen gen;
  std::vector<size_t> acknowledged_by_round;
  for (int round = 0; round < kKills; ++round) {
    if (round > 0) {
      ASSERT_NO_FATAL_FAILURE(StartVerifier());
    }
    size_t before = TotalAcknowledged();
    ASSERT_NO_FATAL_FAILURE(AwaitAcknowledgedBeyond(before));
    size_t extra = absl::Uniform<size_t>(gen, 0, 3) == 0 ? 0 : absl::Uniform<size_t>(gen, 1, 40);
    ASSERT_NO_FATAL_FAILURE(AwaitAcknowledgedBeyond(before + extra));
    ASSERT_NO_FATAL_FAILURE(KillVerifier());
    acknowledged_by_round.push_back(TotalAcknowledged() - before);
    // An outage long enough for a backlog: delivered from the next restart on, while the
    // verifier keeps being killed.
    if (round % kKillsPerOutageWithBatches == 0) {
      for (auto& n : nodes_) n->SpoolBatches(kBatchesPerOutage);
    }
  }

  // After the last restart every node gets a verdict again and its backlog drains.
  ASSERT_NO_FATAL_FAILURE(StartVerifier());
  std::vector<size_t> counts;
  for (const auto& n : nodes_) counts.push_back(n->acknowledged());
  ASSERT_NO_FATAL_FAILURE(AwaitEveryNodeBeyond(counts));
  for (const auto& n : nodes_) {
    absl::Status drained = verifier_->AwaitWhileRunning(
        [&] { return n->spooled() == 0; }, absl::StrCat(n->node_id(), "'s spool did not drain"));
    ASSERT_TRUE(drained.ok()) << drained;
  }
  for (auto& n : nodes_) n->Stop();
  ASSERT_NO_FATAL_FAILURE(KillVerifier());

  for (int round = 0; round < kKills; ++round) {
    EXPECT_GT(acknowledged_by_round[round], 0u) << "round " << round;
  }
  for (const auto& n : nodes_) {
    for (const std::string& p : n->problems()) ADD_FAILURE() << n->node_id() << ": " << p;
    for (const Acked& a : n->acked()) {
      EXPECT_NE(a.verdict.status(), v1::TRUST_REJECTED)
          << n->node_id().substr(60) << " clock " << a.clock << ": " << a.verdict.detail();
    }
  }

  // The persisted state covers every acknowledgement: the log entries the verifier said it
  // held and the clock of the last acknowledged quote.
  {
    absl::StatusOr<std::unique_ptr<verifier::NodeRegistry>> registry =
        verifier::NodeRegistry::Open(db_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    for (const auto& n : nodes_) {
      std::vector<Acked> acked = n->acked();
      ASSERT_FALSE(acked.empty()) << n->node_id();
      EXPECT_GT(acked.back().log_entries_acknowledged, 5u)
          << "the log grew while the verifier was killed and restarted";
      std::shared_ptr<verifier::NodeState> state = (*registry)->Find(n->node_id());
      ASSERT_NE(state, nullptr);
      absl::MutexLock lock(&state->mu);
      EXPECT_GE(state->log_entries(), acked.back().log_entries_acknowledged) << n->node_id();
      ASSERT_TRUE(state->last_clock.has_value()) << n->node_id();
      EXPECT_GE(state->last_clock->clock, acked.back().clock) << n->node_id();
    }
  }

  // Every acknowledged verdict is stored, and so is the verdict of every batch a node deleted
  // as acknowledged.
  {
    absl::StatusOr<std::unique_ptr<verifier::SqliteStore>> store = verifier::SqliteStore::Open(db_);
    ASSERT_TRUE(store.ok()) << store.status();
    size_t checked = 0, batches_checked = 0;
    for (const auto& n : nodes_) {
      absl::StatusOr<std::set<std::string>> digests =
          testing::StoredEvidenceDigests(**store, n->node_id());
      ASSERT_TRUE(digests.ok()) << digests.status();
      const std::set<std::string>& stored = *digests;
      for (const Acked& a : n->acked()) {
        EXPECT_EQ(stored.count(a.evidence_sha256), 1u)
            << n->node_id().substr(60) << ": acknowledged evidence " << a.evidence_sha256
            << " is not stored";
        ++checked;
      }
      const std::vector<std::string> deleted = n->deleted_batches();
      EXPECT_EQ(deleted.size(),
                static_cast<size_t>(kBatchesPerOutage * ((kKills + kKillsPerOutageWithBatches - 1) /
                                                         kKillsPerOutageWithBatches)))
          << n->node_id().substr(60);
      for (const std::string& batch : deleted) {
        EXPECT_EQ(stored.count(batch), 1u)
            << n->node_id().substr(60) << ": batch " << batch << " was deleted as acknowledged "
            << "but its verdict is not stored";
        ++batches_checked;
      }
    }
    RecordProperty("acknowledged_verdicts_checked", static_cast<int>(checked));
    RecordProperty("deleted_batches_checked", static_cast<int>(batches_checked));
  }

  // No replay window after a restart: a quote whose clock is the last acknowledged one is
  // refused, and the next clock is accepted.
  ASSERT_NO_FATAL_FAILURE(StartVerifier());
  QuotingNode& node = *nodes_[0];
  const uint64_t last_clock = node.acked().back().clock;
  absl::StatusOr<v1::Verdict> replayed = node.AnswerOnceWithClock(last_clock);
  ASSERT_TRUE(replayed.ok()) << replayed.status() << "\n" << Log();
  EXPECT_EQ(replayed->status(), v1::TRUST_REJECTED) << replayed->detail();
  ASSERT_EQ(replayed->reasons_size(), 1);
  EXPECT_EQ(replayed->reasons(0), v1::CLOCK_NOT_ADVANCED) << replayed->detail();
  absl::StatusOr<v1::Verdict> next = node.AnswerOnceWithClock(last_clock + 1000);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(next->status(), v1::TRUST_REJECTED) << next->detail();
  ASSERT_NO_FATAL_FAILURE(KillVerifier());
}

}  // namespace
}  // namespace vigil
