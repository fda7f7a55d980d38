#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace httplib {
class SSLServer;
}

namespace vigil {

/// The files an HTTPS listener serves with.
struct TlsListenerFiles {
  /// The certificate chain and its private key (PEM).
  std::string cert_path;
  std::string key_path;
  /// When set, the CA (PEM) client certificates must chain to; the server asks for one.
  std::string client_ca_path;
  /// Whether a client certificate is required (true) or optional (false) with client_ca_path.
  bool require_client_certificate = true;
};

/// An httplib::SSLServer (routes not set) whose context has TLS 1.2 at least, no compression
/// or renegotiation, the certificate and key (checked against each other) and the client CA.
/// FAILED_PRECONDITION naming the file and the listener (`what`, e.g. "admission") when one
/// cannot be loaded.
absl::StatusOr<std::unique_ptr<httplib::SSLServer>> MakeTlsServer(const TlsListenerFiles& files,
                                                                  std::string_view what);

}  // namespace vigil
