// The real vigil-node with --metrics-address 127.0.0.1:0, split by privilege under the systemd
// unit's capability bounding set, on swtpm with its BPF probes, watching the naive demo agent
// (ptrace, process_vm_readv, unshare every three seconds) and reporting to the real
// vigil-verifier, which distributes the strict reference policy: what a Prometheus scrape reads
// (through the reference parser) follows what the node did. The bundle is applied, events are
// counted by kind, reports are quoted and timed, the verdict gauge says contraindicated, and across
// a verifier outage the stream state, the reconnection attempts and the spool (written, then sent,
// answered and emptied) move as they should; the restarted verifier counts the batches it stored.
// A metrics address the node cannot bind stops it at start; the same node restarted with
// --single-process serves its metrics too.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/metrics_text.h"
#include "tests/testing/node_unit.h"
#include "tests/testing/program_run.h"
#include "tests/testing/temp_dir.h"

namespace vigil {
namespace {

using testing::Fabric;
using Samples = std::map<std::string, double>;

// Only keeps a broken build from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kProgressBound = absl::Minutes(2);

// A sample's value, or -1 when the scrape does not have it (so a missing series fails the
// comparisons below with its name in the message).
double Value(const Samples& s, const std::string& key) {
  const auto it = s.find(key);
  return it == s.end() ? -1 : it->second;
}

// Scrapes until `done` holds (or kProgressBound passes); the last scrape. Fails the test,
// saying what was awaited, when it never held.
Samples ScrapeUntil(int port, const std::string& what,
                    const std::function<bool(const Samples&)>& done, Fabric& f) {
  Samples last;
  for (const absl::Time deadline = absl::Now() + kProgressBound; absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(200))) {
    absl::StatusOr<Samples> scraped = testing::ScrapeMetrics(port);
    if (!scraped.ok()) {
      ADD_FAILURE() << scraped.status();
      return last;
    }
    last = *std::move(scraped);
    if (done(last)) return last;
  }
  ADD_FAILURE() << "never saw: " << what << "\n" << f.Logs();
  return last;
}

constexpr char kSent[] = "vigil_node_reports_sent_total{}";
constexpr char kAcknowledged[] = "vigil_node_reports_acknowledged_total{}";
constexpr char kConnected[] = "vigil_node_attest_connected{}";
constexpr char kStreams[] = "vigil_node_attest_streams_opened_total{}";
constexpr char kQuotes[] = "vigil_node_quote_duration_seconds_count{}";
constexpr char kPtrace[] = "vigil_node_events_total{kind=\"ptrace\"}";
constexpr char kVmReadv[] = "vigil_node_events_total{kind=\"process_vm_readv\"}";
constexpr char kContraindicated[] = "vigil_node_verdict_status{status=\"contraindicated\"}";
constexpr char kApplied[] = "vigil_node_policy_bundles_total{outcome=\"applied\"}";
constexpr char kSpoolBatches[] = "vigil_node_spool_batches{}";
constexpr char kSpoolBytes[] = "vigil_node_spool_bytes{}";
constexpr char kWritten[] = "vigil_node_spool_batches_written_total{}";
constexpr char kSpoolSent[] = "vigil_node_spool_batches_sent_total{}";
constexpr char kAnswered[] = "vigil_node_spool_batches_answered_total{}";

TEST(NodeMetricsTest, AScrapeFollowsEventsQuotesAnOutageAndTheSpool) {
  Fabric::Options options;
  options.demo_agents = true;
  options.node_args = {"--spool-batch-ms", "500"};
  // The strict reference policy, distributed to the node as a bundle: the naive agent breaks it.
  options.verifier_args = {"--metrics-address", "127.0.0.1:0", "--policy",
                           testing::SourceDir() + "/deploy/policies/strict.yaml"};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  // Split by privilege (the default) under exactly the unit's capabilities: the listener runs
  // in the main process, with its seccomp filter and without CAP_NET_BIND_SERVICE.
  ASSERT_TRUE(f.StartNodeUnder(testing::SetprivWithCapabilities(testing::NodeUnitCapabilities()),
                               {"--metrics-address", "127.0.0.1:0"})
                  .ok());
  absl::StatusOr<int> port = testing::AwaitMetricsPort([&] { return f.NodeLog(); });
  ASSERT_TRUE(port.ok()) << port.status() << f.Logs();

  // Reporting: the bundle applied, acknowledged reports, each quoted by the TPM, the agent's
  // misbehaviour counted by kind, and the verdict it earns (the first reports may precede the
  // agent's setup).
  Samples up = ScrapeUntil(
      *port, "an acknowledged report and the agent's ptrace and process_vm_readv counted",
      [](const Samples& s) {
        return Value(s, kAcknowledged) >= 1 && Value(s, kPtrace) >= 1 && Value(s, kVmReadv) >= 1 &&
               Value(s, kContraindicated) == 1;
      },
      f);
  EXPECT_EQ(Value(up, kConnected), 1);
  EXPECT_EQ(Value(up, kStreams), 1);
  EXPECT_GE(Value(up, kSent), Value(up, kAcknowledged));
  EXPECT_GE(Value(up, kQuotes), 1);
  EXPECT_EQ(Value(up, "vigil_node_quote_failures_total{}"), 0);
  EXPECT_GE(Value(up, "vigil_node_snapshot_duration_seconds_count{}"), 1);
  EXPECT_EQ(Value(up, "vigil_node_events_total{kind=\"init_module\"}"), 0);
  // Exactly one status is set.
  EXPECT_EQ(Value(up, "vigil_node_verdict_status{status=\"affirming\"}"), 0);
  EXPECT_EQ(Value(up, "vigil_node_verdict_status{status=\"rejected\"}"), 0);
  EXPECT_EQ(Value(up, kApplied), 1);
  EXPECT_EQ(Value(up, "vigil_node_policy_bundles_total{outcome=\"refused\"}"), 0);
  EXPECT_EQ(Value(up, kSpoolBatches), 0);
  EXPECT_EQ(Value(up, kSpoolBytes), 0);
  EXPECT_EQ(Value(up, kWritten), 0);
  // Every place the node loses events is exported, the probes' own reasons included.
  for (const char* reason : {"ringbuf_full", "stash_full", "monitor_full", "queue_full",
                             "malformed", "report_queue_full", "spool_full"}) {
    EXPECT_GE(Value(up, absl::StrCat("vigil_node_events_dropped_total{reason=\"", reason, "\"}")),
              0)
        << reason;
  }
  EXPECT_EQ(Value(up, "vigil_node_spool_batches_dropped_total{reason=\"spool_full\"}"), 0);
  EXPECT_EQ(Value(up, "vigil_node_report_processes_left_out_total{}"), 0);

  // Every metric the shipped Grafana dashboard queries is one the node serves.
  absl::StatusOr<size_t> queried =
      testing::CheckDashboardQueriesServed("deploy/grafana/vigil-node.json", up);
  ASSERT_TRUE(queried.ok()) << queried.status();
  EXPECT_GE(*queried, 10u);

  // An outage: the stream goes down, the node tries again and again, and spools what it sees.
  ASSERT_TRUE(f.StopVerifier().ok());
  Samples down = ScrapeUntil(
      *port, "the stream down, a reconnection attempt and two spooled batches",
      [&](const Samples& s) {
        return Value(s, kConnected) == 0 && Value(s, kStreams) >= 2 && Value(s, kWritten) >= 2 &&
               Value(s, kPtrace) > Value(up, kPtrace);
      },
      f);
  EXPECT_GE(Value(down, kSpoolBatches), 1);
  EXPECT_GT(Value(down, kSpoolBytes), 0);
  EXPECT_EQ(Value(down, kSpoolSent), 0);

  // The verifier back: a new stream, the backlog sent, answered and gone from the spool.
  const size_t verifier_log_before = f.VerifierLog().size();
  ASSERT_TRUE(f.StartVerifier().ok());
  Samples back = ScrapeUntil(
      *port, "the stream up again with the spool emptied",
      [&](const Samples& s) {
        return Value(s, kConnected) == 1 && Value(s, kAcknowledged) > Value(down, kAcknowledged) &&
               Value(s, kSpoolBatches) == 0 && Value(s, kAnswered) >= Value(down, kWritten);
      },
      f);
  EXPECT_GE(Value(back, kStreams), Value(down, kStreams));
  EXPECT_GE(Value(back, kApplied), 2);  // the bundle again, on the new stream
  EXPECT_GE(Value(back, kSpoolSent), Value(down, kWritten));
  EXPECT_EQ(Value(back, kSpoolBytes), 0);
  EXPECT_EQ(Value(back, "vigil_node_spool_batches_dropped_total{reason=\"refused\"}"), 0);
  EXPECT_EQ(Value(back, "vigil_node_spool_batches_dropped_total{reason=\"corrupt\"}"), 0);
  EXPECT_GT(Value(back, kSent), Value(up, kSent));
  EXPECT_GT(Value(back, kQuotes), Value(up, kQuotes));
  // The verifier, counting since its restart, stored each of those batches with its verdict.
  absl::StatusOr<int> verifier_port =
      testing::AwaitMetricsPort([&] { return f.VerifierLog().substr(verifier_log_before); });
  ASSERT_TRUE(verifier_port.ok()) << verifier_port.status() << f.Logs();
  absl::StatusOr<Samples> verifier = testing::ScrapeMetrics(*verifier_port);
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  // Under the same policy as the live reports: contraindicated, none refused.
  EXPECT_EQ(Value(*verifier, "vigil_verifier_spool_batches_total{status=\"contraindicated\"}"),
            Value(back, kWritten));
  EXPECT_EQ(Value(*verifier, "vigil_verifier_spool_batches_total{status=\"rejected\"}"), 0);

  // An address the node cannot bind (the verifier's metrics listener holds it) stops it at start.
  ASSERT_TRUE(f.StopNode().ok());
  size_t log_before = f.NodeLog().size();
  ASSERT_TRUE(f.StartNode({"--metrics-address", absl::StrCat("127.0.0.1:", *verifier_port)}).ok());
  absl::StatusOr<int> exit_status = f.AwaitNodeExit();
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 1) << *exit_status;
  EXPECT_NE(
      f.NodeLog().find(absl::StrCat("cannot listen on 127.0.0.1:", *verifier_port, " for metrics"),
                       log_before),
      std::string::npos)
      << f.NodeLog().substr(log_before);

  // The same node as one process: its listener serves as well.
  log_before = f.NodeLog().size();
  ASSERT_TRUE(f.StartNode({"--single-process", "--metrics-address", "127.0.0.1:0"}).ok());
  absl::StatusOr<int> single_port =
      testing::AwaitMetricsPort([&] { return f.NodeLog().substr(log_before); });
  ASSERT_TRUE(single_port.ok()) << single_port.status() << f.Logs();
  Samples single = ScrapeUntil(
      *single_port, "an acknowledged report from the single-process node",
      [](const Samples& s) { return Value(s, kAcknowledged) >= 1 && Value(s, kQuotes) >= 1; }, f);
  EXPECT_EQ(Value(single, kConnected), 1);
}

TEST(NodeMetricsTest, AMalformedAddressIsAUsageError) {
  absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("node-metrics");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const testing::ProgramRun run =
      testing::RunProgram({testing::BuildDir() + "/node/vigil-node", "run", "--select", "comm=none",
                           "--ca-cert", "ca.crt", "--metrics-address", "localhost"},
                          dir->path());
  EXPECT_EQ(run.exit_code, 2) << run.out << run.err;
  EXPECT_NE(run.err.find("metrics address \"localhost\" is not host:port"), std::string::npos)
      << run.err;
}

}  // namespace
}  // namespace vigil
