#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

namespace vigil {

/// The files an HTTPS listener serves with.
struct ServerTlsFiles {
  /// The certificate chain and its private key (PEM).
  std::string cert_path;
  std::string key_path;
  /// When set, the CA (PEM) client certificates must chain to; the server asks for one.
  std::string client_ca_path;
  /// Whether a client certificate is required (true) or optional (false) with client_ca_path.
  bool require_client_certificate = true;
};

/// Sets up an httplib::SSLServer's context: TLS 1.2 at least, no compression or
/// renegotiation, the certificate and key (checked against each other), and the client CA.
/// Returns what failed, naming the file and the listener (`what`, e.g. "admission"); ""
/// on success.
std::string SetUpServerTls(const ServerTlsFiles& files, std::string_view what, SSL_CTX* ctx);

}  // namespace vigil
