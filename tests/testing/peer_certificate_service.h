#pragma once

// A Fleet service for TLS tests: ListNodes answers one NodeSummary whose hostname is the PEM
// certificate the caller presented on this connection (empty without one). No role check.
//
//   PeerCertificateService peer;   options.services.push_back(&peer);
//   absl::StatusOr<std::string> pem = PresentedCertificate(channel);

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil::testing {

class PeerCertificateService final : public v1::Fleet::CallbackService {
 public:
  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* context,
                                      const v1::ListNodesRequest* request,
                                      v1::ListNodesResponse* response) override;
};

/// Calls PeerCertificateService over `channel`: the certificate the channel presented.
absl::StatusOr<std::string> PresentedCertificate(const std::shared_ptr<grpc::Channel>& channel);

}  // namespace vigil::testing
