#pragma once

// Prometheus text exposition read back by the reference parser (python3-prometheus-client,
// tests/common/metrics/parse_metrics.py), for tests of what Vigil's metrics listeners serve.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vigil::testing {

/// One line per sample as the reference parser reads `text`, sorted:
/// `name{label="value",...} value type`, label values JSON-quoted. An error carrying the
/// parser's message when the text does not parse or breaks a naming convention.
absl::StatusOr<std::vector<std::string>> ParseMetricsText(const std::string& text);

/// The same samples as `name{labels}` -> value.
absl::StatusOr<std::map<std::string, double>> MetricsSampleValues(const std::string& text);

/// GET http://127.0.0.1:`port`/metrics, read by MetricsSampleValues.
absl::StatusOr<std::map<std::string, double>> ScrapeMetrics(int port);

/// The port of the last "metrics on http://127.0.0.1:PORT/metrics" line in `logs()`, polled
/// until one is there (up to 60 s: a node logs it after enrollment and its first
/// measurements).
absl::StatusOr<int> AwaitMetricsPort(const std::function<std::string()>& logs);

/// Checks that every vigil_* metric the Prometheus queries (panels[].targets[].expr) of the
/// Grafana dashboard `path` (relative to the source tree) name is served: a sample name in
/// `samples` (as MetricsSampleValues returns them). Returns how many names the queries hold;
/// an error naming each panel and metric that is not served, or when the file is no
/// dashboard.
absl::StatusOr<size_t> CheckDashboardQueriesServed(const std::string& path,
                                                   const std::map<std::string, double>& samples);

}  // namespace vigil::testing
