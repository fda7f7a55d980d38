// The node spool across a verifier outage, end to end: swtpm, the real vigil-verifier (stopped
// and started again on the same database and port), the real vigil-node with its BPF probes,
// and the naive demo agent misbehaving (ptrace, process_vm_readv, ...) all along.
//
// Outage: the verifier stops; the node keeps observing and writes measured batches to its
// spool; the node itself restarts once in the middle; the test reads every batch left in the
// spool (what the node observed, counted from its side) before the verifier returns. Then
// every one of those batches must leave the spool acknowledged and be in the verifier's
// verdict history (by SHA-256 of its payload), accepted, with all its events.
//
// Lost acknowledgement: the verifier is frozen (SIGSTOP) while the node sends a report, then
// killed; the node keeps the unacknowledged report as a measured batch and delivers it to the
// restarted verifier.
//
// Tampering: a batch edited on disk (its payload changed and its trailer recomputed, as
// anything that took over the node afterwards could) is refused SPOOL_BATCH_UNMEASURED and
// set aside; a torn batch is set aside as corrupt; the node keeps running.
//
// The outage lasts VIGIL_SPOOL_OUTAGE_SECONDS (default 90).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/pki.h"
#include "node/spool/batch_format.h"
#include "tests/testing/fabric_fixture.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil {
namespace {

using testing::Fabric;

// Only keeps a broken build from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kDrainBound = absl::Minutes(4);

absl::Duration OutageLength() {
  int seconds = 90;
  if (const char* env = std::getenv("VIGIL_SPOOL_OUTAGE_SECONDS"); env != nullptr) {
    if (!absl::SimpleAtoi(env, &seconds) || seconds < 4) seconds = 90;
  }
  return absl::Seconds(seconds);
}

std::string SpoolDir(const Fabric& f) { return f.state_dir() + "/spool"; }

// Every batch file in `dir`, decoded, by sequence. A file that does not decode fails the test.
std::map<uint64_t, node::spool::Batch> ReadSpool(const std::string& dir) {
  std::map<uint64_t, node::spool::Batch> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::optional<uint64_t> sequence =
        node::spool::ParseBatchFileName(entry.path().filename().string());
    if (!sequence.has_value()) continue;
    absl::StatusOr<std::string> bytes = ReadFileToString(entry.path().string());
    if (!bytes.ok()) continue;  // acknowledged and deleted meanwhile
    absl::StatusOr<node::spool::Batch> batch = node::spool::DecodeBatch(*bytes);
    EXPECT_TRUE(batch.ok()) << entry.path() << ": " << batch.status();
    if (batch.ok()) out[*sequence] = *std::move(batch);
  }
  return out;
}

bool AnyLeft(const std::string& dir, const std::map<uint64_t, node::spool::Batch>& batches) {
  for (const auto& [sequence, batch] : batches) {
    if (std::filesystem::exists(dir + "/" + node::spool::BatchFileName(sequence))) return true;
  }
  return false;
}

// The node's verdict history from the Fleet API, by evidence SHA-256.
std::map<std::string, v1::Verdict> History(Fabric& f, const std::string& node_id) {
  std::map<std::string, v1::Verdict> out;
  v1::ListVerdictsRequest request;
  request.set_node_id(node_id);
  request.set_page_size(1000);
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ListVerdictsResponse response;
    grpc::Status s = f.fleet().ListVerdicts(&ctx, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) return out;
    for (const v1::Verdict& v : response.verdicts()) out[v.evidence_sha256()] = v;
    if (response.next_page_token().empty()) return out;
    request.set_page_token(response.next_page_token());
  }
}

// Waits until none of `batches` is left in the spool directory (acknowledged and deleted,
// or set aside).
::testing::AssertionResult AwaitDrained(Fabric& f,
                                        const std::map<uint64_t, node::spool::Batch>& batches) {
  const absl::Time deadline = absl::Now() + kDrainBound;
  while (AnyLeft(SpoolDir(f), batches)) {
    if (absl::Now() > deadline) {
      return ::testing::AssertionFailure() << "spooled batches never drained\n" << f.Logs();
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
  return ::testing::AssertionSuccess();
}

size_t EventsOfPid(const node::spool::Batch& batch, int pid) {
  v1::RuntimeReport report;
  if (!report.ParseFromString(batch.payload)) return 0;
  size_t n = 0;
  for (const v1::RuntimeEvent& e : report.events()) n += e.pid() == pid ? 1 : 0;
  return n;
}

std::unique_ptr<Fabric> StartFabric() {
  Fabric::Options options;
  options.demo_agents = true;
  options.node_args = {"--spool-batch-ms", "2000"};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  EXPECT_TRUE(fabric.ok()) << fabric.status();
  if (!fabric.ok()) return nullptr;
  absl::Status node = (*fabric)->StartNode();
  EXPECT_TRUE(node.ok()) << node;
  return node.ok() ? *std::move(fabric) : nullptr;
}

TEST(SpoolOutageTest, EveryEventObservedDuringAnOutageWithANodeRestartReachesTheHistory) {
  std::unique_ptr<Fabric> fabric = StartFabric();
  ASSERT_NE(fabric, nullptr);
  Fabric& f = *fabric;
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status();

  const absl::Duration outage = OutageLength();
  ASSERT_TRUE(f.StopVerifier().ok());
  absl::SleepFor(outage / 2);
  ASSERT_FALSE(ReadSpool(SpoolDir(f)).empty()) << "nothing spooled\n" << f.Logs();
  // A node restart during the outage keeps the spool.
  ASSERT_TRUE(f.StopNode().ok());
  ASSERT_TRUE(f.StartNode().ok());
  absl::SleepFor(outage / 2);

  const std::map<uint64_t, node::spool::Batch> spooled = ReadSpool(SpoolDir(f));
  size_t events = 0, naive_events = 0;
  for (const auto& [sequence, batch] : spooled) {
    EXPECT_NE(batch.log_recnum, node::spool::kUnmeasured) << "batch " << sequence;
    events += batch.events;
    naive_events += EventsOfPid(batch, f.naive_agent_pid());
  }
  // One batch per two seconds of outage, give or take the restart.
  EXPECT_GE(spooled.size(), static_cast<size_t>(absl::ToInt64Seconds(outage) / 4));
  EXPECT_GT(naive_events, 0u) << "the naive agent's misbehaviour was not observed";

  std::cout << "outage " << absl::FormatDuration(outage) << ": " << spooled.size()
            << " batches spooled, " << events << " events, " << naive_events
            << " of them the naive agent's\n";

  ASSERT_TRUE(f.StartVerifier().ok());
  ASSERT_TRUE(AwaitDrained(f, spooled));

  const std::map<std::string, v1::Verdict> history = History(f, *node_id);
  size_t delivered_events = 0;
  for (const auto& [sequence, batch] : spooled) {
    auto v = history.find(HexEncode(Sha256(batch.payload)));
    ASSERT_NE(v, history.end()) << "batch " << sequence << " is not in the verdict history\n"
                                << f.Logs();
    EXPECT_NE(v->second.status(), v1::TRUST_REJECTED)
        << "batch " << sequence << ": " << v->second.detail();
    EXPECT_THAT(v->second.detail(), ::testing::HasSubstr("spooled batch"));
    delivered_events += batch.events;
  }
  EXPECT_EQ(delivered_events, events);
  EXPECT_FALSE(std::filesystem::exists(SpoolDir(f) + "/refused")) << f.Logs();
  EXPECT_FALSE(std::filesystem::exists(SpoolDir(f) + "/corrupt")) << f.Logs();
}

TEST(SpoolOutageTest, ReportSentToAVerifierKilledBeforeItsAcknowledgementIsDelivered) {
  std::unique_ptr<Fabric> fabric = StartFabric();
  ASSERT_NE(fabric, nullptr);
  Fabric& f = *fabric;
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status();

  // Frozen, the verifier still holds the connection: the node's next report (due within the
  // 1 s report interval) goes out and no acknowledgement comes back. Then it dies.
  const pid_t verifier = f.verifier_pid();
  ASSERT_EQ(kill(verifier, SIGSTOP), 0);
  absl::SleepFor(absl::Seconds(4));
  ASSERT_EQ(kill(verifier, SIGKILL), 0);
  EXPECT_FALSE(f.StopVerifier().ok());  // reaped; it died of SIGKILL

  const std::string kept = "spooled unacknowledged report ";
  const absl::Time deadline = absl::Now() + kDrainBound;
  size_t at;
  while ((at = f.NodeLog().find(kept)) == std::string::npos) {
    ASSERT_LT(absl::Now(), deadline) << "no unacknowledged report spooled\n" << f.Logs();
    absl::SleepFor(absl::Milliseconds(200));
  }
  uint64_t sequence = 0;
  const std::string log = f.NodeLog();
  const std::string number =
      log.substr(at + kept.size(), log.find(' ', at + kept.size()) - (at + kept.size()));
  ASSERT_TRUE(absl::SimpleAtoi(number, &sequence)) << log.substr(at, 120);
  const std::map<uint64_t, node::spool::Batch> spooled = ReadSpool(SpoolDir(f));
  auto unacknowledged = spooled.find(sequence);
  ASSERT_NE(unacknowledged, spooled.end()) << "batch " << sequence << "\n" << f.Logs();
  EXPECT_NE(unacknowledged->second.log_recnum, node::spool::kUnmeasured);

  ASSERT_TRUE(f.StartVerifier().ok());
  ASSERT_TRUE(AwaitDrained(f, spooled));
  const std::map<std::string, v1::Verdict> history = History(f, *node_id);
  auto v = history.find(HexEncode(Sha256(unacknowledged->second.payload)));
  ASSERT_NE(v, history.end()) << "the unacknowledged report is not in the history\n" << f.Logs();
  EXPECT_NE(v->second.status(), v1::TRUST_REJECTED) << v->second.detail();
  EXPECT_TRUE(v->second.from_spool());
  EXPECT_FALSE(std::filesystem::exists(SpoolDir(f) + "/refused")) << f.Logs();
}

TEST(SpoolOutageTest, BatchEditedOnDiskIsRefusedAsTamperedAndSetAside) {
  std::unique_ptr<Fabric> fabric = StartFabric();
  ASSERT_NE(fabric, nullptr);
  Fabric& f = *fabric;
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status();

  ASSERT_TRUE(f.StopVerifier().ok());
  std::map<uint64_t, node::spool::Batch> spooled;
  const absl::Time deadline = absl::Now() + kDrainBound;
  while ((spooled = ReadSpool(SpoolDir(f))).size() < 4) {
    ASSERT_LT(absl::Now(), deadline) << "the node spooled fewer than 4 batches\n" << f.Logs();
    absl::SleepFor(absl::Milliseconds(500));
  }
  // The node is stopped while the files are edited, so the edit is all that changes them.
  ASSERT_TRUE(f.StopNode().ok());
  auto it = spooled.begin();
  const uint64_t tampered_sequence = it->first;
  node::spool::Batch tampered = it->second;
  v1::RuntimeReport report;
  ASSERT_TRUE(report.ParseFromString(tampered.payload));
  report.clear_events();  // hide what happened
  report.add_observation_gaps("nothing to see");
  tampered.payload = report.SerializeAsString();
  tampered.events = 0;
  const std::string path = SpoolDir(f) + "/" + node::spool::BatchFileName(tampered_sequence);
  ASSERT_TRUE(ReplacePrivateFileAtomically(path, node::spool::EncodeBatch(tampered)).ok());
  const uint64_t torn_sequence = (++it)->first;
  const std::string torn = SpoolDir(f) + "/" + node::spool::BatchFileName(torn_sequence);
  std::filesystem::resize_file(torn, std::filesystem::file_size(torn) / 2);

  ASSERT_TRUE(f.StartNode().ok());
  ASSERT_TRUE(f.StartVerifier().ok());
  ASSERT_TRUE(AwaitDrained(f, spooled));

  EXPECT_TRUE(std::filesystem::exists(SpoolDir(f) + "/refused/" +
                                      node::spool::BatchFileName(tampered_sequence)))
      << f.Logs();
  EXPECT_TRUE(std::filesystem::exists(SpoolDir(f) + "/corrupt/" +
                                      node::spool::BatchFileName(torn_sequence)))
      << f.Logs();
  const std::map<std::string, v1::Verdict> history = History(f, *node_id);
  auto refused = history.find(HexEncode(Sha256(tampered.payload)));
  ASSERT_NE(refused, history.end()) << "the refusal is not recorded\n" << f.Logs();
  EXPECT_EQ(refused->second.status(), v1::TRUST_REJECTED);
  ASSERT_GT(refused->second.reasons_size(), 0);
  EXPECT_EQ(refused->second.reasons(0), v1::SPOOL_BATCH_UNMEASURED);
  // The untouched batches are delivered.
  for (const auto& [sequence, batch] : spooled) {
    if (sequence == tampered_sequence || sequence == torn_sequence) continue;
    auto v = history.find(HexEncode(Sha256(batch.payload)));
    ASSERT_NE(v, history.end()) << "batch " << sequence << "\n" << f.Logs();
    EXPECT_NE(v->second.status(), v1::TRUST_REJECTED) << v->second.detail();
  }
  // The node reports what it skipped and what was refused, and still runs.
  ASSERT_NE(f.node_pid(), 0);
  EXPECT_EQ(kill(f.node_pid(), 0), 0);
  EXPECT_THAT(f.NodeLog(), ::testing::HasSubstr("is corrupt"));
  EXPECT_THAT(f.NodeLog(), ::testing::HasSubstr("refused by the verifier"));
}

}  // namespace
}  // namespace vigil
