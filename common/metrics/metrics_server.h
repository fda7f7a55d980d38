#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/http/http_listener.h"
#include "common/metrics/metrics.h"

namespace vigil::metrics {

/// Serves `GET /metrics` (the registry in Prometheus' text format, version 0.0.4) over plain
/// HTTP on a listener of its own; every other path is 404. No authentication: metrics carry
/// no secrets, but bind it to a loopback or cluster-internal address. `registry` must
/// outlive the listener. Errors as HttpListener::Start.
absl::StatusOr<std::unique_ptr<HttpListener>> StartMetricsServer(const std::string& address,
                                                                 const Registry* registry);

/// Where a listener started on `address` (host:port, as given) and bound to `port` serves:
/// "http://host:port/metrics".
std::string MetricsUrl(const std::string& address, int port);

}  // namespace vigil::metrics
