#include "verifier/server.h"

#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/pki.h"
#include "common/status_macros.h"

namespace vigil::verifier {
namespace {

// gRPC's name for the server reflection plugin (ProtoServerReflectionPlugin::name()).
constexpr char kReflectionPlugin[] = "proto_server_reflection";

// The TLS frame protector's frame size on both listeners (see BuildServer).
constexpr int kTlsMaxFrameBytes = 4096;

// Serves server reflection on a builder's server, or takes it away. Loading the reflection
// library registers its plugin for every ServerBuilder in the process, so the enrollment
// listener has to remove it explicitly.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool serve) : serve_(serve) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
      return p->name() == kReflectionPlugin;
    });
    if (serve_)
      plugins->push_back(std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>());
  }

 private:
  const bool serve_;
};

absl::StatusOr<std::unique_ptr<grpc::Server>> BuildServer(
    const std::string& address, const std::shared_ptr<grpc::ServerCredentials>& creds,
    const std::vector<grpc::Service*>& services, size_t max_message_bytes,
    const ServerKeepaliveOptions& keepalive, bool reflection, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, creds, port);
  ApplyKeepalive(keepalive, builder);
  ApplyFixedFlowControl(builder);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(max_message_bytes));
  builder.SetOption(std::make_unique<ReflectionOption>(reflection));
  // Each TLS connection keeps a buffer of the largest protected frame it may send (16 KiB by
  // default). 4 KiB records hold an acknowledgement or a challenge whole and cost every
  // connected node ~8 KiB less (vigil-fleetsim's memory per idle stream, docs/fleetsim.md).
  builder.AddChannelArgument(GRPC_ARG_TSI_MAX_FRAME_SIZE, kTlsMaxFrameBytes);
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

absl::StatusOr<TlsFiles> ServerTlsFiles(const VerifierConfig& config) {
  TlsFiles files{config.ca_cert_path, config.cert_path, config.key_path,
                 config.tls_refresh_interval};
  RETURN_IF_ERROR(CheckTlsFiles(files));
  return files;
}

absl::StatusOr<std::unique_ptr<VerifierServer>> VerifierServer::Start(
    const ServerOptions& options) {
  // Process-wide switch; every server built afterwards gets health.
  grpc::EnableDefaultHealthCheckService(true);

  std::unique_ptr<VerifierServer> self(new VerifierServer());
  ASSIGN_OR_RETURN(auto mtls,
                   MakeTlsServerCredentials(options.tls, ClientCertificates::kRequiredAndVerified));
  ASSIGN_OR_RETURN(self->server_, BuildServer(options.listen_address, mtls, options.services,
                                              options.max_message_bytes, options.keepalive,
                                              /*reflection=*/true, &self->port_));
  if (!options.enroll_listen_address.empty()) {
    if (options.enroll_services.empty()) {
      self->Shutdown(absl::Now());
      return absl::InvalidArgumentError("the enrollment listener has no service to serve");
    }
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls =
        MakeTlsServerCredentials(options.tls, ClientCertificates::kNotRequested);
    absl::StatusOr<std::unique_ptr<grpc::Server>> enroll =
        tls.ok() ? BuildServer(options.enroll_listen_address, *tls, options.enroll_services,
                               options.enroll_max_message_bytes, options.keepalive,
                               /*reflection=*/false, &self->enroll_port_)
                 : tls.status();
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
