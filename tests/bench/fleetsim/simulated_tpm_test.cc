// The fleet simulator's TPM against the verifier's real enrollment and appraisal: it enrolls
// only through --accept-simulated-tpm, is then recorded as simulated, and its quotes pass every
// check of the real QuoteAppraiser, every verdict marked tpm_simulated with no hardware claim.

#include "bench/fleetsim/simulated_tpm.h"

#include <gtest/gtest.h>

#include <string>

#include "bench/fleetsim/workloads.h"
#include "common/digest.h"
#include "common/enrollment_exchange.h"
#include "common/measurement_log.h"
#include "common/pki.h"
#include "common/tpm/credential.h"
#include "common/tpm/tpm_public.h"
#include "node/tpm/node_tpm.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/temp_dir.h"
#include "verifier/ek_verifier.h"
#include "verifier/enrollment_service.h"
#include "verifier/quote_appraiser.h"
#include "verifier/reference_values.h"
#include "verifier/results/ear_claims.h"
#include "verifier/runtime_appraiser.h"

namespace vigil::fleetsim {
namespace {

using verifier::EkVerifier;

class SimulatedTpmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TestTempDir::Create("simtpm");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
    auto ek_ca = CreateCa("simulated-tpm.test", absl::Hours(1));
    ASSERT_TRUE(ek_ca.ok()) << ek_ca.status();
    ek_ca_ = *std::move(ek_ca);
    sim_ca_path_ = dir_.path() + "/sim-ek-ca.crt";
    ASSERT_TRUE(WritePublicFile(sim_ca_path_, ek_ca_.cert_pem, false).ok());
    auto other = CreateCa("vendor.test", absl::Hours(1));
    ASSERT_TRUE(other.ok());
    vendor_ca_path_ = dir_.path() + "/vendor-ca.crt";
    ASSERT_TRUE(WritePublicFile(vendor_ca_path_, other->cert_pem, false).ok());
    auto ca = CreateCa("vigil.test", absl::Hours(1));
    ASSERT_TRUE(ca.ok());
    ca_ = *std::move(ca);
    auto registry = verifier::NodeRegistry::Open(":memory:");
    ASSERT_TRUE(registry.ok());
    registry_ = *std::move(registry);
  }

  // Enrolls `tpm` with an EK verifier built from `options`: begun at `begin_at` and completed
  // at `complete_at` (replicas sharing a database), both the test's registry by default.
  absl::Status Enroll(SimulatedTpm& tpm, const EkVerifier::Options& options,
                      verifier::NodeRegistry* begin_at = nullptr,
                      verifier::NodeRegistry* complete_at = nullptr) {
    if (begin_at == nullptr) begin_at = registry_.get();
    if (complete_at == nullptr) complete_at = begin_at;
    auto ek = EkVerifier::Create(options, begin_at);
    if (!ek.ok()) return ek.status();
    verifier::Enroller enroller(&ca_, begin_at, ek->get(), {});
    verifier::Enroller completer(&ca_, complete_at, ek->get(), {});
    auto csr = MakeKeyAndCsr("node");
    if (!csr.ok()) return csr.status();
    auto challenge = enroller.Begin(BeginEnrollmentRequestFor(tpm, csr->csr_pem));
    if (!challenge.ok()) return challenge.status();
    auto secret =
        tpm.ActivateCredential(challenge->credential_blob(), challenge->encrypted_secret());
    if (!secret.ok()) return secret.status();
    v1::CompleteEnrollmentRequest complete;
    complete.set_enrollment_id(challenge->enrollment_id());
    complete.set_activated_secret(*secret);
    return completer.Complete(complete).status();
  }

  testing::TestTempDir dir_;
  CaMaterial ek_ca_;
  CaMaterial ca_;
  std::string sim_ca_path_;
  std::string vendor_ca_path_;
  std::unique_ptr<verifier::NodeRegistry> registry_;
};

class SimulatedTpmAlgorithmTest : public SimulatedTpmTest,
                                  public ::testing::WithParamInterface<EkAlgorithm> {};

TEST_P(SimulatedTpmAlgorithmTest, EnrollsAsSimulatedAndItsQuotesPassTheRealAppraiser) {
  auto tpm = SimulatedTpm::Create(GetParam(), ek_ca_);
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  ASSERT_TRUE(Enroll(**tpm, {vendor_ca_path_, false, sim_ca_path_}).ok());
  std::shared_ptr<verifier::NodeState> state = registry_->Find((*tpm)->node_id());
  ASSERT_NE(state, nullptr);
  EXPECT_TRUE(state->node().tpm_simulated);
  EXPECT_FALSE(state->node().ak_qualified_name.empty());

  auto references = verifier::ReferenceValues::Parse(ReferenceValuesYaml(), "fleetsim");
  ASSERT_TRUE(references.ok()) << references.status();
  auto quotes = verifier::QuoteAppraiser::Create(registry_.get(), &*references, nullptr,
                                                 {.measurement_pcr = kMeasurementPcr});
  ASSERT_TRUE(quotes.ok()) << quotes.status();
  verifier::RuntimeAppraiser::Options runtime_options;
  runtime_options.is_tpm_simulated = [this](const std::string& node_id) {
    std::shared_ptr<verifier::NodeState> s = registry_->Find(node_id);
    return s != nullptr && s->node().tpm_simulated;
  };
  verifier::RuntimeAppraiser appraiser(quotes->get(), runtime_options);

  for (const StartMeasurement& m : StartSequence())
    (*tpm)->Measure(m.event_type, m.content, m.digest);
  (*tpm)->Measure(kEventNoPolicy, "no policy bundle", DigestBytes(Sha256(kNoPolicyDigestInput)));
  WorkloadMix mix(0);
  size_t sent = 0;
  for (uint64_t sequence = 1; sequence <= 3; ++sequence) {
    const std::vector<uint32_t> pcrs = {0, 1, 2, 3, 4, 5, 6, 7, kMeasurementPcr};
    std::string nonce(32, static_cast<char>(sequence));
    verifier::IssuedChallenge challenge{nonce, absl::Now() + absl::Minutes(1), pcrs, {}};
    challenge.node_policy_acceptable = true;
    v1::Evidence evidence;
    evidence.set_nonce(nonce);
    evidence.set_payload(mix.Report(0, (*tpm)->node_id(), sequence, "", 3));
    auto quote = (*tpm)->Quote(
        pcrs, DigestBytes(Sha256Concat({nonce, DigestBytes(Sha256(evidence.payload()))})));
    ASSERT_TRUE(quote.ok()) << quote.status();
    *evidence.mutable_quote() = *quote;
    for (; sent < (*tpm)->log().size(); ++sent) *evidence.add_log_entries() = (*tpm)->log()[sent];
    v1::Verdict v = appraiser.Appraise({(*tpm)->node_id(), &challenge, &evidence});
    EXPECT_EQ(v.status(), v1::TRUST_AFFIRMING) << v.detail();
    EXPECT_TRUE(v.tpm_simulated());
    EXPECT_EQ(v.trust_vector().hardware(), 0);
    EXPECT_EQ(v.trust_vector().instance_identity(), 2);
    nlohmann::json claims = verifier::BuildEarClaims(v, {}, absl::Now());
    EXPECT_EQ(claims["vigil.tpm-simulated"], true);
    EXPECT_FALSE(
        claims["submods"]["vigil-node"]["ear.trustworthiness-vector"].contains("hardware"));
  }
}

INSTANTIATE_TEST_SUITE_P(Eks, SimulatedTpmAlgorithmTest,
                         ::testing::Values(EkAlgorithm::kEccP256, EkAlgorithm::kRsa2048));

TEST_F(SimulatedTpmTest, RefusedWithoutTheFlag) {
  auto tpm = SimulatedTpm::Create(EkAlgorithm::kEccP256, ek_ca_);
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  absl::Status refused = Enroll(**tpm, {vendor_ca_path_, false, ""});
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_EQ(registry_->Find((*tpm)->node_id()), nullptr);
}

TEST_F(SimulatedTpmTest, StaysSimulatedWhenItsCaIsAlsoInTheVendorBundle) {
  auto tpm = SimulatedTpm::Create(EkAlgorithm::kEccP256, ek_ca_);
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  ASSERT_TRUE(Enroll(**tpm, {sim_ca_path_, false, sim_ca_path_}).ok());
  std::shared_ptr<verifier::NodeState> state = registry_->Find((*tpm)->node_id());
  ASSERT_NE(state, nullptr);
  EXPECT_TRUE(state->node().tpm_simulated);
}

TEST_F(SimulatedTpmTest, TheMarkCrossesReplicasSharingPostgres) {
  absl::StatusOr<testing::PostgresServer*> server = testing::PostgresServer::Shared();
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<std::string> url = (*server)->CreateDatabase("simtpm");
  ASSERT_TRUE(url.ok()) << url.status();
  auto a = verifier::NodeRegistry::OpenPostgres(*url);
  auto b = verifier::NodeRegistry::OpenPostgres(*url);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  auto tpm = SimulatedTpm::Create(EkAlgorithm::kEccP256, ek_ca_);
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  // Begun at A (the pending enrollment goes through the shared table), completed at B.
  ASSERT_TRUE(Enroll(**tpm, {vendor_ca_path_, false, sim_ca_path_}, a->get(), b->get()).ok());
  ASSERT_NE((*b)->Find((*tpm)->node_id()), nullptr);
  EXPECT_TRUE((*b)->Find((*tpm)->node_id())->node().tpm_simulated);
  (*a)->Refresh((*tpm)->node_id());
  ASSERT_NE((*a)->Find((*tpm)->node_id()), nullptr);
  EXPECT_TRUE((*a)->Find((*tpm)->node_id())->node().tpm_simulated);
}

TEST_F(SimulatedTpmTest, ARealTpmsEkIsNotMarkedSimulated) {
  // A vendor-certified EK (here: one certified by the vendor bundle's CA) with the flag on.
  auto vendor = CreateCa("vendor2.test", absl::Hours(1));
  ASSERT_TRUE(vendor.ok());
  const std::string vendor_path = dir_.path() + "/vendor2.crt";
  ASSERT_TRUE(WritePublicFile(vendor_path, vendor->cert_pem, false).ok());
  auto tpm = SimulatedTpm::Create(EkAlgorithm::kEccP256, *vendor);
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  ASSERT_TRUE(Enroll(**tpm, {vendor_path, false, sim_ca_path_}).ok());
  std::shared_ptr<verifier::NodeState> state = registry_->Find((*tpm)->node_id());
  ASSERT_NE(state, nullptr);
  EXPECT_FALSE(state->node().tpm_simulated);
}

TEST_F(SimulatedTpmTest, ActivationRefusesACredentialForAnotherObject) {
  auto tpm = SimulatedTpm::Create(EkAlgorithm::kEccP256, ek_ca_);
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  auto ek = tpm::ParseTpm2bPublic((*tpm)->ek_public());
  ASSERT_TRUE(ek.ok());
  auto credential = tpm::MakeCredential(*ek, std::string(34, 'n'), "secret");
  ASSERT_TRUE(credential.ok()) << credential.status();
  auto activated =
      (*tpm)->ActivateCredential(credential->credential_blob, credential->encrypted_secret);
  EXPECT_EQ(activated.status().code(), absl::StatusCode::kPermissionDenied) << activated.status();
}

// vigil-node's SRK (swtpm, TPM2_CreatePrimary from node::tpm::SrkTemplate()) and the simulator's
// SRK for the same key are the same public area: the same name, so the simulator's AK
// qualified names (which the verifier checks in every quote) are computed as a TPM's are.
TEST(SimulatedSrkTest, IsThePublicAreaATpmCreatesForTheSameKey) {
  auto swtpm = testing::SwtpmFixture::Start();
  ASSERT_TRUE(swtpm.ok()) << swtpm.status();
  node::tpm::NodeTpm::Options options;
  options.tcti = (*swtpm)->tcti();
  options.state_dir = (*swtpm)->scratch_dir() + "/state";
  auto node = node::tpm::NodeTpm::Open(options);
  ASSERT_TRUE(node.ok()) << node.status();
  auto tpm_srk = tpm::ParseTpm2bPublic((*node)->srk_public());
  ASSERT_TRUE(tpm_srk.ok()) << tpm_srk.status();
  auto key = tpm::PublicKeyOf(tpm_srk->area);
  ASSERT_TRUE(key.ok()) << key.status();

  auto simulated = SimulatedSrkPublic(key->get());
  ASSERT_TRUE(simulated.ok()) << simulated.status();
  EXPECT_EQ(HexEncode(*simulated), HexEncode((*node)->srk_public()));
  auto simulated_srk = tpm::ParseTpm2bPublic(*simulated);
  ASSERT_TRUE(simulated_srk.ok()) << simulated_srk.status();
  auto tpm_name = tpm::ComputeName(*tpm_srk);
  auto simulated_name = tpm::ComputeName(*simulated_srk);
  ASSERT_TRUE(tpm_name.ok() && simulated_name.ok());
  EXPECT_EQ(HexEncode(*simulated_name), HexEncode(*tpm_name));
}

}  // namespace
}  // namespace vigil::fleetsim
