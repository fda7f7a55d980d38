// The metrics registry's text exposition, read back by the reference parser
// (python3-prometheus-client), and the plain-HTTP listener that serves it.

#include "common/metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/metrics/metrics_server.h"
#include "tests/testing/metrics_text.h"

namespace vigil::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> ParsedSamples(const std::string& text) {
  absl::StatusOr<std::vector<std::string>> lines = testing::ParseMetricsText(text);
  EXPECT_TRUE(lines.ok()) << lines.status() << "\n" << text;
  return lines.ok() ? *lines : std::vector<std::string>();
}

TEST(MetricsRegistryTest, TheReferenceParserReadsEveryKindOfSeries) {
  Registry registry;
  Counter* affirming =
      registry.AddCounter("vigil_test_verdicts_total", "Verdicts.", {{"status", "affirming"}});
  Counter* rejected =
      registry.AddCounter("vigil_test_verdicts_total", "Verdicts.", {{"status", "rejected"}});
  ASSERT_NE(affirming, nullptr);
  ASSERT_NE(rejected, nullptr);
  affirming->Increment(3);
  rejected->Increment();
  ASSERT_TRUE(registry.AddGaugeFunc("vigil_test_streams", "Open \"streams\"\nnow.", {},
                                    [] { return 7.0; }));
  ASSERT_TRUE(registry.AddCounterFunc("vigil_test_refusals_total", "Refusals.",
                                      {{"limit", "a \"quoted\\ value\nwith a newline"}},
                                      [] { return 2.0; }));
  Histogram* latency = registry.AddHistogram("vigil_test_duration_seconds", "Latency.",
                                             {0.001, 0.01, 0.1}, {{"kind", "quote"}});
  ASSERT_NE(latency, nullptr);
  latency->Observe(0.0005);
  latency->Observe(0.005);
  latency->ObserveDuration(absl::Milliseconds(50));
  latency->Observe(3);

  EXPECT_THAT(
      ParsedSamples(registry.Render()),
      ElementsAre(
          R"(vigil_test_duration_seconds_bucket{kind="quote",le="+Inf"} 4.0 histogram)",
          R"(vigil_test_duration_seconds_bucket{kind="quote",le="0.001"} 1.0 histogram)",
          R"(vigil_test_duration_seconds_bucket{kind="quote",le="0.01"} 2.0 histogram)",
          R"(vigil_test_duration_seconds_bucket{kind="quote",le="0.1"} 3.0 histogram)",
          R"(vigil_test_duration_seconds_count{kind="quote"} 4.0 histogram)",
          R"(vigil_test_duration_seconds_sum{kind="quote"} 3.0555 histogram)",
          R"(vigil_test_refusals_total{limit="a \"quoted\\ value\nwith a newline"} 2.0 counter)",
          R"(vigil_test_streams{} 7.0 gauge)",
          R"(vigil_test_verdicts_total{status="affirming"} 3.0 counter)",
          R"(vigil_test_verdicts_total{status="rejected"} 1.0 counter)"));
}

TEST(MetricsRegistryTest, RefusesBadNamesConflictingTypesAndDuplicateSeries) {
  Registry registry;
  EXPECT_EQ(registry.AddCounter("9starts_with_a_digit_total", "x"), nullptr);
  EXPECT_EQ(registry.AddCounter("has-dash_total", "x"), nullptr);
  EXPECT_EQ(registry.AddCounter("ok_total", "x", {{"__reserved", "v"}}), nullptr);
  EXPECT_EQ(registry.AddCounter("ok_total", "x", {{"bad-label", "v"}}), nullptr);
  EXPECT_EQ(registry.AddHistogram("h_seconds", "x", {1, 1}), nullptr);
  EXPECT_EQ(registry.AddHistogram("h_seconds", "x", {1, 2}, {{"le", "3"}}), nullptr);
  ASSERT_NE(registry.AddCounter("ok_total", "x", {{"a", "1"}}), nullptr);
  EXPECT_EQ(registry.AddCounter("ok_total", "x", {{"a", "1"}}), nullptr);
  EXPECT_FALSE(registry.AddGaugeFunc("ok_total", "x", {{"a", "2"}}, [] { return 0.0; }));
  EXPECT_TRUE(ValidMetricName("vigil:recorded_rule"));
  EXPECT_FALSE(ValidLabelName("with:colon"));
}

TEST(MetricsRegistryTest, EnumNamesBecomeLowerCaseLabelValues) {
  EXPECT_EQ(EnumLabelValue("TRUST_AFFIRMING", "TRUST_"), "affirming");
  EXPECT_EQ(EnumLabelValue("EVENT_KIND_PROCESS_VM_READV", "EVENT_KIND_"), "process_vm_readv");
  EXPECT_EQ(EnumLabelValue("NONCE_EXPIRED", ""), "nonce_expired");
  EXPECT_EQ(EnumLabelValue("OTHER_PREFIX", "TRUST_"), "other_prefix");
}

TEST(MetricsServerTest, UrlNamesTheGivenHostAndTheBoundPort) {
  EXPECT_EQ(MetricsUrl("127.0.0.1:0", 41234), "http://127.0.0.1:41234/metrics");
  EXPECT_EQ(MetricsUrl("[::1]:9464", 9464), "http://[::1]:9464/metrics");
}

TEST(MetricsServerTest, ServesTheRegistryAtSlashMetricsOnly) {
  Registry registry;
  Counter* c = registry.AddCounter("vigil_test_scrapes_total", "Scrapes.");
  ASSERT_NE(c, nullptr);
  absl::StatusOr<std::unique_ptr<HttpListener>> listener =
      StartMetricsServer("127.0.0.1:0", &registry);
  ASSERT_TRUE(listener.ok()) << listener.status();
  httplib::Client client("127.0.0.1", (*listener)->port());
  c->Increment(5);
  httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->get_header_value("Content-Type"), HasSubstr("version=0.0.4"));
  EXPECT_THAT(ParsedSamples(metrics->body),
              ElementsAre(R"(vigil_test_scrapes_total{} 5.0 counter)"));
  httplib::Result other = client.Get("/");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);

  EXPECT_EQ(StartMetricsServer("nonsense", &registry).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StartMetricsServer(absl::StrCat("127.0.0.1:", (*listener)->port()), &registry)
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace vigil::metrics
