#include "tests/testing/verifier_fixture.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace vigil::testing {

void RecordingResultSink::Record(const std::string& node_id, const v1::Evidence& evidence,
                                 const v1::Verdict& verdict) {
  absl::MutexLock lock(&mu_);
  records_.push_back({node_id, evidence, verdict});
}

void RecordingResultSink::SetConnected(const std::string& node_id, bool connected) {
  absl::MutexLock lock(&mu_);
  connected_[node_id] = connected;
}

std::vector<RecordingResultSink::Entry> RecordingResultSink::records() const {
  absl::MutexLock lock(&mu_);
  return records_;
}

void RecordingResultSink::AwaitConnected(const std::string& node_id, bool connected) const {
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    auto it = connected_.find(node_id);
    return it != connected_.end() && it->second == connected;
  };
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&done));
}

absl::StatusOr<std::unique_ptr<TestVerifier>> TestVerifier::Start(const TestPki& pki,
                                                                  TestVerifierOptions options) {
  std::unique_ptr<TestVerifier> v(new TestVerifier());
  v->ca_cert_pem_ = pki.ca_cert_pem();
  v->max_message_bytes_ = options.max_message_bytes;
  options.attestation.trust_domain = pki.ca().trust_domain;
  v->attestation_ = std::make_unique<verifier::AttestationService>(
      options.attestation, options.appraiser ? options.appraiser : &v->default_appraiser_,
      options.sink ? options.sink : &v->recording_sink_);

  verifier::ServerOptions server;
  server.listen_address = "127.0.0.1:0";
  if (options.enroll_listener) server.enroll_listen_address = "127.0.0.1:0";
  server.tls = VerifierTlsFiles(pki, options.tls_refresh_interval);
  server.max_message_bytes = options.max_message_bytes;
  server.enroll_max_message_bytes = options.enroll_max_message_bytes;
  server.services = options.services;
  server.services.push_back(v->attestation_.get());
  server.enroll_services = options.enroll_services;
  ASSIGN_OR_RETURN(v->server_, verifier::VerifierServer::Start(server));
  return v;
}

TestVerifier::~TestVerifier() { Stop(); }

void TestVerifier::Stop() {
  if (stopped_) return;
  stopped_ = true;
  attestation_->CloseStreams();
  server_->Shutdown(absl::Now() + absl::Seconds(5));
}

std::string TestVerifier::address() const { return absl::StrCat("127.0.0.1:", port()); }

std::string TestVerifier::enroll_address() const {
  return absl::StrCat("127.0.0.1:", server_->enroll_port());
}

std::shared_ptr<grpc::Channel> TestVerifier::Channel(const CertAndKey& identity) const {
  return MakeChannel(address(), ClientCredentials(ca_cert_pem_, identity), max_message_bytes_);
}

std::shared_ptr<grpc::Channel> TestVerifier::ChannelWithoutCertificate() const {
  return MakeChannel(address(), ClientCredentials(ca_cert_pem_, CertAndKey{}), max_message_bytes_);
}

TlsFiles VerifierTlsFiles(const TestPki& pki, absl::Duration refresh_interval) {
  return TlsFiles{pki.dir() + "/ca.crt", pki.dir() + "/verifier.crt", pki.dir() + "/verifier.key",
                  refresh_interval};
}

std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(const std::string& ca_pem,
                                                            const CertAndKey& identity) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_pem;
  options.pem_cert_chain = identity.cert_pem;
  options.pem_private_key = identity.key_pem;
  return grpc::SslCredentials(options);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           std::shared_ptr<grpc::ChannelCredentials> creds,
                                           size_t max_message_bytes) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
  args.SetMaxSendMessageSize(-1);  // Let tests send oversized messages to the server.
  // Each channel gets its own connection, so one test's broken stream cannot affect another.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, creds, args);
}

}  // namespace vigil::testing
