// NodeMetrics against fakes and a real spool: what it counts and exports, read back through
// the reference parser (python3-prometheus-client).

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "node/agent/node_metrics.h"
#include "node/agent/report_builder.h"
#include "node/procfs/file_hash_cache.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "node/spool/batch_format.h"
#include "node/spool/spool.h"
#include "tests/testing/metrics_text.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

// Hands out the events it was given, once; reports the drop counts it was given.
class ListedEvents final : public EventSource {
 public:
  std::vector<v1::RuntimeEvent> events;
  std::map<std::string, uint64_t> dropped;

  void Drain(std::vector<v1::RuntimeEvent>* out) override {
    for (v1::RuntimeEvent& e : events) out->push_back(std::move(e));
    events.clear();
  }
  v1::ProbeStatus Status() const override {
    v1::ProbeStatus s;
    for (const auto& [reason, count] : dropped) (*s.mutable_dropped_events())[reason] = count;
    return s;
  }
  std::vector<int> MonitoredPids() const override { return {}; }
  void SetWakeup(std::function<void()>) override {}
};

v1::RuntimeEvent Event(int kind) {
  v1::RuntimeEvent e;
  e.set_kind(static_cast<v1::EventKind>(kind));
  return e;
}

std::map<std::string, double> Samples(const metrics::Registry& registry) {
  absl::StatusOr<std::map<std::string, double>> samples =
      testing::MetricsSampleValues(registry.Render());
  EXPECT_TRUE(samples.ok()) << samples.status();
  return samples.ok() ? *samples : std::map<std::string, double>{};
}

TEST(NodeMetricsCountsTest, EventsAreCountedByKindAsTheyAreDrained) {
  metrics::Registry registry;
  NodeMetrics m(&registry);
  EXPECT_EQ(m.Meter(nullptr), nullptr);
  ListedEvents source;
  source.events = {Event(v1::EVENT_KIND_PTRACE), Event(v1::EVENT_KIND_PTRACE),
                   Event(v1::EVENT_KIND_UNSHARE), Event(v1::EVENT_KIND_UNSPECIFIED),
                   Event(4242)};  // a kind this build does not know
  EventSource* metered = m.Meter(&source);
  ASSERT_NE(metered, nullptr);

  std::vector<v1::RuntimeEvent> out = {Event(v1::EVENT_KIND_PTRACE)};  // already there
  metered->Drain(&out);
  EXPECT_EQ(out.size(), 6u);  // every event passes through, counted or not
  std::map<std::string, double> s = Samples(registry);
  EXPECT_EQ(s["vigil_node_events_total{kind=\"ptrace\"}"], 2);
  EXPECT_EQ(s["vigil_node_events_total{kind=\"unshare\"}"], 1);
  EXPECT_EQ(s["vigil_node_events_total{kind=\"execve\"}"], 0);
  double counted = 0;
  for (const auto& [sample, value] : s) {
    if (sample.rfind("vigil_node_events_total{", 0) == 0) counted += value;
  }
  EXPECT_EQ(counted, 3);

  metered->Drain(&out);  // nothing new
  EXPECT_EQ(Samples(registry)["vigil_node_events_total{kind=\"ptrace\"}"], 2);
}

TEST(NodeMetricsCountsTest, QuotesAndSnapshotsAreTimedAndFailedQuotesCounted) {
  metrics::Registry registry;
  NodeMetrics m(&registry);
  TpmSealer::QuoteObserver quote = m.QuoteObserver();
  quote(absl::Milliseconds(2), absl::OkStatus());
  quote(absl::Milliseconds(30), absl::UnavailableError("TPM busy"));
  m.SnapshotObserver()(absl::Milliseconds(7));

  std::map<std::string, double> s = Samples(registry);
  EXPECT_EQ(s["vigil_node_quote_duration_seconds_count{}"], 2);
  EXPECT_DOUBLE_EQ(s["vigil_node_quote_duration_seconds_sum{}"], 0.032);
  EXPECT_EQ(s["vigil_node_quote_duration_seconds_bucket{le=\"0.001\"}"], 0);
  EXPECT_EQ(s["vigil_node_quote_duration_seconds_bucket{le=\"0.0025\"}"], 1);
  EXPECT_EQ(s["vigil_node_quote_duration_seconds_bucket{le=\"0.025\"}"], 1);
  EXPECT_EQ(s["vigil_node_quote_duration_seconds_bucket{le=\"0.05\"}"], 2);
  EXPECT_EQ(s["vigil_node_quote_failures_total{}"], 1);
  EXPECT_EQ(s["vigil_node_snapshot_duration_seconds_count{}"], 1);
  EXPECT_EQ(s["vigil_node_snapshot_duration_seconds_bucket{le=\"0.005\"}"], 0);
  EXPECT_EQ(s["vigil_node_snapshot_duration_seconds_bucket{le=\"0.01\"}"], 1);
}

TEST(NodeMetricsCountsTest, DropsOfTheProbesTheReportQueueAndTheSpoolAreReadAtEachScrape) {
  metrics::Registry registry;
  NodeMetrics m(&registry);
  ListedEvents probes;
  probes.dropped = {{"ringbuf_full", 3}, {"queue_full", 1}};
  // At most two events wait for a report: three of five are dropped.
  ReportBuilder builder(NodeInfo{}, nullptr, nullptr, &probes, /*max_pending_events=*/2);
  for (int i = 0; i < 5; ++i) probes.events.push_back(Event(v1::EVENT_KIND_PTRACE));
  builder.PollEvents();
  ASSERT_EQ(builder.events_dropped(), 3u);

  absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("node-metrics");
  ASSERT_TRUE(dir.ok()) << dir.status();
  // Room for two batches of 1000 payload bytes: the third drops the first, and its events.
  const uint64_t batch_bytes = spool::kBatchHeaderBytes + 1000 + spool::kBatchTrailerBytes;
  absl::StatusOr<std::unique_ptr<spool::Spool>> spool =
      spool::Spool::Open({dir->path() + "/spool", 2 * batch_bytes + 10});
  ASSERT_TRUE(spool.ok()) << spool.status();
  for (uint32_t events : {4u, 5u, 6u}) {
    ASSERT_TRUE((*spool)->Append(1, 1, events, std::string(1000, 'x')).ok());
  }

  m.WatchLosses(&probes, &builder);
  m.WatchSpool(spool->get());
  std::map<std::string, double> s = Samples(registry);
  EXPECT_EQ(s["vigil_node_events_dropped_total{reason=\"ringbuf_full\"}"], 3);
  EXPECT_EQ(s["vigil_node_events_dropped_total{reason=\"queue_full\"}"], 1);
  EXPECT_EQ(s["vigil_node_events_dropped_total{reason=\"report_queue_full\"}"], 3);
  EXPECT_EQ(s["vigil_node_events_dropped_total{reason=\"spool_full\"}"], 4);
  EXPECT_EQ(s["vigil_node_spool_batches_dropped_total{reason=\"spool_full\"}"], 1);
  EXPECT_EQ(s["vigil_node_spool_batches_dropped_total{reason=\"refused\"}"], 0);
  EXPECT_EQ(s["vigil_node_spool_batches{}"], 2);
  EXPECT_EQ(s["vigil_node_spool_bytes{}"], 2 * batch_bytes);

  probes.dropped["ringbuf_full"] = 8;
  ASSERT_TRUE((*spool)->SetAside((*spool)->Oldest().value(), "refused by the verifier").ok());
  s = Samples(registry);
  EXPECT_EQ(s["vigil_node_events_dropped_total{reason=\"ringbuf_full\"}"], 8);
  EXPECT_EQ(s["vigil_node_spool_batches_dropped_total{reason=\"refused\"}"], 1);
  EXPECT_EQ(s["vigil_node_spool_batches{}"], 1);
  EXPECT_EQ(s["vigil_node_spool_bytes{}"], batch_bytes);
}

TEST(NodeMetricsCountsTest, ProcessSnapshotsLeftOutOfAReportAreCounted) {
  metrics::Registry registry;
  NodeMetrics m(&registry);
  ProcessMatcher matcher({*ParseSelector("pid=" + std::to_string(getpid()))});
  FileHashCache hashes;
  Snapshotter snapshotter(SnapshotOptions{}, &hashes);
  ReportBuilder builder(NodeInfo{}, &matcher, &snapshotter, nullptr);
  m.WatchLosses(nullptr, &builder);
  EXPECT_EQ(Samples(registry)["vigil_node_report_processes_left_out_total{}"], 0);

  // Room for the node fields only: this process's snapshot is left out, and the gap says so.
  v1::RuntimeReport report = builder.Build(/*max_payload_bytes=*/1);
  EXPECT_EQ(report.processes_size(), 0);
  ASSERT_EQ(report.observation_gaps_size(), 1);
  EXPECT_EQ(Samples(registry)["vigil_node_report_processes_left_out_total{}"], 1);
  builder.Build(1 << 20);  // fits
  EXPECT_EQ(Samples(registry)["vigil_node_report_processes_left_out_total{}"], 1);
}

}  // namespace
}  // namespace vigil::node
