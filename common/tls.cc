#include "common/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/conf.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/openssl_util.h"
#include "common/pki.h"
#include "common/status_macros.h"

namespace vigil {
namespace {

// An OpenSSL configuration whose "vigil" application section loads the ssl_conf module with
// a system_default section: OpenSSL applies it to every SSL_CTX created afterwards.
// "Protocol = -ALL, TLSv1.3" switches off every version but TLS 1.3 as context options,
// which survive the minimum/maximum version gRPC sets on its contexts.
constexpr char kTls13OnlyConfig[] =
    "vigil = vigil_init\n"
    "[vigil_init]\n"
    "ssl_conf = vigil_ssl\n"
    "[vigil_ssl]\n"
    "system_default = vigil_tls\n"
    "[vigil_tls]\n"
    "Protocol = -ALL, TLSv1.3\n";

using ConfPtr = OpenSslPtr<CONF, NCONF_free>;

absl::Status ApplyTls13OnlyConfig() {
  if (OPENSSL_init_ssl(0, nullptr) != 1) return OpenSslError("OpenSSL initialisation failed");
  ConfPtr conf(NCONF_new(nullptr));
  BioPtr bio = MemBioOver(kTls13OnlyConfig);
  long error_line = 0;
  if (conf == nullptr || bio == nullptr ||
      NCONF_load_bio(conf.get(), bio.get(), &error_line) <= 0) {
    return OpenSslError("cannot parse the TLS 1.3 policy");
  }
  if (CONF_modules_load(conf.get(), "vigil", 0) <= 0) {
    return OpenSslError("OpenSSL refused the TLS 1.3 policy");
  }
  // Prove the policy reaches a new context even after gRPC-style version bounds are set.
  SslCtxPtr probe(SSL_CTX_new(TLS_method()));
  if (probe == nullptr) return OpenSslError("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(probe.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(probe.get(), TLS1_3_VERSION);
  const uint64_t options = SSL_CTX_get_options(probe.get());
  if ((options & SSL_OP_NO_TLSv1_2) == 0 || (options & SSL_OP_NO_TLSv1_3) != 0) {
    return absl::InternalError("OpenSSL did not apply the TLS 1.3 policy to new contexts");
  }
  return absl::OkStatus();
}

unsigned int RefreshSeconds(absl::Duration interval) {
  int64_t seconds = absl::ToInt64Seconds(absl::Ceil(interval, absl::Seconds(1)));
  return static_cast<unsigned int>(std::clamp<int64_t>(seconds, 1, 24 * 3600));
}

absl::Status Named(const std::string& path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

}  // namespace

absl::Status EnforceTls13Only() {
  static std::once_flag once;
  static absl::Status* result = nullptr;
  std::call_once(once, [] { result = new absl::Status(ApplyTls13OnlyConfig()); });
  return *result;
}

absl::Status CheckTlsFiles(const TlsFiles& files) {
  for (const auto& [path, what] :
       {std::pair{files.ca_cert_path, "CA certificate"}, std::pair{files.cert_path, "certificate"},
        std::pair{files.key_path, "private key"}}) {
    if (path.empty()) return absl::InvalidArgumentError(absl::StrCat("no ", what, " file given"));
  }
  ASSIGN_OR_RETURN(std::string ca_pem, ReadFileToString(files.ca_cert_path));
  ASSIGN_OR_RETURN(std::string cert_pem, ReadFileToString(files.cert_path));
  ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(files.key_path));
  absl::StatusOr<X509Ptr> ca = CertificateFromPem(ca_pem);
  if (!ca.ok()) return Named(files.ca_cert_path, ca.status());
  absl::StatusOr<X509Ptr> cert = CertificateFromPem(cert_pem);
  if (!cert.ok()) return Named(files.cert_path, cert.status());
  absl::StatusOr<EvpPkeyPtr> key = PrivateKeyFromPem(key_pem);
  if (!key.ok()) return Named(files.key_path, key.status());
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError(
        absl::StrCat(files.key_path, ": does not match ", files.cert_path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeMutualTlsChannelCredentials(
    const TlsFiles& files) {
  RETURN_IF_ERROR(EnforceTls13Only());
  RETURN_IF_ERROR(CheckTlsFiles(files));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          files.key_path, files.cert_path, files.ca_cert_path,
          RefreshSeconds(files.refresh_interval)));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // Server certificate verification against the watched CA and the target host name stay
  // on (gRPC's defaults for TLS channel credentials).
  options.set_verify_server_certs(true);
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::TlsCredentials(options);
  if (creds == nullptr) return absl::InternalError("gRPC refused the TLS channel credentials");
  return creds;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeTlsServerCredentials(
    const TlsFiles& files, ClientCertificates client_certificates) {
  RETURN_IF_ERROR(EnforceTls13Only());
  RETURN_IF_ERROR(CheckTlsFiles(files));
  const bool mutual = client_certificates == ClientCertificates::kRequiredAndVerified;
  const unsigned int refresh = RefreshSeconds(files.refresh_interval);
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider =
      mutual ? std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                   files.key_path, files.cert_path, files.ca_cert_path, refresh)
             : std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                   files.key_path, files.cert_path, refresh);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (mutual) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::experimental::TlsServerCredentials(options);
  if (creds == nullptr) return absl::InternalError("gRPC refused the TLS server credentials");
  return creds;
}

}  // namespace vigil
