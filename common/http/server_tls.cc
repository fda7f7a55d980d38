#include "common/http/server_tls.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vigil {
namespace {

// Sets up the context; returns what failed, naming the file, or "".
std::string SetUpServerTls(const TlsListenerFiles& files, std::string_view what_view,
                           SSL_CTX* ctx) {
  const std::string what(what_view);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert_path.c_str()) != 1) {
    return absl::StrCat("cannot load the ", what, " certificate ", files.cert_path);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key_path.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return absl::StrCat("cannot load the ", what, " key ", files.key_path,
                        " (or it does not match ", files.cert_path, ")");
  }
  if (!files.client_ca_path.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_path.c_str());
    if (names == nullptr ||
        SSL_CTX_load_verify_locations(ctx, files.client_ca_path.c_str(), nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      return absl::StrCat("cannot load the ", what, " client CA ", files.client_ca_path);
    }
    // The CA names in the CertificateRequest let a browser offer only matching certificates.
    SSL_CTX_set_client_CA_list(ctx, names);
    // A client resuming a TLS session (browsers do, on every further connection) is refused
    // with "session id context uninitialized" when peers are verified and no context is set.
    const std::string context = absl::StrCat("vigil-", what);
    SSL_CTX_set_session_id_context(
        ctx, reinterpret_cast<const unsigned char*>(context.data()),
        static_cast<unsigned int>(std::min<size_t>(context.size(), SSL_MAX_SID_CTX_LENGTH)));
    SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    SSL_CTX_set_verify(ctx,
                       files.require_client_certificate
                           ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                           : SSL_VERIFY_PEER,
                       nullptr);
  }
  return "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<httplib::SSLServer>> MakeTlsServer(const TlsListenerFiles& files,
                                                                  std::string_view what) {
  std::string tls_error;
  auto server = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
    tls_error = SetUpServerTls(files, what, &ctx);
    return tls_error.empty();
  });
  if (!server->is_valid()) {
    return absl::FailedPreconditionError(
        tls_error.empty()
            ? absl::StrCat("cannot create the ", std::string(what), " listener's TLS context")
            : tls_error);
  }
  return server;
}

}  // namespace vigil
