// The real vigil-verifier with --metrics-address, a real node on swtpm reporting to it: what
// a Prometheus scrape reads (through the reference parser) follows what the fabric did.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/metrics_text.h"
#include "tests/testing/reserved_port.h"

namespace vigil {
namespace {

using testing::Fabric;

TEST(VerifierMetricsTest, AScrapeCountsTheNodesReportsVerdictsAndStream) {
  Fabric::Options options;
  // A webhook target nobody listens on: its delivery counters are exported too.
  absl::StatusOr<testing::ReservedPort> hook = testing::ReservedPort::Create();
  ASSERT_TRUE(hook.ok()) << hook.status();
  options.verifier_args = {"--metrics-address", "127.0.0.1:0", "--webhook",
                           absl::StrCat("http://", hook->address(), "/hook")};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  // The port the verifier bound, from its log line (written right after the gRPC listener
  // the fixture waited for).
  absl::StatusOr<int> port = testing::AwaitMetricsPort([&] { return f.Logs(); });
  ASSERT_TRUE(port.ok()) << port.status() << f.Logs();

  // Before any node: the families exist, with nothing counted.
  absl::StatusOr<std::map<std::string, double>> before = testing::ScrapeMetrics(*port);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->at("vigil_verifier_reports_total{}"), 0);
  EXPECT_EQ(before->at("vigil_verifier_attest_streams{}"), 0);
  EXPECT_EQ(before->at("vigil_verifier_verdicts_total{status=\"affirming\"}"), 0);
  EXPECT_EQ(before->at("vigil_verifier_spool_batches_total{status=\"affirming\"}"), 0);
  EXPECT_EQ(before->at("vigil_verifier_appraisal_duration_seconds_count{}"), 0);
  EXPECT_EQ(before->at("vigil_verifier_attest_refusals_total{limit=\"evidence_rate\"}"), 0);
  EXPECT_EQ(before->at("vigil_verifier_enrollments_pending{}"), 0);
  EXPECT_EQ(before->at("vigil_verifier_webhook_deliveries_total{target=\"0\"}"), 0);

  // Every metric the shipped Grafana dashboard queries is one the verifier serves.
  absl::StatusOr<size_t> queried =
      testing::CheckDashboardQueriesServed("deploy/grafana/vigil-verifier.json", *before);
  ASSERT_TRUE(queried.ok()) << queried.status();
  EXPECT_GE(*queried, 10u);

  ASSERT_TRUE(f.StartNode().ok());
  ASSERT_TRUE(f.AwaitVerdict(v1::TRUST_AFFIRMING).ok()) << f.Logs();

  // The verdict is listed once the store committed it; its durable-write time is observed
  // when the node's state commit (which the acknowledgement also waits for) is done too, a
  // moment later.
  absl::StatusOr<std::map<std::string, double>> after = testing::ScrapeMetrics(*port);
  ASSERT_TRUE(after.ok()) << after.status();
  for (int i = 0; i < 100 && after->at("vigil_verifier_store_write_duration_seconds_count{}") < 1;
       ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    after = testing::ScrapeMetrics(*port);
    ASSERT_TRUE(after.ok()) << after.status();
  }
  const std::map<std::string, double>& m = *after;
  const double reports = m.at("vigil_verifier_reports_total{}");
  EXPECT_GE(reports, 1);
  EXPECT_GE(m.at("vigil_verifier_verdicts_total{status=\"affirming\"}"), 1);
  EXPECT_EQ(m.at("vigil_verifier_verdicts_total{status=\"rejected\"}"), 0);
  // Live evidence only: no outage, no spooled batch.
  EXPECT_EQ(m.at("vigil_verifier_spool_batches_total{status=\"affirming\"}"), 0);
  EXPECT_EQ(m.at("vigil_verifier_attest_streams{}"), 1);
  // Every appraisal was timed, and every verdict went through the durable store write.
  EXPECT_EQ(m.at("vigil_verifier_appraisal_duration_seconds_count{}"), reports);
  EXPECT_GE(m.at("vigil_verifier_store_write_duration_seconds_count{}"), 1);
  EXPECT_EQ(m.at("vigil_verifier_store_write_failures_total{}"), 0);
  EXPECT_EQ(m.at("vigil_verifier_attest_refusals_total{limit=\"max_streams\"}"), 0);

  ASSERT_TRUE(f.StopNode().ok());
  // The stream is gone once the verifier saw the node leave.
  double streams = 1;
  for (int i = 0; i < 100 && streams != 0; ++i) {
    absl::StatusOr<std::map<std::string, double>> now = testing::ScrapeMetrics(*port);
    ASSERT_TRUE(now.ok()) << now.status();
    streams = now->at("vigil_verifier_attest_streams{}");
    if (streams != 0) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(streams, 0);
}

}  // namespace
}  // namespace vigil
