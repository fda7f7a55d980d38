#pragma once

// Prometheus text exposition read back by the reference parser (python3-prometheus-client,
// tests/common/metrics/parse_metrics.py), for tests of what Vigil's metrics listeners serve.

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

}  // namespace vigil::testing
