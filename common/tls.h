#pragma once

// Vigil's TLS channel: TLS 1.3 only, certificates read from files and re-read while the
// process runs (gRPC's TLS credentials API with a file-watching certificate provider), so a
// certificate renewed on disk is used by new connections without a restart.

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vigil {

/// How often certificate files are re-read by default.
inline constexpr absl::Duration kDefaultTlsRefreshInterval = absl::Minutes(1);

/// The PEM files one side of a Vigil TLS connection uses.
struct TlsFiles {
  /// The Vigil CA: the peer's certificate must chain to it.
  std::string ca_cert_path;
  /// This side's certificate (optionally followed by intermediates) and its private key.
  std::string cert_path;
  std::string key_path;
  /// How often the three files are re-read; a changed file is used from the next handshake.
  /// gRPC counts whole seconds: shorter intervals are rounded up to one second.
  absl::Duration refresh_interval = kDefaultTlsRefreshInterval;
};

/// Makes every TLS context this process creates from now on refuse TLS 1.2 and below, through
/// OpenSSL's own configuration mechanism (the ssl_conf module's system_default section, which
/// OpenSSL applies to each new SSL_CTX). gRPC 1.51 has no TLS-version setting for its TLS
/// credentials API; it uses the same OpenSSL (a configure-time check makes sure), sets
/// minimum and maximum versions that this policy narrows, and never re-enables a version
/// that is switched off. Idempotent and thread-safe; every credentials factory below calls
/// it first. Fails only when OpenSSL refuses the policy.
absl::Status EnforceTls13Only();

/// Checks that `files` name a readable CA certificate, certificate and key, and that the
/// key belongs to the certificate. Errors name the file. The file-watching provider only
/// logs unusable files, so factories check first to fail with the file named.
absl::Status CheckTlsFiles(const TlsFiles& files);

/// Mutual-TLS channel credentials: the server must present a certificate from the CA in
/// `files` valid for the target host name; this side presents the certificate and key in
/// `files`. All three files are watched.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeMutualTlsChannelCredentials(
    const TlsFiles& files);

/// Which client certificates a server asks for.
enum class ClientCertificates {
  /// None: the enrollment listener, where nodes have no certificate yet.
  kNotRequested,
  /// Required, and verified against the CA in TlsFiles: the mutual-TLS listener.
  kRequiredAndVerified,
};

/// Server credentials presenting the certificate and key in `files` (watched). With
/// kRequiredAndVerified the CA file is watched too and every client must present a
/// certificate that chains to it.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeTlsServerCredentials(
    const TlsFiles& files, ClientCertificates client_certificates);

}  // namespace vigil
