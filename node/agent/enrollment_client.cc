#include "node/agent/enrollment_client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/enrollment_exchange.h"
#include "common/openssl_util.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "vigil/v1/enrollment.grpc.pb.h"

namespace vigil::node {
namespace {

// Whether the PEM chain's first certificate verifies against the CA, is within its
// validity period and carries this node's SPIFFE URI.
absl::Status CheckExistingCertificate(const std::string& cert_pem, const std::string& ca_pem,
                                      const std::string& node_id) {
  RETURN_IF_ERROR(VerifyCertificate(cert_pem, ca_pem));
  ASSIGN_OR_RETURN(X509Ptr cert, CertificateFromPem(cert_pem));
  ASSIGN_OR_RETURN(std::vector<std::string> uris, UriSans(cert.get()));
  std::string suffix = absl::StrCat("/vigil/node/", node_id);
  for (const std::string& uri : uris) {
    if (uri.size() > suffix.size() &&
        uri.compare(uri.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return absl::OkStatus();
    }
  }
  return absl::FailedPreconditionError("node certificate names another node");
}

}  // namespace

std::string NodeCertPath(const NodeConfig& config) {
  return config.cert_path.empty() ? config.state_dir + "/node.crt" : config.cert_path;
}

std::string NodeKeyPath(const NodeConfig& config) {
  return config.key_path.empty() ? config.state_dir + "/node.key" : config.key_path;
}

absl::StatusOr<NodeIdentity> EnsureEnrolled(const NodeConfig& config, tpm::NodeTpm& tpm,
                                            absl::Duration rpc_timeout) {
  NodeIdentity id;
  id.node_id = tpm.node_id();
  id.cert_path = NodeCertPath(config);
  id.key_path = NodeKeyPath(config);
  if (config.ca_cert_path.empty()) {
    return absl::InvalidArgumentError("enrollment needs the verifier's CA certificate");
  }
  ASSIGN_OR_RETURN(std::string ca_pem, ReadFileToString(config.ca_cert_path));

  if (!tpm.ak_created()) {
    absl::StatusOr<std::string> cert = ReadFileToString(id.cert_path);
    absl::StatusOr<std::string> key = ReadFileToString(id.key_path);
    if (cert.ok() && key.ok()) {
      absl::Status usable = CheckExistingCertificate(*cert, ca_pem, id.node_id);
      if (usable.ok()) return id;
      spdlog::info("existing node certificate not usable ({}); enrolling again", usable.ToString());
    }
  }

  ASSIGN_OR_RETURN(KeyAndCsr key_and_csr, MakeKeyAndCsr(id.node_id));
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_pem;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(config.max_message_bytes);
  args.SetMaxSendMessageSize(config.max_message_bytes);
  auto channel = grpc::CreateCustomChannel(config.enroll_address, grpc::SslCredentials(ssl), args);
  auto stub = v1::Enrollment::NewStub(channel);
  ASSIGN_OR_RETURN(std::string chain_pem, ExchangeEnrollment(*stub, tpm, key_and_csr.csr_pem,
                                                             config.enroll_address, rpc_timeout));
  RETURN_IF_ERROR(CheckExistingCertificate(chain_pem, ca_pem, id.node_id));
  RETURN_IF_ERROR(WritePrivateFile(id.key_path, key_and_csr.key_pem, /*overwrite=*/true));
  RETURN_IF_ERROR(WritePrivateFile(id.cert_path, chain_pem, /*overwrite=*/true));
  id.enrolled_now = true;
  spdlog::info("enrolled as node {} at {}", id.node_id, config.enroll_address);
  return id;
}

}  // namespace vigil::node
