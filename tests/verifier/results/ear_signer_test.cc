#include "verifier/results/ear_signer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/ear_verify.h"
#include "tests/testing/build_paths.h"
#include "tests/verifier/results/ear_test_util.h"

namespace vigil::verifier {
namespace {

using testing::ManualClock;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class EarSignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(temp_.path().empty());
    dir_ = temp_.path();
    config_.key_dir = dir_ + "/keys";
    config_.max_key_age = absl::Hours(24 * 30);
    config_.grace = absl::Hours(24);
    config_.verifier_id = {"vigil", "vigil-verifier 0.1.0"};
  }

  absl::StatusOr<std::unique_ptr<EarSigner>> Open() {
    return EarSigner::Open(config_, [this] { return clock_.Now(); });
  }

  std::vector<std::string> KeyFiles() const {
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(config_.key_dir)) {
      files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  testing::ScopedTempDir temp_{"ear-signer"};
  std::string dir_;
  EarSignerConfig config_;
  ManualClock clock_{absl::FromUnixSeconds(1'800'000'000)};
};

TEST_F(EarSignerTest, SignsAVerdictThatVerifiesWithItsJwks) {
  auto signer = Open();
  ASSERT_TRUE(signer.ok()) << signer.status();
  v1::Verdict verdict = testing::MakeVerdict(clock_.Now());
  auto token = (*signer)->SignVerdict(verdict);
  ASSERT_TRUE(token.ok()) << token.status();
  auto claims = VerifyEarToken(*token, (*signer)->Jwks().value());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(*claims, BuildEarClaims(verdict, config_.verifier_id, clock_.Now()));
}

TEST_F(EarSignerTest, JwksPublishesEs256SigningKeysByThumbprint) {
  auto signer = Open();
  ASSERT_TRUE(signer.ok()) << signer.status();
  nlohmann::json jwks = nlohmann::json::parse((*signer)->Jwks().value());
  ASSERT_EQ(jwks["keys"].size(), 1u);
  const nlohmann::json& key = jwks["keys"][0];
  EXPECT_EQ(key["kty"], "EC");
  EXPECT_EQ(key["crv"], "P-256");
  EXPECT_EQ(key["alg"], "ES256");
  EXPECT_EQ(key["use"], "sig");
  EXPECT_FALSE(key.contains("d"));
  EXPECT_EQ(key["kid"], *JwkThumbprint(key));
  EXPECT_EQ(key["kid"], (*signer)->current_kid());
}

TEST_F(EarSignerTest, KeyFilesAre0600AndTheDirectory0700) {
  auto signer = Open();
  ASSERT_TRUE(signer.ok()) << signer.status();
  ASSERT_TRUE((*signer)->Rotate().ok());
  EXPECT_EQ(ModeOf(config_.key_dir), 0700u);
  std::vector<std::string> files = KeyFiles();
  ASSERT_EQ(files.size(), 2u);
  for (const std::string& f : files) {
    EXPECT_EQ(ModeOf(f), 0600u) << f;
    EXPECT_EQ(f.substr(f.size() - 4), ".pem");
  }
}

TEST_F(EarSignerTest, KeysAre0600EvenUnderAPermissiveUmask) {
  mode_t old = umask(0);
  auto signer = Open();
  umask(old);
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ(ModeOf(config_.key_dir), 0700u);
  for (const std::string& f : KeyFiles()) EXPECT_EQ(ModeOf(f), 0600u) << f;
}

TEST_F(EarSignerTest, RefusesADirectoryOthersCanRead) {
  ASSERT_EQ(mkdir(config_.key_dir.c_str(), 0755), 0);
  ASSERT_EQ(chmod(config_.key_dir.c_str(), 0755), 0);
  auto signer = Open();
  EXPECT_EQ(signer.status().code(), absl::StatusCode::kFailedPrecondition) << signer.status();
}

TEST_F(EarSignerTest, RefusesAKeyFileOthersCanRead) {
  ASSERT_TRUE(Open().ok());
  std::string key = KeyFiles().at(0);
  ASSERT_EQ(chmod(key.c_str(), 0644), 0);
  auto signer = Open();
  EXPECT_EQ(signer.status().code(), absl::StatusCode::kFailedPrecondition) << signer.status();
}

TEST_F(EarSignerTest, ReopeningKeepsTheSigningKey) {
  std::string kid;
  {
    auto signer = Open();
    ASSERT_TRUE(signer.ok()) << signer.status();
    kid = (*signer)->current_kid();
  }
  clock_.Advance(absl::Hours(1));
  auto signer = Open();
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ((*signer)->current_kid(), kid);
  EXPECT_EQ(KeyFiles().size(), 1u);
}

TEST_F(EarSignerTest, RotatesOnOpenWhenTheKeyIsTooOld) {
  std::string kid;
  {
    auto signer = Open();
    ASSERT_TRUE(signer.ok()) << signer.status();
    kid = (*signer)->current_kid();
  }
  clock_.Advance(config_.max_key_age + absl::Seconds(1));
  auto signer = Open();
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_NE((*signer)->current_kid(), kid);
  // The old key is in its grace period: still published.
  nlohmann::json jwks = nlohmann::json::parse((*signer)->Jwks().value());
  ASSERT_EQ(jwks["keys"].size(), 2u);
  EXPECT_EQ(jwks["keys"][0]["kid"], (*signer)->current_kid());
  EXPECT_EQ(jwks["keys"][1]["kid"], kid);
}

TEST_F(EarSignerTest, RotationKeepsOldTokensVerifiableForTheGracePeriodOnly) {
  auto opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EarSigner& signer = **opened;
  v1::Verdict verdict = testing::MakeVerdict(clock_.Now());
  auto old_token = signer.SignVerdict(verdict);
  ASSERT_TRUE(old_token.ok());
  std::string old_kid = signer.current_kid();

  clock_.Advance(absl::Hours(2));
  ASSERT_TRUE(signer.Rotate().ok());
  EXPECT_NE(signer.current_kid(), old_kid);
  auto new_token = signer.SignVerdict(verdict);
  ASSERT_TRUE(new_token.ok());

  // Within the grace period both verify.
  clock_.Advance(config_.grace - absl::Seconds(1));
  EXPECT_TRUE(VerifyEarToken(*old_token, signer.Jwks().value()).ok());
  EXPECT_TRUE(VerifyEarToken(*new_token, signer.Jwks().value()).ok());
  EXPECT_EQ(KeyFiles().size(), 2u);

  // After it the old key is gone from the JWKS, and from disk at the next rotation.
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(VerifyEarToken(*old_token, signer.Jwks().value()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(VerifyEarToken(*new_token, signer.Jwks().value()).ok());
  ASSERT_TRUE(signer.Rotate().ok());
  EXPECT_EQ(KeyFiles().size(), 2u);  // the previous signing key (in grace) and the new one
  EXPECT_EQ(nlohmann::json::parse(signer.Jwks().value())["keys"].size(), 2u);
}

TEST_F(EarSignerTest, RotatingTwiceAtTheSameInstantMakesDistinctKeys) {
  auto signer = Open();
  ASSERT_TRUE(signer.ok()) << signer.status();
  ASSERT_TRUE((*signer)->Rotate().ok());
  ASSERT_TRUE((*signer)->Rotate().ok());
  EXPECT_EQ(KeyFiles().size(), 3u);
  EXPECT_EQ(nlohmann::json::parse((*signer)->Jwks().value())["keys"].size(), 3u);
}

TEST_F(EarSignerTest, PyJwtVerifiesTheTokenWithTheJwksIndependently) {
  auto signer = Open();
  ASSERT_TRUE(signer.ok()) << signer.status();
  ASSERT_TRUE((*signer)->Rotate().ok());  // two keys: the kid must select the right one
  v1::Verdict verdict = testing::MakeVerdict(clock_.Now());
  auto token = (*signer)->SignVerdict(verdict);
  ASSERT_TRUE(token.ok());
  testing::WriteFile(dir_ + "/token", *token);
  testing::WriteFile(dir_ + "/jwks.json", (*signer)->Jwks().value());
  std::string script = vigil::testing::SourceDir() + "/tests/verifier/results/ear_pyjwt_check.py";
  std::string command =
      absl::StrCat(testing::kSystemPython, " ", script, " ", dir_, "/token ", dir_, "/jwks.json");

  testing::CommandResult ok = testing::RunCommand(command);
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_EQ(nlohmann::json::parse(ok.out),
            BuildEarClaims(verdict, config_.verifier_id, clock_.Now()));

  // The same check refuses a token whose payload was changed.
  std::string tampered = *token;
  size_t dot = tampered.find('.');
  tampered[dot + 5] = tampered[dot + 5] == 'A' ? 'B' : 'A';
  testing::WriteFile(dir_ + "/token", tampered);
  EXPECT_EQ(testing::RunCommand(command).exit_code, 1);
}

// The claim set itself.

TEST(EarClaimsTest, HasTheVeraisonProfileAndOneSubmodPerWorkloadPlusTheNode) {
  absl::Time iat = absl::FromUnixSeconds(1'800'000'000);
  nlohmann::json claims = BuildEarClaims(testing::MakeVerdict(iat), {"vigil", "b1"}, iat);
  EXPECT_EQ(claims["eat_profile"], "tag:github.com,2023:veraison/ear");
  EXPECT_EQ(claims["iat"], 1'800'000'000);
  EXPECT_EQ(claims["ear.verifier-id"], (nlohmann::json{{"developer", "vigil"}, {"build", "b1"}}));
  EXPECT_EQ(claims["vigil.node-id"], "node-1");
  EXPECT_EQ(claims["vigil.evidence-sha256"], std::string(64, 'a'));
  const nlohmann::json& submods = claims["submods"];
  ASSERT_EQ(submods.size(), 3u);

  const nlohmann::json& node = submods["vigil-node"];
  // configuration 96 in the node's vector makes the node's own submod contraindicated.
  EXPECT_EQ(node["ear.status"], "contraindicated");
  EXPECT_EQ(node["ear.trustworthiness-vector"],
            (nlohmann::json{{"instance-identity", 2}, {"executables", 2}, {"configuration", 96}}));
  EXPECT_EQ(node["ear.appraisal-policy-id"], "sha256:" + std::string(64, 'b'));

  EXPECT_EQ(submods["api"]["ear.status"], "affirming");
  EXPECT_EQ(submods["api"]["ear.trustworthiness-vector"],
            (nlohmann::json{{"configuration", 2}, {"runtime-opaque", 2}}));
  EXPECT_EQ(submods["api"]["ear.appraisal-policy-id"], "api-policy@3");
  EXPECT_EQ(submods["worker"]["ear.status"], "contraindicated");
  EXPECT_EQ(submods["worker"]["ear.trustworthiness-vector"],
            (nlohmann::json{{"configuration", 96}}));
}

TEST(EarClaimsTest, WorkloadsSharingANameAreToldApartByTheirIdPrefix) {
  v1::Verdict v;
  v.set_node_id("n");
  *v.add_workloads() =
      testing::MakeWorkload("web", "aaaaaaaaaaaa1111", v1::TRUST_AFFIRMING, "r", "seccomp", {});
  *v.add_workloads() = testing::MakeWorkload("web", "bbbbbbbbbbbb2222", v1::TRUST_WARNING, "r",
                                             "read_only_root", {});
  *v.add_workloads() = testing::MakeWorkload("vigil-node", "cccccccccccc3333", v1::TRUST_AFFIRMING,
                                             "r", "events", {});
  nlohmann::json submods = BuildEarClaims(v, {}, absl::UnixEpoch())["submods"];
  ASSERT_EQ(submods.size(), 4u);
  EXPECT_EQ(submods["web#aaaaaaaaaaaa"]["ear.status"], "affirming");
  EXPECT_EQ(submods["web#bbbbbbbbbbbb"]["ear.status"], "warning");
  EXPECT_EQ(submods["web#bbbbbbbbbbbb"]["ear.trustworthiness-vector"]["file-system"], 32);
  EXPECT_EQ(submods["vigil-node#cccccccccccc"]["ear.trustworthiness-vector"]["sourced-data"], 2);
  // With nothing to say about the node, its own submod says "none".
  EXPECT_EQ(submods["vigil-node"]["ear.status"], "none");
  EXPECT_EQ(submods["vigil-node"]["ear.trustworthiness-vector"], nlohmann::json::object());
}

TEST(EarClaimsTest, RejectedEvidenceIsContraindicatedWhateverTheVector) {
  v1::Verdict v;
  v.set_status(v1::TRUST_REJECTED);
  v.mutable_trust_vector()->set_instance_identity(2);
  EXPECT_EQ(BuildEarClaims(v, {}, absl::UnixEpoch())["submods"]["vigil-node"]["ear.status"],
            "contraindicated");
  v.set_status(v1::TRUST_UNVERIFIED);
  EXPECT_EQ(BuildEarClaims(v, {}, absl::UnixEpoch())["submods"]["vigil-node"]["ear.status"],
            "warning");
}

TEST(EarClaimsTest, StatusNames) {
  EXPECT_EQ(EarStatusName(v1::TRUST_AFFIRMING), "affirming");
  EXPECT_EQ(EarStatusName(v1::TRUST_WARNING), "warning");
  EXPECT_EQ(EarStatusName(v1::TRUST_CONTRAINDICATED), "contraindicated");
  EXPECT_EQ(EarStatusName(v1::TRUST_REJECTED), "contraindicated");
  EXPECT_EQ(EarStatusName(v1::TRUST_NONE), "none");
  EXPECT_EQ(EarStatusName(v1::TRUST_STATUS_UNSPECIFIED), "none");
}

}  // namespace
}  // namespace vigil::verifier

namespace vigil::verifier {
namespace {

// `vigilctl ear verify`, the built binary, over a token this signer made.
class VigilctlEarVerifyTest : public EarSignerTest {
 protected:
  void SetUp() override {
    EarSignerTest::SetUp();
    auto signer = Open();
    ASSERT_TRUE(signer.ok()) << signer.status();
    auto token = (*signer)->SignVerdict(testing::MakeVerdict(clock_.Now()));
    ASSERT_TRUE(token.ok());
    token_ = *token;
    jwks_path_ = dir_ + "/jwks.json";
    testing::WriteFile(jwks_path_, (*signer)->Jwks().value());
  }

  testing::CommandResult Vigilctl(const std::string& args) {
    return testing::RunCommand(absl::StrCat(vigil::testing::BuildDir(), "/cli/vigilctl ear verify ",
                                            args, " 2>/dev/null"));
  }

  std::string token_;
  std::string jwks_path_;
};

TEST_F(VigilctlEarVerifyTest, PrintsTheClaimsOfAValidTokenAndExitsZero) {
  testing::CommandResult r = Vigilctl(token_ + " --jwks " + jwks_path_);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json claims = nlohmann::json::parse(r.out);
  EXPECT_EQ(claims["vigil.node-id"], "node-1");
  EXPECT_EQ(claims["submods"]["worker"]["ear.status"], "contraindicated");
}

TEST_F(VigilctlEarVerifyTest, ReadsTheTokenFromStdin) {
  testing::WriteFile(dir_ + "/token", token_ + "\n");
  testing::CommandResult r = Vigilctl("- --jwks " + jwks_path_ + " < " + dir_ + "/token");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["vigil.node-id"], "node-1");
}

TEST_F(VigilctlEarVerifyTest, ExitsOneForATamperedToken) {
  std::string tampered = token_;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  testing::CommandResult r = Vigilctl(tampered + " --jwks " + jwks_path_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(VigilctlEarVerifyTest, ExitsTwoForUsageErrors) {
  EXPECT_EQ(Vigilctl(token_).exit_code, 2);                  // no --jwks
  EXPECT_EQ(Vigilctl("--jwks " + jwks_path_).exit_code, 2);  // no token
  EXPECT_EQ(Vigilctl(token_ + " --jwks " + dir_ + "/missing.json").exit_code, 2);
}

}  // namespace
}  // namespace vigil::verifier
