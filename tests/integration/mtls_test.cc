// The verifier's mutual-TLS listener end to end: real certificates, a real server on a
// loopback port, real gRPC and OpenSSL clients.

#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "absl/cleanup/cleanup.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/keepalive.h"
#include "common/openssl_util.h"
#include "common/pki.h"
#include "common/tls.h"
#include "tests/testing/peer_certificate_service.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/peer_identity.h"
#include "vigil/v1/enrollment.grpc.pb.h"
#include "vigil/v1/fleet.grpc.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil {
namespace {

using testing::TestPki;
using testing::TestVerifier;
using testing::TestVerifierOptions;
using Stream = grpc::ClientReaderWriter<v1::NodeMessage, v1::VerifierMessage>;

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(60);
}

// A client-only service: ListNodes answers only client certificates.
class ClientOnlyFleet final : public v1::Fleet::CallbackService {
 public:
  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* context,
                                      const v1::ListNodesRequest*,
                                      v1::ListNodesResponse*) override {
    absl::StatusOr<verifier::PeerIdentity> peer =
        verifier::RequireRole(*context, TestPki::kTrustDomain, SpiffeRole::kClient);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(verifier::ToGrpcStatus(peer.status()));
    return reactor;
  }
};

// An enrollment service that answers every request it receives: whatever reaches it got
// past the listener's message limit.
class AcceptingEnrollment final : public v1::Enrollment::CallbackService {
 public:
  grpc::ServerUnaryReactor* BeginEnrollment(grpc::CallbackServerContext* context,
                                            const v1::BeginEnrollmentRequest*,
                                            v1::BeginEnrollmentResponse*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// grpc.health.v1.Health/Check for the overall server; returns the status and, when OK, the
// serving status (1 = SERVING).
grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel, int* serving) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  grpc::Slice empty("");  // HealthCheckRequest{service: ""} serializes to no bytes.
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status status = done.get_future().get();
  if (status.ok()) {
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(response.Dump(&slices).ok());
    std::string bytes;
    for (const grpc::Slice& s : slices)
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    // HealthCheckResponse{status: SERVING} is field 1, varint 1.
    *serving = bytes == std::string("\x08\x01", 2) ? 1 : 0;
  }
  return status;
}

// Asks server reflection for the service list; returns the raw ServerReflectionResponse.
// grpc.reflection.v1alpha list_services over `channel`: the call's status, and the raw
// response in *listed.
grpc::Status ReflectionListServices(const std::shared_ptr<grpc::Channel>& channel,
                                    std::string* listed) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto step = [&cq](intptr_t tag) {
    void* got = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&got, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(got), tag);
    return ok;
  };
  std::string response_bytes;
  call->StartCall(reinterpret_cast<void*>(1));
  if (step(1)) {
    // ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty.
    grpc::Slice request_slice(std::string("\x3a\x00", 2));
    grpc::ByteBuffer request(&request_slice, 1);
    call->Write(request, reinterpret_cast<void*>(2));
    step(2);
    call->WritesDone(reinterpret_cast<void*>(3));
    step(3);
    grpc::ByteBuffer response;
    call->Read(&response, reinterpret_cast<void*>(4));
    if (step(4)) {
      std::vector<grpc::Slice> slices;
      EXPECT_TRUE(response.Dump(&slices).ok());
      for (const grpc::Slice& sl : slices) {
        response_bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
      }
    }
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  *listed = std::move(response_bytes);
  return status;
}

std::string Report(const std::string& node_id, uint64_t sequence, size_t padding = 0) {
  v1::RuntimeReport report;
  report.set_node_id(node_id);
  report.set_sequence(sequence);
  report.set_hostname(std::string(padding, 'x'));
  return report.SerializeAsString();
}

v1::NodeMessage Evidence(const std::string& nonce, const std::string& payload) {
  v1::NodeMessage m;
  m.mutable_evidence()->set_nonce(nonce);
  m.mutable_evidence()->set_payload(payload);
  return m;
}

// Answers one challenge; returns the acknowledgement and leaves the next nonce in *nonce.
v1::Acknowledgement Round(Stream& stream, std::string* nonce, const std::string& payload) {
  EXPECT_TRUE(stream.Write(Evidence(*nonce, payload)));
  v1::VerifierMessage ack, challenge;
  EXPECT_TRUE(stream.Read(&ack));
  EXPECT_TRUE(stream.Read(&challenge));
  EXPECT_TRUE(challenge.has_challenge());
  *nonce = challenge.challenge().nonce();
  return ack.acknowledgement();
}

// The first RPC's status when connecting with `identity` (handshake failures show here).
grpc::Status AttestStatus(TestVerifier& verifier, const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Attestation::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  auto stream = stub->Attest(&ctx);
  v1::VerifierMessage m;
  while (stream->Read(&m)) {
    if (m.has_challenge()) {
      ctx.TryCancel();  // Connected and challenged: the handshake was accepted.
      return grpc::Status::OK;
    }
  }
  return stream->Finish();
}

// What a raw TLS handshake with the verifier came to.
struct Handshake {
  int version = 0;          // negotiated protocol version; 0 when the handshake failed
  std::string server_cert;  // PEM of the certificate the server presented
  unsigned long error = 0;  // the first OpenSSL error of a failed handshake
};

// Completes (or fails) a raw TLS handshake with the verifier on `port`, offering TLS 1.2 up
// to `max_version` and presenting `identity`.
Handshake RawHandshake(int port, const TestPki& pki, const CertAndKey& identity, int max_version) {
  Handshake out;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  absl::Cleanup close_fd = [fd] { close(fd); };
  timeval guard{30, 0};  // Only so a broken server cannot hang the test forever.
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return out;

  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  // The verifier's TLS 1.3 policy is process-wide (EnforceTls13Only) and this client runs in
  // the same process: switch TLS 1.2 back on here so it is really offered.
  SSL_CTX_clear_options(ctx.get(), SSL_OP_NO_TLSv1_2 | SSL_OP_NO_TLSv1_3);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  X509Ptr ca = *CertificateFromPem(pki.ca_cert_pem());
  X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca.get());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  X509Ptr cert = *CertificateFromPem(identity.cert_pem);
  EvpPkeyPtr key = *PrivateKeyFromPem(identity.key_pem);
  SSL_CTX_use_certificate(ctx.get(), cert.get());
  SSL_CTX_use_PrivateKey(ctx.get(), key.get());
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn));

  SslPtr ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  SSL_set_tlsext_host_name(ssl.get(), "localhost");
  if (SSL_connect(ssl.get()) != 1) {
    out.error = ERR_peek_error();
    DrainOpenSslErrors();
    return out;
  }
  out.version = SSL_version(ssl.get());
  X509Ptr served(SSL_get1_peer_certificate(ssl.get()));
  if (served != nullptr) out.server_cert = CertificateToPem(served.get()).value_or("");
  return out;
}

// True when `handshake` failed on the server's side after this client sent its hello:
// gRPC's server closes the connection (sometimes after a protocol_version alert). A client
// that refused to offer the version itself fails with "no protocols available" instead.
bool RefusedByServer(const Handshake& handshake) {
  if (handshake.version != 0 || ERR_GET_LIB(handshake.error) != ERR_LIB_SSL) return false;
  int reason = ERR_GET_REASON(handshake.error);
  return reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
         reason == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

// Polls `probe` until it returns true or 60 s pass; returns the last result.
template <typename Probe>
bool Eventually(Probe probe) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!probe()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return true;
}

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
  }

  void StartVerifier(TestVerifierOptions options = {}) {
    options.services.push_back(&fleet_);
    absl::StatusOr<std::unique_ptr<TestVerifier>> v = TestVerifier::Start(*pki_, options);
    ASSERT_TRUE(v.ok()) << v.status();
    verifier_ = *std::move(v);
  }

  // With the enrollment listener too, serving enrollment_.
  void StartVerifierWithEnrollment(TestVerifierOptions options = {}) {
    options.enroll_listener = true;
    options.enroll_services.push_back(&enrollment_);
    StartVerifier(std::move(options));
  }

  // The node's Attest stream, opened, with its first challenge's nonce (empty, and a test
  // failure, when the first message is not a challenge).
  struct NodeStream {
    std::unique_ptr<v1::Attestation::Stub> stub;
    grpc::ClientContext ctx;
    std::unique_ptr<Stream> stream;
    std::string nonce;
  };
  std::unique_ptr<NodeStream> OpenNodeStream() {
    auto s = std::make_unique<NodeStream>();
    s->stub = v1::Attestation::NewStub(verifier_->Channel(pki_->node()));
    s->ctx.set_deadline(Deadline());
    s->stream = s->stub->Attest(&s->ctx);
    v1::VerifierMessage first;
    EXPECT_TRUE(s->stream->Read(&first));
    EXPECT_TRUE(first.has_challenge());
    s->nonce = first.challenge().nonce();
    return s;
  }

  ClientOnlyFleet fleet_;
  AcceptingEnrollment enrollment_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<TestVerifier> verifier_;
};

TEST_F(MtlsTest, NodeStreamsReportsAndGetsAcknowledgementsAndFreshChallenges) {
  StartVerifier();
  std::unique_ptr<NodeStream> s = OpenNodeStream();
  ASSERT_FALSE(s->nonce.empty());
  std::set<std::string> nonces = {s->nonce};
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    v1::Acknowledgement ack = Round(*s->stream, &s->nonce, Report(TestPki::kNodeId, seq));
    EXPECT_EQ(ack.sequence(), seq);
    EXPECT_EQ(ack.verdict().status(), v1::TRUST_UNVERIFIED);
    EXPECT_TRUE(nonces.insert(s->nonce).second) << "a nonce was issued twice";
  }
  ASSERT_TRUE(s->stream->WritesDone());
  v1::VerifierMessage m;
  EXPECT_FALSE(s->stream->Read(&m));
  EXPECT_TRUE(s->stream->Finish().ok());
  EXPECT_EQ(verifier_->recorded().records().size(), 3u);
}

// The verifier advertises a fixed 1 MiB window per stream (no bandwidth-delay probe): a report
// three windows long goes through, the verifier announcing more window as it reads, and so does
// the next one on the same stream.
TEST_F(MtlsTest, ReportsLongerThanTheStreamWindowAreAcknowledged) {
  StartVerifier();
  std::unique_ptr<NodeStream> s = OpenNodeStream();
  ASSERT_FALSE(s->nonce.empty());
  for (uint64_t seq = 1; seq <= 2; ++seq) {
    const std::string payload = Report(TestPki::kNodeId, seq, 3 * kStreamWindowBytes);
    v1::Acknowledgement ack = Round(*s->stream, &s->nonce, payload);
    EXPECT_EQ(ack.sequence(), seq);
    EXPECT_EQ(ack.verdict().evidence_sha256(), HexEncode(Sha256(payload)));
  }
  s->ctx.TryCancel();
}

TEST_F(MtlsTest, RefusesAClientWithoutACertificate) {
  StartVerifier();
  int serving = 0;
  grpc::Status s = HealthCheck(verifier_->ChannelWithoutCertificate(), &serving);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(AttestStatus(*verifier_, verifier_->ChannelWithoutCertificate()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MtlsTest, RefusesACertificateFromAnotherCa) {
  StartVerifier();
  absl::StatusOr<CertAndKey> foreign = pki_->IssueForeign(TestPki::NodeUri(TestPki::kNodeId));
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(AttestStatus(*verifier_, verifier_->Channel(*foreign)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(verifier_->recorded().records().empty());
}

TEST_F(MtlsTest, RefusesAnExpiredCertificate) {
  StartVerifier();
  absl::Time now = absl::Now();
  absl::StatusOr<CertAndKey> expired = pki_->IssueWithValidity(
      TestPki::NodeUri(TestPki::kNodeId), Validity{now - absl::Hours(2), now - absl::Hours(1)});
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(AttestStatus(*verifier_, verifier_->Channel(*expired)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // The same identity with a valid certificate gets in.
  EXPECT_TRUE(AttestStatus(*verifier_, verifier_->Channel(pki_->node())).ok());
}

TEST_F(MtlsTest, RefusesTls12AndAcceptsTls13) {
  StartVerifier();
  Handshake tls12 = RawHandshake(verifier_->port(), *pki_, pki_->node(), TLS1_2_VERSION);
  EXPECT_TRUE(RefusedByServer(tls12)) << ERR_error_string(tls12.error, nullptr);
  // The same client allowed TLS 1.3 completes the handshake, so the refusal above is the
  // protocol version and nothing else.
  EXPECT_EQ(RawHandshake(verifier_->port(), *pki_, pki_->node(), TLS1_3_VERSION).version,
            TLS1_3_VERSION);
}

TEST_F(MtlsTest, EnrollmentListenerRefusesTls12) {
  StartVerifierWithEnrollment();
  const int port = std::stoi(verifier_->enroll_address().substr(10));  // "127.0.0.1:"
  Handshake tls12 = RawHandshake(port, *pki_, pki_->node(), TLS1_2_VERSION);
  EXPECT_TRUE(RefusedByServer(tls12)) << ERR_error_string(tls12.error, nullptr);
  EXPECT_EQ(RawHandshake(port, *pki_, pki_->node(), TLS1_3_VERSION).version, TLS1_3_VERSION);
}

TEST_F(MtlsTest, ServesAVerifierCertificateRewrittenOnDiskWithoutRestart) {
  TestVerifierOptions options;
  options.tls_refresh_interval = absl::Seconds(1);
  StartVerifier(options);
  Handshake before = RawHandshake(verifier_->port(), *pki_, pki_->node(), TLS1_3_VERSION);
  ASSERT_EQ(before.version, TLS1_3_VERSION);
  ASSERT_EQ(before.server_cert, pki_->verifier().cert_pem);

  absl::StatusOr<CertAndKey> renewed = IssueServerCertificate(
      pki_->ca(), "vigil-verifier", {"localhost", "127.0.0.1"}, Validity::FromNow(absl::Hours(2)));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  ASSERT_NE(renewed->cert_pem, before.server_cert);
  // Key first: the old certificate with the new key fails handshakes until the certificate
  // follows, which the polling below rides out.
  ASSERT_TRUE(ReplacePrivateFileAtomically(pki_->dir() + "/verifier.key", renewed->key_pem).ok());
  ASSERT_TRUE(ReplacePrivateFileAtomically(pki_->dir() + "/verifier.crt", renewed->cert_pem).ok());

  EXPECT_TRUE(Eventually([&] {
    return RawHandshake(verifier_->port(), *pki_, pki_->node(), TLS1_3_VERSION).server_cert ==
           renewed->cert_pem;
  }));
  // The reloaded listener is still TLS 1.3 only, and gRPC clients get in.
  Handshake tls12 = RawHandshake(verifier_->port(), *pki_, pki_->node(), TLS1_2_VERSION);
  EXPECT_TRUE(RefusedByServer(tls12)) << ERR_error_string(tls12.error, nullptr);
  EXPECT_TRUE(AttestStatus(*verifier_, verifier_->Channel(pki_->node())).ok());
}

TEST_F(MtlsTest, PresentsAClientCertificateRewrittenOnDiskWithoutNewCredentials) {
  testing::PeerCertificateService peer;  // a Fleet service, instead of the fixture's
  TestVerifierOptions options;
  options.services.push_back(&peer);
  absl::StatusOr<std::unique_ptr<TestVerifier>> v = TestVerifier::Start(*pki_, options);
  ASSERT_TRUE(v.ok()) << v.status();
  verifier_ = *std::move(v);
  const std::string dir = pki_->dir();
  const std::string cert_path = dir + "/node-" + TestPki::kNodeId + ".crt";
  const std::string key_path = dir + "/node-" + TestPki::kNodeId + ".key";
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = MakeMutualTlsChannelCredentials(
      TlsFiles{dir + "/ca.crt", cert_path, key_path, absl::Seconds(1)});
  ASSERT_TRUE(creds.ok()) << creds.status();
  // Each probe opens its own connection with the same credentials object.
  auto presented = [&] {
    return testing::PresentedCertificate(testing::MakeChannel(verifier_->address(), *creds));
  };
  absl::StatusOr<std::string> first = presented();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(*first, pki_->node().cert_pem);

  absl::StatusOr<CertAndKey> renewed = pki_->IssueWithValidity(TestPki::NodeUri(TestPki::kNodeId),
                                                               Validity::FromNow(absl::Hours(2)));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  ASSERT_TRUE(ReplacePrivateFileAtomically(key_path, renewed->key_pem).ok());
  ASSERT_TRUE(ReplacePrivateFileAtomically(cert_path, renewed->cert_pem).ok());

  EXPECT_TRUE(Eventually([&] {
    absl::StatusOr<std::string> now = presented();
    return now.ok() && *now == renewed->cert_pem;
  }));
}

TEST_F(MtlsTest, NodeCannotReportAsAnotherNode) {
  StartVerifier();
  std::unique_ptr<NodeStream> s = OpenNodeStream();
  ASSERT_FALSE(s->nonce.empty());
  v1::Acknowledgement ack = Round(*s->stream, &s->nonce, Report("another-node", 1));
  EXPECT_EQ(ack.verdict().status(), v1::TRUST_REJECTED);
  ASSERT_EQ(ack.verdict().reasons_size(), 1);
  EXPECT_EQ(ack.verdict().reasons(0), v1::NODE_MISMATCH);
  s->ctx.TryCancel();
}

TEST_F(MtlsTest, NodeCertificateCannotCallClientServicesAndClientCannotAttest) {
  StartVerifier();
  auto call_fleet = [&](const CertAndKey& identity) {
    auto stub = v1::Fleet::NewStub(verifier_->Channel(identity));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::ListNodesResponse response;
    return stub->ListNodes(&ctx, v1::ListNodesRequest(), &response);
  };
  EXPECT_EQ(call_fleet(pki_->node()).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(call_fleet(pki_->client()).ok());
  EXPECT_EQ(AttestStatus(*verifier_, verifier_->Channel(pki_->client())).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(MtlsTest, OversizedMessageIsRefusedWhileAnotherStreamKeepsWorking) {
  TestVerifierOptions options;
  options.max_message_bytes = 64 << 10;
  StartVerifier(options);
  auto channel = verifier_->Channel(pki_->node());  // both streams share one connection
  auto stub = v1::Attestation::NewStub(channel);

  grpc::ClientContext good_ctx, big_ctx;
  good_ctx.set_deadline(Deadline());
  big_ctx.set_deadline(Deadline());
  auto good = stub->Attest(&good_ctx);
  auto big = stub->Attest(&big_ctx);
  v1::VerifierMessage m;
  ASSERT_TRUE(good->Read(&m));
  std::string good_nonce = m.challenge().nonce();
  ASSERT_TRUE(big->Read(&m));

  big->Write(Evidence(m.challenge().nonce(), Report(TestPki::kNodeId, 1, 128 << 10)));
  while (big->Read(&m)) {
  }
  grpc::Status refused = big->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();

  for (uint64_t seq = 1; seq <= 2; ++seq) {
    v1::Acknowledgement ack = Round(*good, &good_nonce, Report(TestPki::kNodeId, seq));
    EXPECT_EQ(ack.sequence(), seq);
    EXPECT_EQ(ack.verdict().status(), v1::TRUST_UNVERIFIED);
  }
  good_ctx.TryCancel();
}

TEST_F(MtlsTest, HealthAnswersServingOnBothListeners) {
  StartVerifierWithEnrollment();
  int serving = 0;
  grpc::Status s = HealthCheck(verifier_->Channel(pki_->client()), &serving);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(serving, 1);

  // The enrollment listener needs no client certificate but does not serve Attest.
  auto enroll = testing::MakeChannel(verifier_->enroll_address(),
                                     testing::ClientCredentials(pki_->ca_cert_pem(), {}));
  serving = 0;
  s = HealthCheck(enroll, &serving);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(serving, 1);
  EXPECT_EQ(AttestStatus(*verifier_, enroll).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(MtlsTest, ReflectionOnTheMutualTlsListenerOnly) {
  StartVerifierWithEnrollment();
  std::string listed;
  grpc::Status s = ReflectionListServices(verifier_->Channel(pki_->client()), &listed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(listed.find("vigil.v1.Attestation"), std::string::npos);
  EXPECT_NE(listed.find("grpc.health.v1.Health"), std::string::npos);

  auto enroll = testing::MakeChannel(verifier_->enroll_address(),
                                     testing::ClientCredentials(pki_->ca_cert_pem(), {}));
  listed.clear();
  s = ReflectionListServices(enroll, &listed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << s.error_message();
  EXPECT_TRUE(listed.empty());
  // Health still answers there.
  int serving = 0;
  ASSERT_TRUE(HealthCheck(enroll, &serving).ok());
  EXPECT_EQ(serving, 1);
}

TEST_F(MtlsTest, EnrollmentListenerHasItsOwnSmallMessageLimit) {
  TestVerifierOptions options;
  options.max_message_bytes = 4 << 20;  // the mutual-TLS listener's limit stays large
  StartVerifierWithEnrollment(options);
  auto stub = v1::Enrollment::NewStub(testing::MakeChannel(
      verifier_->enroll_address(), testing::ClientCredentials(pki_->ca_cert_pem(), {})));
  auto begin = [&](size_t ek_certificate_bytes) {
    v1::BeginEnrollmentRequest request;
    request.set_ek_certificate(std::string(ek_certificate_bytes, 'c'));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::BeginEnrollmentResponse response;
    return stub->BeginEnrollment(&ctx, request, &response);
  };
  // A generous real-world request (a 4 KiB EK certificate chain) is served...
  grpc::Status s = begin(4 << 10);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // ... one past the default 64 KiB limit is refused before the service sees it.
  s = begin(verifier::kDefaultEnrollMaxMessageBytes);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
}

}  // namespace
}  // namespace vigil
