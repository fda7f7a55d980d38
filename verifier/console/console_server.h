#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/console_token.h"
#include "common/http/http_listener.h"
#include "verifier/console/console_events.h"
#include "verifier/console/console_sessions.h"
#include "verifier/fleet_service.h"

namespace vigil::verifier::console {

/// The web console's HTTPS listener (docs/console.md).
struct ConsoleServerOptions {
  /// host:port to listen on (port 0 picks one; see ConsoleServer::port).
  std::string address;
  /// The listener's certificate chain and key (PEM).
  std::string cert_path;
  std::string key_path;
  /// The CA (PEM) operator and auditor client certificates chain to: a browser may present
  /// one, and sign-in tokens must carry one.
  std::string client_ca_path;
  /// The SPIFFE trust domain of those certificates.
  std::string trust_domain;
  Sessions::Options sessions;
  /// Live event streams at once; more are answered 503.
  size_t max_streams = 16;
  /// How often an idle event stream gets a keep-alive comment.
  absl::Duration keepalive = absl::Seconds(15);
  /// Verdicts the node timeline shows.
  uint32_t history_size = 50;
};

/// Serves the read-only console over TLS 1.2+: the page and its assets (embedded), the
/// JSON it reads (fleet table, node detail with verdict history, who is signed in), the
/// status changes as server-sent events, and the OSCAL export; the only POST exchanges a
/// sign-in token for a session cookie. Every response carries a strict content security
/// policy. Runs on a thread pool of its own until destroyed.
class ConsoleServer {
 public:
  /// Binds and starts serving. INVALID_ARGUMENT for a malformed address; FAILED_PRECONDITION
  /// naming the file when the certificate, key or client CA cannot be loaded; UNAVAILABLE
  /// when the address cannot be bound. `fleet` and `store` must outlive the server.
  static absl::StatusOr<std::unique_ptr<ConsoleServer>> Start(const ConsoleServerOptions& options,
                                                              const FleetService* fleet,
                                                              Store* store);
  /// Ends the event streams, then stops the listener.
  ~ConsoleServer();

  ConsoleServer(const ConsoleServer&) = delete;
  ConsoleServer& operator=(const ConsoleServer&) = delete;

  int port() const { return listener_->port(); }

 private:
  class Routes;

  ConsoleServer(const ConsoleServerOptions& options, ConsoleTokenVerifier tokens,
                const FleetService* fleet, Store* store);

  const ConsoleServerOptions options_;
  const ConsoleTokenVerifier tokens_;
  const FleetService* const fleet_;
  Sessions sessions_;
  Events events_;
  std::unique_ptr<Routes> routes_;
  std::unique_ptr<HttpListener> listener_;  // destroyed first: stops calling routes_
};

}  // namespace vigil::verifier::console
