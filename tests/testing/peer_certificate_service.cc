#include "tests/testing/peer_certificate_service.h"

#include <grpc/grpc_security_constants.h>

#include <chrono>

namespace vigil::testing {

grpc::ServerUnaryReactor* PeerCertificateService::ListNodes(grpc::CallbackServerContext* context,
                                                            const v1::ListNodesRequest*,
                                                            v1::ListNodesResponse* response) {
  std::string pem;
  if (std::shared_ptr<const grpc::AuthContext> auth = context->auth_context(); auth != nullptr) {
    for (const grpc::string_ref& value :
         auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
      pem.assign(value.data(), value.size());
    }
  }
  response->add_nodes()->set_hostname(std::move(pem));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

absl::StatusOr<std::string> PresentedCertificate(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Fleet::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ListNodesResponse response;
  grpc::Status s = stub->ListNodes(&ctx, v1::ListNodesRequest(), &response);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  if (response.nodes_size() != 1) return absl::InternalError("no peer certificate answer");
  return response.nodes(0).hostname();
}

}  // namespace vigil::testing
