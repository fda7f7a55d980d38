// The node's measurements on a software TPM: every extend is logged, the log replays to
// the PCR, a restart within the boot continues the log, a tampered log is reported, and a
// new boot starts a new log.
#include "node/agent/measurer.h"

#include <fstream>

#include "gtest/gtest.h"
#include "node/agent/tpm_sealer.h"
#include "tests/testing/swtpm_fixture.h"

namespace vigil::node {
namespace {

using testing::SwtpmFixture;

class MeasurerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto swtpm = SwtpmFixture::Start();
    ASSERT_TRUE(swtpm.ok()) << swtpm.status();
    swtpm_ = std::move(*swtpm);
    dir_ = swtpm_->scratch_dir();
    SetBootId("boot-one");
    OpenTpm();
  }
  void OpenTpm() {
    tpm::NodeTpm::Options o;
    o.tcti = swtpm_->tcti();
    o.state_dir = dir_ + "/state";
    auto node = tpm::NodeTpm::Open(o);
    ASSERT_TRUE(node.ok()) << node.status();
    tpm_ = std::move(*node);
  }
  void SetBootId(const std::string& id) { std::ofstream(dir_ + "/boot_id") << id << "\n"; }
  Measurer::Options Options() const {
    Measurer::Options o;
    o.log_path = dir_ + "/run/vigil/measurements.json";
    o.boot_id_path = dir_ + "/boot_id";
    return o;
  }
  Sha256Digest Pcr15() {
    auto pcrs = tpm_->ReadPcrs({15});
    EXPECT_TRUE(pcrs.ok()) << pcrs.status();
    return pcrs.ok() ? (*pcrs)[0].value : Sha256Digest{};
  }
  MeasurementLog LogOnDisk() {
    auto log = ReadMeasurementLog(Options().log_path);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *log : MeasurementLog{};
  }
  std::unique_ptr<SwtpmFixture> swtpm_;
  std::unique_ptr<tpm::NodeTpm> tpm_;
  std::string dir_;
};

TEST_F(MeasurerTest, EveryExtendIsLoggedAndTheLogReplaysToThePcr) {
  auto m = Measurer::Start(tpm_.get(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  std::ofstream(dir_ + "/policy.yaml") << "rules: []\n";
  ASSERT_TRUE((*m)->MeasureNodeBinary().ok());
  ASSERT_TRUE((*m)->MeasureBpfObject("vigil.bpf.o",
                                     "\x7f"
                                     "ELF object bytes")
                  .ok());
  ASSERT_TRUE((*m)->MeasureBpfProgramTags("trace_ptrace:0123456789abcdef").ok());
  ASSERT_TRUE((*m)->MeasurePolicy(dir_ + "/policy.yaml").ok());
  ASSERT_TRUE((*m)->MeasurePolicy("").ok());
  EXPECT_FALSE((*m)->log_mismatch());

  MeasurementLog log = LogOnDisk();
  EXPECT_EQ(log, (*m)->log());
  EXPECT_EQ(log.boot_id, "boot-one");
  ASSERT_EQ(log.records.size(), 6u);
  EXPECT_EQ(log.records[0].event_type, kEventNodeStart);
  EXPECT_EQ(log.records[1].event_type, kEventNodeBinary);
  EXPECT_EQ(log.records[1].digest, *Sha256File("/proc/self/exe"));
  EXPECT_EQ(log.records[2].digest, Sha256("\x7f"
                                          "ELF object bytes"));
  EXPECT_EQ(log.records[4].digest, Sha256("rules: []\n"));
  EXPECT_EQ(log.records[5].event_type, kEventNoPolicy);
  EXPECT_NE(log.records[5].digest, log.records[4].digest);
  EXPECT_EQ(ReplayPcr(log.records, 15), Pcr15());
}

TEST_F(MeasurerTest, MeasureNumberedReturnsTheRecordItAppended) {
  auto m = Measurer::Start(tpm_.get(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  auto first = (*m)->MeasureNumbered(kEventSpoolBatch, "report 1, 0 events", Sha256("batch 1"));
  auto second = (*m)->MeasureNumbered(kEventSpoolBatch, "report 2, 3 events", Sha256("batch 2"));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, 1u);  // after node-start
  EXPECT_EQ(*second, 2u);
  MeasurementLog log = LogOnDisk();
  ASSERT_EQ(log.records.size(), 3u);
  EXPECT_EQ(log.records[2].event_type, kEventSpoolBatch);
  EXPECT_EQ(log.records[2].digest, Sha256("batch 2"));
  EXPECT_EQ(ReplayPcr(log.records, 15), Pcr15());
}

TEST_F(MeasurerTest, RefusesResettableAndBootPcrsUnlessAllowed) {
  for (uint32_t pcr : {16u, 23u, 7u, 0u, 24u}) {
    Measurer::Options o = Options();
    o.pcr = pcr;
    EXPECT_EQ(Measurer::Start(tpm_.get(), o).status().code(), absl::StatusCode::kInvalidArgument)
        << pcr;
  }
  Measurer::Options o = Options();
  o.pcr = 16;
  o.allow_resettable_pcr = true;
  EXPECT_TRUE(Measurer::Start(tpm_.get(), o).ok());
}

TEST_F(MeasurerTest, RestartWithinBootReplaysAndAppends) {
  {
    auto m = Measurer::Start(tpm_.get(), Options());
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE((*m)->MeasurePolicy("").ok());
  }
  OpenTpm();  // a new node process: new TPM connection, same TPM
  auto m = Measurer::Start(tpm_.get(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE((*m)->log_mismatch());
  ASSERT_TRUE((*m)->MeasurePolicy("").ok());
  MeasurementLog log = LogOnDisk();
  ASSERT_EQ(log.records.size(), 4u);
  for (size_t i = 0; i < log.records.size(); ++i) EXPECT_EQ(log.records[i].recnum, i);
  EXPECT_EQ(log.records[2].event_type, kEventNodeStart);
  EXPECT_EQ(ReplayPcr(log.records, 15), Pcr15());
}

TEST_F(MeasurerTest, TamperedLogIsReportedAsMismatchInEvidence) {
  {
    auto m = Measurer::Start(tpm_.get(), Options());
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE((*m)->MeasurePolicy("").ok());
  }
  MeasurementLog log = LogOnDisk();
  log.records[1].digest = Sha256("something else");  // hide what was really measured
  ASSERT_TRUE(WriteMeasurementLog(Options().log_path, log).ok());

  auto m = Measurer::Start(tpm_.get(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE((*m)->log_mismatch());
  MeasurementLog after = LogOnDisk();
  ASSERT_EQ(after.records.size(), 4u);
  EXPECT_EQ(after.records[2].event_type, kEventLogMismatch);
  EXPECT_EQ(after.records[2].digest, LogMismatchDigest());

  // The mismatch travels in the evidence's log entries.
  TpmSealer sealer(tpm_.get(), m->get(), {15});
  v1::Challenge challenge;
  challenge.set_nonce("nonce");
  auto evidence = sealer.Seal("payload", challenge, 2);
  ASSERT_TRUE(evidence.ok()) << evidence.status();
  ASSERT_EQ(evidence->log_entries_size(), 2);
  EXPECT_EQ(evidence->log_entries(0).recnum(), 2u);
  EXPECT_EQ(evidence->log_entries(0).event_type(), kEventLogMismatch);
}

TEST_F(MeasurerTest, StartOnAResetPcrWithinTheBootOpensANewEpoch) {
  {
    auto m = Measurer::Start(tpm_.get(), Options());
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE((*m)->MeasurePolicy("").ok());
  }
  tpm_.reset();
  ASSERT_TRUE(swtpm_->Restart().ok());  // PCRs reset, same boot id: the log no longer applies
  OpenTpm();
  auto m = Measurer::Start(tpm_.get(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE((*m)->log_mismatch());
  MeasurementLog log = LogOnDisk();
  ASSERT_EQ(log.records.size(), 4u);
  EXPECT_EQ(log.records[2].event_type, kEventTpmRestart);
  EXPECT_EQ(log.records[2].digest, TpmRestartDigest());
  EXPECT_EQ(log.records[3].event_type, kEventNodeStart);
  EXPECT_EQ(CurrentEpochStart(log.records), 2u);
  const std::vector<MeasurementRecord> epoch(log.records.begin() + 2, log.records.end());
  EXPECT_EQ(ReplayPcr(epoch, 15), Pcr15());
}

TEST_F(MeasurerTest, NewBootStartsANewLog) {
  {
    auto m = Measurer::Start(tpm_.get(), Options());
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE((*m)->MeasurePolicy("").ok());
  }
  tpm_.reset();
  ASSERT_TRUE(swtpm_->Restart().ok());  // power cycle: PCRs reset
  SetBootId("boot-two");
  OpenTpm();
  auto m = Measurer::Start(tpm_.get(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE((*m)->log_mismatch());
  MeasurementLog log = LogOnDisk();
  EXPECT_EQ(log.boot_id, "boot-two");
  ASSERT_EQ(log.records.size(), 1u);
  EXPECT_EQ(log.records[0].recnum, 0u);
  EXPECT_EQ(ReplayPcr(log.records, 15), Pcr15());
}

TEST_F(MeasurerTest, SealerSendsEntriesFromTheAcknowledgedRecord) {
  auto m = Measurer::Start(tpm_.get(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE((*m)->MeasurePolicy("").ok());
  TpmSealer sealer(tpm_.get(), m->get(), {15});
  v1::Challenge challenge;
  challenge.set_nonce("nonce");
  auto all = sealer.Seal("payload", challenge, 0);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->log_entries_size(), 2);
  auto replay = ReplayPcr(all->log_entries(), 15);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(std::string(DigestBytes(*replay)), all->quote().pcr_values(0).digest());
  auto none = sealer.Seal("payload", challenge, 2);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->log_entries_size(), 0);
}

}  // namespace
}  // namespace vigil::node
