#include "node/agent/enrollment_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/openssl_util.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "vigil/v1/enrollment.grpc.pb.h"

namespace vigil::node {
namespace {

absl::Status FromGrpc(const grpc::Status& s, std::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(std::string(what), ": ", s.error_message()));
}

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
  auto deadline = [&] {
    return std::chrono::system_clock::now() +
           std::chrono::nanoseconds(absl::ToInt64Nanoseconds(rpc_timeout));
  };

  v1::BeginEnrollmentRequest begin;
  begin.set_ek_public(tpm.ek_public());
  begin.set_ek_certificate(tpm.ek_certificate_der());
  begin.set_ak_public(tpm.ak_public());
  begin.set_ak_name(tpm.ak_name());
  begin.set_srk_public(tpm.srk_public());
  begin.set_csr_pem(key_and_csr.csr_pem);
  v1::BeginEnrollmentResponse challenge;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    grpc::Status s = stub->BeginEnrollment(&ctx, begin, &challenge);
    if (!s.ok()) return FromGrpc(s, absl::StrCat("BeginEnrollment at ", config.enroll_address));
  }
  if (challenge.node_id() != id.node_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "verifier derived node_id ", challenge.node_id(), " but the TPM's is ", id.node_id));
  }
  ASSIGN_OR_RETURN(std::string secret, tpm.ActivateCredential(challenge.credential_blob(),
                                                              challenge.encrypted_secret()));
  v1::CompleteEnrollmentRequest complete;
  complete.set_enrollment_id(challenge.enrollment_id());
  complete.set_activated_secret(secret);
  v1::CompleteEnrollmentResponse issued;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    grpc::Status s = stub->CompleteEnrollment(&ctx, complete, &issued);
    if (!s.ok()) return FromGrpc(s, "CompleteEnrollment");
  }
  RETURN_IF_ERROR(CheckExistingCertificate(issued.certificate_chain_pem(), ca_pem, id.node_id));
  RETURN_IF_ERROR(WritePrivateFile(id.key_path, key_and_csr.key_pem, /*overwrite=*/true));
  RETURN_IF_ERROR(
      WritePrivateFile(id.cert_path, issued.certificate_chain_pem(), /*overwrite=*/true));
  id.enrolled_now = true;
  spdlog::info("enrolled as node {} at {}", id.node_id, config.enroll_address);
  return id;
}

}  // namespace vigil::node
