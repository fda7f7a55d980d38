#pragma once

// A real VerifierServer, in-process, on 127.0.0.1 with port 0, using a TestPki. Tests pass
// their own appraiser, sink and extra services, and make mutual-TLS channels from any
// certificate:
//
//   auto pki = TestPki::Create();                      // tests/testing/pki_fixture.h
//   auto verifier = TestVerifier::Start(**pki);         // UnverifiedAppraiser + RecordingSink
//   auto channel = (*verifier)->Channel((*pki)->node());
//   auto stub = v1::Attestation::NewStub(channel);
//
// The destructor closes Attest streams and shuts the server down.

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/tls.h"
#include "tests/testing/pki_fixture.h"
#include "verifier/attestation_service.h"
#include "verifier/evidence_appraiser.h"
#include "verifier/result_sink.h"
#include "verifier/server.h"
#include "verifier/unverified_appraiser.h"

namespace vigil::testing {

/// A ResultSink that keeps everything, for assertions. Thread-safe.
class RecordingResultSink final : public verifier::ResultSink {
 public:
  struct Entry {
    std::string node_id;
    v1::Evidence evidence;
    v1::Verdict verdict;
  };
  void Record(const std::string& node_id, const v1::Evidence& evidence,
              const v1::Verdict& verdict) override;
  void SetConnected(const std::string& node_id, bool connected) override;

  std::vector<Entry> records() const;
  /// Blocks until `node_id` was last reported connected == `connected`.
  void AwaitConnected(const std::string& node_id, bool connected) const;

 private:
  mutable absl::Mutex mu_;
  std::vector<Entry> records_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> connected_ ABSL_GUARDED_BY(mu_);
};

/// What to run the test verifier with. Null pointers get the fixture's defaults.
struct TestVerifierOptions {
  verifier::EvidenceAppraiser* appraiser = nullptr;  ///< default: UnverifiedAppraiser
  verifier::ResultSink* sink = nullptr;              ///< default: the fixture's RecordingResultSink
  /// Extra services on the mutual-TLS listener and on the enrollment listener (not owned).
  std::vector<grpc::Service*> services;
  std::vector<grpc::Service*> enroll_services;
  /// Start the enrollment listener (on port 0) too.
  bool enroll_listener = false;
  size_t max_message_bytes = 4 << 20;
  size_t enroll_max_message_bytes = verifier::kDefaultEnrollMaxMessageBytes;
  /// How often the verifier re-reads its certificate files (pki.dir()/verifier.crt, .key
  /// and ca.crt).
  absl::Duration tls_refresh_interval = kDefaultTlsRefreshInterval;
  /// Stream settings; trust_domain is filled from the PKI.
  verifier::AttestationOptions attestation = [] {
    verifier::AttestationOptions o;
    o.pcr_selection = {0, 1, 2, 3, 4, 5, 6, 7, 15};
    return o;
  }();
};

class TestVerifier {
 public:
  static absl::StatusOr<std::unique_ptr<TestVerifier>> Start(const TestPki& pki,
                                                             TestVerifierOptions options = {});
  ~TestVerifier();

  int port() const { return server_->port(); }
  /// "127.0.0.1:<port>" of the mutual-TLS listener and the enrollment listener.
  std::string address() const;
  std::string enroll_address() const;

  verifier::AttestationService& attestation() { return *attestation_; }
  /// The default sink (always present; unused when options.sink was given).
  RecordingResultSink& recorded() { return recording_sink_; }

  /// A channel to the mutual-TLS listener presenting `identity`.
  std::shared_ptr<grpc::Channel> Channel(const CertAndKey& identity) const;
  /// A channel to the mutual-TLS listener that presents no client certificate.
  std::shared_ptr<grpc::Channel> ChannelWithoutCertificate() const;

  /// Closes streams and shuts down now (the destructor does it too).
  void Stop();

 private:
  TestVerifier() = default;

  std::string ca_cert_pem_;
  size_t max_message_bytes_ = 0;
  RecordingResultSink recording_sink_;
  verifier::UnverifiedAppraiser default_appraiser_;
  std::unique_ptr<verifier::AttestationService> attestation_;
  std::unique_ptr<verifier::VerifierServer> server_;
  bool stopped_ = false;
};

/// The verifier's files in a TestPki's directory, re-read every `refresh_interval`.
TlsFiles VerifierTlsFiles(const TestPki& pki,
                          absl::Duration refresh_interval = kDefaultTlsRefreshInterval);

/// Channel credentials for Vigil's mutual TLS: verify the server against `ca_pem`, present
/// `identity` (an empty cert_pem presents none). The server only speaks TLS 1.3.
std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(const std::string& ca_pem,
                                                            const CertAndKey& identity);

/// A channel to `address` with those credentials and message size limits.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           std::shared_ptr<grpc::ChannelCredentials> creds,
                                           size_t max_message_bytes = 4 << 20);

}  // namespace vigil::testing
