#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/keepalive.h"
#include "common/tls.h"
#include "verifier/config.h"

namespace vigil::verifier {

/// The verifier's TLS files named by `config` (after ResolvePkiDir), checked: readable, PEM,
/// and the key matches the certificate. Errors name the file.
absl::StatusOr<TlsFiles> ServerTlsFiles(const VerifierConfig& config);

/// Fills ca_cert_path, cert_path, key_path and trust_domain from config.pki_dir where they
/// are empty. Fails when trust-domain cannot be read.
absl::Status ResolvePkiDir(VerifierConfig& config);

/// What a VerifierServer serves.
struct ServerOptions {
  /// The mutual-TLS listener, e.g. "127.0.0.1:7443" ("host:0" picks a free port).
  std::string listen_address = "127.0.0.1:7443";
  /// The server-authenticated enrollment listener; empty means none.
  std::string enroll_listen_address;
  /// The verifier's certificate and key (both listeners) and the CA client certificates on
  /// the mutual-TLS listener must chain to. Re-read every tls.refresh_interval: a renewed
  /// certificate written to disk is served from the next handshake on.
  TlsFiles tls;
  /// Upper bound on any message received or sent on the mutual-TLS listener.
  size_t max_message_bytes = 4 << 20;
  /// Upper bound on any message received or sent on the enrollment listener, which answers
  /// callers without a certificate: small, so an unauthenticated peer cannot make the
  /// verifier buffer large messages.
  size_t enroll_max_message_bytes = kDefaultEnrollMaxMessageBytes;
  /// HTTP/2 keepalive on both listeners: a peer that stops answering pings has its
  /// connection closed, which ends its calls (an Attest stream's node is then marked
  /// disconnected).
  ServerKeepaliveOptions keepalive;
  /// Services on the mutual-TLS listener (not owned; must outlive the server). Each service
  /// checks the caller's role with RequireRole (verifier/peer_identity.h).
  std::vector<grpc::Service*> services;
  /// Services on the enrollment listener (not owned), reachable without a client certificate.
  std::vector<grpc::Service*> enroll_services;
};

/// The verifier's gRPC servers: the mutual-TLS listener with `services`, gRPC health
/// (grpc.health.v1) and server reflection, and optionally the enrollment listener with
/// `enroll_services` and health only (reflection would describe every service to callers
/// without a certificate). Both listeners are TLS 1.3 only (EnforceTls13Only).
class VerifierServer {
 public:
  /// Binds and starts both listeners. Fails when an address cannot be bound or the TLS
  /// material is unusable.
  static absl::StatusOr<std::unique_ptr<VerifierServer>> Start(const ServerOptions& options);

  /// Shuts down (at once) if Shutdown was not called.
  ~VerifierServer();

  VerifierServer(const VerifierServer&) = delete;
  VerifierServer& operator=(const VerifierServer&) = delete;

  /// The bound port of the mutual-TLS listener.
  int port() const { return port_; }
  /// The bound port of the enrollment listener, 0 when there is none.
  int enroll_port() const { return enroll_port_; }

  /// Stops accepting calls, marks health NOT_SERVING, lets in-flight calls finish until
  /// `deadline` and then cancels the rest. Returns when both servers are down. Idempotent.
  /// Streams that never end by themselves (Attest) should be told to finish first
  /// (AttestationService::CloseStreams).
  void Shutdown(absl::Time deadline);

 private:
  VerifierServer() = default;

  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> enroll_server_;
  int port_ = 0;
  int enroll_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace vigil::verifier
