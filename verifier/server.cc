#include "verifier/server.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/pki.h"
#include "common/status_macros.h"

// gRPC 1.51 has no public way to pin the TLS version of server credentials:
// TlsCredentialsOptions::set_min_tls_version/set_max_tls_version arrived in later releases.
// libgrpc 1.51 does export these two setters of its SSL server credentials object (they are
// what gRPC's own tests use), so this declaration names exactly those exported, non-virtual
// member functions and nothing else of the class. If a gRPC upgrade drops them, linking
// fails loudly rather than silently allowing TLS 1.2.
class grpc_ssl_server_credentials {
 public:
  void set_min_tls_version(grpc_tls_version version);
  void set_max_tls_version(grpc_tls_version version);
};

namespace vigil::verifier {
namespace {

// grpc::ServerCredentials over a C-core grpc_server_credentials (owned).
class CoreServerCredentials final : public grpc::ServerCredentials {
 public:
  // The base constructor has initialised the gRPC library, so the C API may be used after.
  CoreServerCredentials() = default;
  ~CoreServerCredentials() override {
    if (creds_ != nullptr) grpc_server_credentials_release(creds_);
  }

  absl::Status Init(const ServerTlsMaterial& tls, bool require_client_cert) {
    grpc_ssl_pem_key_cert_pair pair{tls.private_key_pem.c_str(), tls.cert_chain_pem.c_str()};
    grpc_ssl_server_certificate_config* config = grpc_ssl_server_certificate_config_create(
        require_client_cert ? tls.ca_cert_pem.c_str() : nullptr, &pair, 1);
    grpc_ssl_server_credentials_options* options =
        grpc_ssl_server_credentials_create_options_using_config(
            require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            config);  // takes `config`
    if (options == nullptr) return absl::InvalidArgumentError("bad TLS server configuration");
    creds_ = grpc_ssl_server_credentials_create_with_options(options);  // takes `options`
    if (creds_ == nullptr) return absl::InvalidArgumentError("bad TLS server credentials");
    auto* ssl = reinterpret_cast<grpc_ssl_server_credentials*>(creds_);
    ssl->set_min_tls_version(grpc_tls_version::TLS1_3);
    ssl->set_max_tls_version(grpc_tls_version::TLS1_3);
    return absl::OkStatus();
  }

  // Vigil authorizes from the peer certificate inside each service (RequireRole), never from
  // call metadata, so an AuthMetadataProcessor is a programming error here.
  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {
    spdlog::critical("AuthMetadataProcessor is not supported on Vigil's TLS 1.3 credentials");
    std::abort();
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), creds_);
  }

  grpc_server_credentials* creds_ = nullptr;
};

absl::StatusOr<std::string> ReadNamed(const std::string& path, std::string_view what) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no ", std::string(what), " file given"));
  }
  return ReadFileToString(path);
}

absl::StatusOr<std::unique_ptr<grpc::Server>> BuildServer(
    const std::string& address, const std::shared_ptr<grpc::ServerCredentials>& creds,
    const std::vector<grpc::Service*>& services, size_t max_message_bytes, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, creds, port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(max_message_bytes));
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  return server;
}

}  // namespace

absl::Status ResolvePkiDir(VerifierConfig& config) {
  if (config.pki_dir.empty()) return absl::OkStatus();
  const std::string& dir = config.pki_dir;
  if (config.ca_cert_path.empty()) config.ca_cert_path = dir + "/ca.crt";
  if (config.cert_path.empty()) config.cert_path = dir + "/verifier.crt";
  if (config.key_path.empty()) config.key_path = dir + "/verifier.key";
  if (config.trust_domain.empty()) {
    ASSIGN_OR_RETURN(std::string td, ReadFileToString(dir + "/trust-domain"));
    config.trust_domain = std::string(absl::StripAsciiWhitespace(td));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerTlsMaterial> LoadServerTls(const VerifierConfig& config) {
  ServerTlsMaterial tls;
  ASSIGN_OR_RETURN(tls.ca_cert_pem, ReadNamed(config.ca_cert_path, "CA certificate"));
  ASSIGN_OR_RETURN(tls.cert_chain_pem, ReadNamed(config.cert_path, "server certificate"));
  ASSIGN_OR_RETURN(tls.private_key_pem, ReadNamed(config.key_path, "server key"));
  auto name = [](const std::string& path, const absl::Status& s) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  };
  absl::StatusOr<X509Ptr> ca = CertificateFromPem(tls.ca_cert_pem);
  if (!ca.ok()) return name(config.ca_cert_path, ca.status());
  absl::StatusOr<X509Ptr> cert = CertificateFromPem(tls.cert_chain_pem);
  if (!cert.ok()) return name(config.cert_path, cert.status());
  absl::StatusOr<EvpPkeyPtr> key = PrivateKeyFromPem(tls.private_key_pem);
  if (!key.ok()) return name(config.key_path, key.status());
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError(
        absl::StrCat(config.key_path, ": does not match ", config.cert_path));
  }
  return tls;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeTls13ServerCredentials(
    const ServerTlsMaterial& tls, bool require_client_cert) {
  auto creds = std::make_shared<CoreServerCredentials>();
  RETURN_IF_ERROR(creds->Init(tls, require_client_cert));
  return std::shared_ptr<grpc::ServerCredentials>(std::move(creds));
}

absl::StatusOr<std::unique_ptr<VerifierServer>> VerifierServer::Start(
    const ServerOptions& options) {
  // Process-wide switches; every server built afterwards gets health and reflection.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  std::unique_ptr<VerifierServer> self(new VerifierServer());
  ASSIGN_OR_RETURN(auto mtls, MakeTls13ServerCredentials(options.tls, true));
  ASSIGN_OR_RETURN(self->server_, BuildServer(options.listen_address, mtls, options.services,
                                              options.max_message_bytes, &self->port_));
  if (!options.enroll_listen_address.empty()) {
    ASSIGN_OR_RETURN(auto tls, MakeTls13ServerCredentials(options.tls, false));
    absl::StatusOr<std::unique_ptr<grpc::Server>> enroll =
        BuildServer(options.enroll_listen_address, tls, options.enroll_services,
                    options.max_message_bytes, &self->enroll_port_);
    if (!enroll.ok()) {
      self->Shutdown(absl::Now());
      return enroll.status();
    }
    self->enroll_server_ = *std::move(enroll);
  }
  return self;
}

VerifierServer::~VerifierServer() { Shutdown(absl::Now()); }

void VerifierServer::Shutdown(absl::Time deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  for (grpc::Server* s : {server_.get(), enroll_server_.get()}) {
    if (s == nullptr) continue;
    if (grpc::HealthCheckServiceInterface* health = s->GetHealthCheckService()) {
      health->Shutdown();
    }
  }
  // Both servers drain in parallel: Shutdown(deadline) returns once all calls are done or
  // cancelled at the deadline.
  for (grpc::Server* s : {server_.get(), enroll_server_.get()}) {
    if (s != nullptr) s->Shutdown(absl::ToChronoTime(deadline));
  }
  for (grpc::Server* s : {server_.get(), enroll_server_.get()}) {
    if (s != nullptr) s->Wait();
  }
}

}  // namespace vigil::verifier
