// End to end with a TPM: the real vigil-node binary (swtpm, BPF probes) enrolls with the
// real vigil-verifier binary, is appraised TRUST_AFFIRMING, keeps its identity and its
// measurement log across a restart; evidence forged by a client that speaks only the proto
// with the node's own certificate is rejected with the appraiser's exact reason; a node
// binary missing from the reference values is UNKNOWN_MEASUREMENT.

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/pki.h"
#include "common/tpm/tpm_public.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "vigil/v1/attestation.grpc.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil {
namespace {

using testing::Fabric;

// The node's certificate names spiffe://<trust domain>/vigil/node/<node_id>.
void ExpectNodeCertificate(const std::string& cert_pem, const std::string& node_id) {
  absl::StatusOr<X509Ptr> cert = CertificateFromPem(cert_pem);
  ASSERT_TRUE(cert.ok()) << cert.status();
  absl::StatusOr<std::vector<std::string>> sans = UriSans(cert->get());
  ASSERT_TRUE(sans.ok()) << sans.status();
  EXPECT_THAT(*sans, ::testing::ElementsAre(testing::TestPki::NodeUri(node_id)));
  EXPECT_EQ(testing::TestPki::NodeUri(node_id),
            absl::StrCat("spiffe://", testing::TestPki::kTrustDomain, "/vigil/node/", node_id));
}

// Measurement log records are numbered 0, 1, 2, ... without a gap.
void ExpectContiguousLog(const MeasurementLog& log) {
  for (size_t i = 0; i < log.records.size(); ++i) {
    EXPECT_EQ(log.records[i].recnum, i) << "record " << i << " " << log.records[i].event_type;
  }
}

// The node enrolled with its SRK: the verifier stored the SRK and the AK's qualified name
// computed from it, which every affirmed quote's qualifiedSigner has equalled exactly.
void ExpectExactQualifiedSigner(const std::string& db_path, const std::string& node_id) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  absl::Cleanup close = [db] { sqlite3_close(db); };
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT srk_public, ak_public, ak_qualified_name FROM "
                               "enrolled_nodes WHERE node_id = ?",
                               -1, &q, nullptr),
            SQLITE_OK);
  absl::Cleanup finalize = [q] { sqlite3_finalize(q); };
  sqlite3_bind_text(q, 1, node_id.data(), static_cast<int>(node_id.size()), SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  auto column = [q](int i) {
    return std::string(static_cast<const char*>(sqlite3_column_blob(q, i)),
                       static_cast<size_t>(sqlite3_column_bytes(q, i)));
  };
  absl::StatusOr<tpm::TpmPublic> srk = tpm::ParseTpm2bPublic(column(0));
  ASSERT_TRUE(srk.ok()) << srk.status();
  absl::StatusOr<tpm::TpmPublic> ak = tpm::ParseTpm2bPublic(column(1));
  ASSERT_TRUE(ak.ok()) << ak.status();
  absl::StatusOr<std::string> srk_qualified_name = tpm::PrimaryQualifiedName(TPM2_RH_OWNER, *srk);
  ASSERT_TRUE(srk_qualified_name.ok()) << srk_qualified_name.status();
  absl::StatusOr<std::string> expected = tpm::ChildQualifiedName(*srk_qualified_name, *ak);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(HexEncode(column(2)), HexEncode(*expected));
}

TEST(TpmFabricTest, NodeEnrollsIsAffirmedAndKeepsIdentityAndLogAcrossRestart) {
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start({});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNode().ok());

  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status();
  absl::StatusOr<std::string> cert = ReadFileToString(f.state_dir() + "/node.crt");
  ASSERT_TRUE(cert.ok()) << cert.status();
  ExpectNodeCertificate(*cert, *node_id);
  ExpectExactQualifiedSigner(f.db_path(), *node_id);

  // The latest evidence is quoted and its report carries the workload's snapshot.
  absl::StatusOr<v1::GetLatestEvidenceResponse> latest = f.LatestEvidence(*node_id);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->verdict().status(), v1::TRUST_AFFIRMING);
  EXPECT_TRUE(latest->evidence().has_quote());
  EXPECT_FALSE(latest->ak_public().empty());
  v1::RuntimeReport report;
  ASSERT_TRUE(report.ParseFromString(latest->evidence().payload()));
  EXPECT_EQ(report.node_id(), *node_id);
  const v1::ProcessSnapshot* workload = nullptr;
  for (const v1::ProcessSnapshot& p : report.processes()) {
    if (p.pid() == f.workload_pid()) workload = &p;
  }
  ASSERT_NE(workload, nullptr) << report.DebugString();
  EXPECT_EQ(workload->comm(), f.workload_comm());

  absl::StatusOr<MeasurementLog> log_before =
      ReadMeasurementLog(f.state_dir() + "/measurements.json");
  ASSERT_TRUE(log_before.ok()) << log_before.status();
  ASSERT_FALSE(log_before->records.empty());

  // Restart: same certificate (no second enrollment), the log continues, still affirmed.
  ASSERT_TRUE(f.StopNode().ok()) << f.Logs();
  const int64_t restarted_at = absl::ToUnixNanos(absl::Now());
  ASSERT_TRUE(f.StartNode().ok());
  absl::StatusOr<std::string> node_id_after = f.AwaitVerdict(v1::TRUST_AFFIRMING, restarted_at);
  ASSERT_TRUE(node_id_after.ok()) << node_id_after.status();
  EXPECT_EQ(*node_id_after, *node_id);
  absl::StatusOr<std::string> cert_after = ReadFileToString(f.state_dir() + "/node.crt");
  ASSERT_TRUE(cert_after.ok()) << cert_after.status();
  EXPECT_EQ(*cert_after, *cert) << "the node enrolled again";

  absl::StatusOr<MeasurementLog> log_after =
      ReadMeasurementLog(f.state_dir() + "/measurements.json");
  ASSERT_TRUE(log_after.ok()) << log_after.status();
  ASSERT_GT(log_after->records.size(), log_before->records.size());
  EXPECT_EQ(log_after->boot_id, log_before->boot_id);
  for (size_t i = 0; i < log_before->records.size(); ++i) {
    EXPECT_EQ(log_after->records[i], log_before->records[i]) << "record " << i << " rewritten";
  }
  ExpectContiguousLog(*log_after);
  // The restarted node's start was measured after the first run's records.
  bool restart_measured = false;
  for (size_t i = log_before->records.size(); i < log_after->records.size(); ++i) {
    if (log_after->records[i].event_type == log_before->records[0].event_type) {
      restart_measured = true;
    }
  }
  EXPECT_TRUE(restart_measured);
}

// A client that speaks only the proto, with the node's certificate and key.
class ForgingClient {
 public:
  ForgingClient(const Fabric& f, const CertAndKey& identity)
      : stub_(v1::Attestation::NewStub(testing::MakeChannel(
            f.verifier_address(), testing::ClientCredentials(f.pki().ca_cert_pem(), identity)))),
        stream_(stub_->Attest(&ctx_)) {}

  ~ForgingClient() {
    ctx_.TryCancel();
    stream_->Finish().IgnoreError();
  }

  /// Reads the next challenge.
  bool NextChallenge(v1::Challenge* challenge) {
    v1::VerifierMessage m;
    while (stream_->Read(&m)) {
      if (m.has_challenge()) {
        *challenge = m.challenge();
        return true;
      }
    }
    return false;
  }

  /// Sends `evidence` and returns the acknowledgement's verdict.
  v1::Verdict Send(const v1::Evidence& evidence) {
    v1::NodeMessage out;
    *out.mutable_evidence() = evidence;
    if (!stream_->Write(out)) return v1::Verdict();
    v1::VerifierMessage m;
    while (stream_->Read(&m)) {
      if (m.has_acknowledgement()) return m.acknowledgement().verdict();
    }
    return v1::Verdict();
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<v1::Attestation::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::NodeMessage, v1::VerifierMessage>> stream_;
};

void ExpectRejected(const v1::Verdict& verdict, v1::AppraisalReason reason) {
  EXPECT_EQ(verdict.status(), v1::TRUST_REJECTED) << verdict.DebugString();
  EXPECT_THAT(verdict.reasons(), ::testing::ElementsAre(reason)) << verdict.DebugString();
}

TEST(TpmFabricTest, ForgedEvidenceOverTheWireIsRejectedWithTheAppraisersReason) {
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start({});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNode().ok());
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status();
  ASSERT_TRUE(f.StopNode().ok()) << f.Logs();

  absl::StatusOr<v1::GetLatestEvidenceResponse> latest = f.LatestEvidence(*node_id);
  ASSERT_TRUE(latest.ok()) << latest.status();
  const v1::Evidence real = latest->evidence();
  ASSERT_TRUE(real.has_quote());
  ASSERT_FALSE(real.payload().empty());

  CertAndKey identity;
  absl::StatusOr<std::string> cert = ReadFileToString(f.state_dir() + "/node.crt");
  absl::StatusOr<std::string> key = ReadFileToString(f.state_dir() + "/node.key");
  ASSERT_TRUE(cert.ok() && key.ok());
  identity.cert_pem = *cert;
  identity.key_pem = *key;
  ForgingClient client(f, identity);
  v1::Challenge challenge;
  ASSERT_TRUE(client.NextChallenge(&challenge)) << f.Logs();
  ASSERT_NE(challenge.nonce(), real.nonce());

  // (a) Real, TPM-signed evidence re-labelled with the new nonce: the quote's extraData
  // binds the old one.
  v1::Evidence replayed = real;
  replayed.set_nonce(challenge.nonce());
  ExpectRejected(client.Send(replayed), v1::EXTRA_DATA_MISMATCH);

  // (b) The same with one payload byte changed: extraData binds SHA-256 of the payload.
  ASSERT_TRUE(client.NextChallenge(&challenge));
  v1::Evidence tampered = real;
  tampered.set_nonce(challenge.nonce());
  std::string payload = tampered.payload();
  payload[payload.size() / 2] ^= 0x01;
  tampered.set_payload(payload);
  v1::Verdict tampered_verdict = client.Send(tampered);
  ExpectRejected(tampered_verdict, v1::EXTRA_DATA_MISMATCH);
  EXPECT_NE(tampered_verdict.evidence_sha256(), latest->verdict().evidence_sha256());

  // (c) No quote at all.
  ASSERT_TRUE(client.NextChallenge(&challenge));
  v1::Evidence unquoted = real;
  unquoted.set_nonce(challenge.nonce());
  unquoted.clear_quote();
  ExpectRejected(client.Send(unquoted), v1::EVIDENCE_UNQUOTED);

  // (d) The real evidence as it was sent: its nonce was never issued on this stream.
  ASSERT_TRUE(client.NextChallenge(&challenge));
  ExpectRejected(client.Send(real), v1::NONCE_UNKNOWN);
}

TEST(TpmFabricTest, NodeBinaryMissingFromReferenceValuesIsUnknownMeasurement) {
  Fabric::Options options;
  options.omit_node_binary_reference = true;
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNode().ok());
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_REJECTED);
  ASSERT_TRUE(node_id.ok()) << node_id.status();
  absl::StatusOr<v1::GetLatestEvidenceResponse> latest = f.LatestEvidence(*node_id);
  ASSERT_TRUE(latest.ok()) << latest.status();
  ExpectRejected(latest->verdict(), v1::UNKNOWN_MEASUREMENT);
  // The entry named is the node binary's measurement.
  absl::StatusOr<std::string> binary =
      ReadFileToString(absl::StrCat(vigil::testing::BuildDir(), "/node/vigil-node"));
  ASSERT_TRUE(binary.ok()) << binary.status();
  EXPECT_NE(latest->verdict().detail().find(HexEncode(Sha256(*binary))), std::string::npos)
      << latest->verdict().detail();
}

}  // namespace
}  // namespace vigil
