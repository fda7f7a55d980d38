#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/http/http_listener.h"
#include "verifier/admission_review.h"

namespace vigil::verifier {

/// The Kubernetes admission webhook's HTTPS listener (docs/admission.md).
struct AdmissionServerOptions {
  /// host:port to listen on (port 0 picks one; see AdmissionServer::port).
  std::string address;
  /// The server certificate chain and key (PEM) the API server checks against the
  /// webhook configuration's caBundle.
  std::string cert_path;
  std::string key_path;
  /// When set, callers must present a client certificate chaining to this CA (PEM): the API
  /// server's, configured in its AdmissionConfiguration kubeconfig.
  std::string client_ca_path;
  /// Larger request bodies are refused (413) unread.
  size_t max_body_bytes = 4 << 20;
  AdmissionReviewOptions review;
};

/// Serves POST /validate (AdmissionReview v1, application/json) and GET /healthz over TLS
/// 1.2 or 1.3, on a thread pool of its own, until destroyed. Read-only: it answers from the
/// Fleet API's results and changes nothing.
class AdmissionServer {
 public:
  /// The path the ValidatingWebhookConfiguration's clientConfig names.
  static constexpr char kPath[] = "/validate";

  /// Binds and starts serving. INVALID_ARGUMENT for a malformed address; FAILED_PRECONDITION
  /// naming the file when the certificate, key or client CA cannot be loaded; UNAVAILABLE
  /// when the address cannot be bound. `fleet` must outlive the server.
  static absl::StatusOr<std::unique_ptr<AdmissionServer>> Start(
      const AdmissionServerOptions& options, const FleetService* fleet);
  ~AdmissionServer();

  AdmissionServer(const AdmissionServer&) = delete;
  AdmissionServer& operator=(const AdmissionServer&) = delete;

  /// The bound port.
  int port() const { return listener_->port(); }

 private:
  AdmissionServer(const FleetService* fleet, const AdmissionServerOptions& options);

  AdmissionReviewer reviewer_;
  std::unique_ptr<HttpListener> listener_;  // destroyed first: stops serving the reviewer
};

}  // namespace vigil::verifier
