#include "common/metrics/metrics_server.h"

#include <httplib.h>

#include "absl/strings/str_cat.h"

namespace vigil::metrics {

absl::StatusOr<std::unique_ptr<HttpListener>> StartMetricsServer(const std::string& address,
                                                                 const Registry* registry) {
  auto server = std::make_unique<httplib::Server>();
  server->set_payload_max_length(4096);
  server->set_read_timeout(5, 0);
  server->set_write_timeout(5, 0);
  server->Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  return HttpListener::Start(std::move(server), address, "metrics");
}

std::string MetricsUrl(const std::string& address, int port) {
  return absl::StrCat("http://", address.substr(0, address.rfind(':')), ":", port, "/metrics");
}

}  // namespace vigil::metrics
