#include "verifier/admission_server.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/server_tls.h"

namespace vigil::verifier {

AdmissionServer::AdmissionServer(const FleetService* fleet, const AdmissionServerOptions& options)
    : reviewer_(fleet, options.review) {}

absl::StatusOr<std::unique_ptr<AdmissionServer>> AdmissionServer::Start(
    const AdmissionServerOptions& options, const FleetService* fleet) {
  if (absl::StatusOr<HostPort> address = ParseHostPort(options.address, "admission listener");
      !address.ok()) {
    return address.status();
  }
  std::unique_ptr<AdmissionServer> self(new AdmissionServer(fleet, options));
  absl::StatusOr<std::unique_ptr<httplib::SSLServer>> server = MakeTlsServer(
      TlsListenerFiles{options.cert_path, options.key_path, options.client_ca_path, true},
      "admission");
  if (!server.ok()) return server.status();
  (*server)->set_payload_max_length(options.max_body_bytes);
  (*server)->set_read_timeout(10, 0);
  (*server)->set_write_timeout(10, 0);
  AdmissionReviewer* reviewer = &self->reviewer_;
  (*server)->Post(kPath, [reviewer](const httplib::Request& req, httplib::Response& res) {
    const std::string type = req.get_header_value("Content-Type");
    if (!absl::StartsWithIgnoreCase(type, "application/json")) {
      res.status = 415;
      res.set_content("the AdmissionReview must be sent as application/json\n",
                      "text/plain; charset=utf-8");
      return;
    }
    AdmissionHttpResponse answer = reviewer->Review(req.body, absl::Now());
    if (answer.http_status != 200) {
      spdlog::warn("admission webhook: refused a request from {}: {}", req.remote_addr,
                   answer.body.substr(0, answer.body.find('\n')));
    }
    res.status = answer.http_status;
    res.set_content(std::move(answer.body), answer.content_type);
  });
  (*server)->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain; charset=utf-8");
  });
  absl::StatusOr<std::unique_ptr<HttpListener>> listener =
      HttpListener::Start(*std::move(server), options.address, "the admission webhook");
  if (!listener.ok()) return listener.status();
  self->listener_ = *std::move(listener);
  return self;
}

AdmissionServer::~AdmissionServer() = default;

}  // namespace vigil::verifier
