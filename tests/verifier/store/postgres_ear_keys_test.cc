// EAR signing keys across replicas: two signers (two replicas, each with its own key directory)
// publish their public keys in one PostgreSQL database, and each one's JWKS verifies the
// other's tokens until the key's grace period (or its lease) ends.
#include "verifier/store/postgres_ear_keys.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/ear_verify.h"
#include "tests/testing/manual_clock.h"
#include "tests/testing/postgres_server.h"
#include "tests/verifier/results/ear_test_util.h"
#include "verifier/results/ear_signer.h"

namespace vigil::verifier {
namespace {

using ::vigil::testing::PostgresServer;

class PostgresEarKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<std::string> url = (*server)->CreateDatabase("ear_keys");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
    ASSERT_FALSE(temp_.path().empty());
  }

  // A replica's signer: its own key directory, its own connection to the shared table.
  struct Replica {
    std::unique_ptr<PostgresEarKeyTable> table;
    std::unique_ptr<EarSigner> signer;
  };

  Replica Open(const std::string& name) {
    Replica r;
    auto table = PostgresEarKeyTable::Open(url_);
    EXPECT_TRUE(table.ok()) << table.status();
    if (!table.ok()) return r;
    r.table = *std::move(table);
    EarSignerConfig config;
    config.key_dir = temp_.path() + "/" + name;
    config.grace = kGrace;
    config.verifier_id = {"vigil", "vigil-verifier 0.1.0"};
    config.published = r.table.get();
    // The lease thread does not run during a test: leases are extended by Publish().
    config.publish_interval = kInterval;
    auto signer = EarSigner::Open(config, [this] { return clock_.Now(); });
    EXPECT_TRUE(signer.ok()) << signer.status();
    if (signer.ok()) r.signer = *std::move(signer);
    return r;
  }

  absl::StatusOr<std::string> Sign(const EarSigner& signer) {
    return signer.SignVerdict(testing::MakeVerdict(clock_.Now()));
  }

  // Opens replica `name`, signs a token with it and stops it.
  struct SignedByStopped {
    std::string kid;
    std::string token;
  };
  absl::StatusOr<SignedByStopped> SignAndStop(const std::string& name) {
    Replica r = Open(name);
    if (r.signer == nullptr) return absl::InternalError("replica did not open");
    absl::StatusOr<std::string> token = Sign(*r.signer);
    if (!token.ok()) return token.status();
    return SignedByStopped{r.signer->current_kid(), *std::move(token)};
  }

  static std::set<std::string> Kids(const EarSigner& signer) {
    std::set<std::string> kids;
    absl::StatusOr<std::string> jwks = signer.Jwks();
    EXPECT_TRUE(jwks.ok()) << jwks.status();
    if (!jwks.ok()) return kids;
    const nlohmann::json parsed = nlohmann::json::parse(*jwks);
    for (const auto& key : parsed["keys"]) {
      kids.insert(key["kid"].get<std::string>());
    }
    return kids;
  }

  static constexpr absl::Duration kGrace = absl::Hours(24);
  static constexpr absl::Duration kInterval = absl::Hours(1);
  std::string url_;
  testing::ScopedTempDir temp_{"ear-keys-pg"};
  testing::AtomicManualClock clock_;
};

TEST_F(PostgresEarKeysTest, ATokenSignedByOneReplicaVerifiesWithTheOthersJwks) {
  Replica a = Open("a");
  clock_.Advance(absl::Seconds(1));  // B's key is the newer one
  Replica b = Open("b");
  ASSERT_NE(a.signer, nullptr);
  ASSERT_NE(b.signer, nullptr);
  ASSERT_NE(a.signer->current_kid(), b.signer->current_kid());

  absl::StatusOr<std::string> from_b = Sign(*b.signer);
  ASSERT_TRUE(from_b.ok()) << from_b.status();
  absl::StatusOr<std::string> jwks_a = a.signer->Jwks();
  ASSERT_TRUE(jwks_a.ok()) << jwks_a.status();
  absl::StatusOr<nlohmann::json> claims = VerifyEarToken(*from_b, *jwks_a);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ((*claims)["eat_profile"], kEarProfile);

  // And the other way round; both JWKS hold both keys, newest first.
  absl::StatusOr<std::string> from_a = Sign(*a.signer);
  ASSERT_TRUE(from_a.ok());
  EXPECT_TRUE(VerifyEarToken(*from_a, b.signer->Jwks().value()).ok());
  const std::set<std::string> both{a.signer->current_kid(), b.signer->current_kid()};
  EXPECT_EQ(Kids(*a.signer), both);
  EXPECT_EQ(Kids(*b.signer), both);
  nlohmann::json keys = nlohmann::json::parse(a.signer->Jwks().value())["keys"];
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0]["kid"], b.signer->current_kid());  // newest first
  // Only public halves are published.
  EXPECT_FALSE(keys[0].contains("d"));
  EXPECT_FALSE(keys[1].contains("d"));
}

TEST_F(PostgresEarKeysTest, ARotatedOutKeyLeavesEveryJwksAfterItsGracePeriod) {
  Replica a = Open("a");
  Replica b = Open("b");
  ASSERT_NE(a.signer, nullptr);
  ASSERT_NE(b.signer, nullptr);
  absl::StatusOr<std::string> old_token = Sign(*b.signer);
  ASSERT_TRUE(old_token.ok());
  const std::string old_kid = b.signer->current_kid();

  clock_.Advance(absl::Hours(2));
  ASSERT_TRUE(b.signer->Rotate().ok());
  absl::StatusOr<std::string> new_token = Sign(*b.signer);
  ASSERT_TRUE(new_token.ok());
  EXPECT_NE(b.signer->current_kid(), old_kid);

  // Within the grace period A's JWKS verifies both of B's tokens.
  clock_.Advance(kGrace - absl::Seconds(1));
  ASSERT_TRUE(a.signer->Publish().ok());
  ASSERT_TRUE(b.signer->Publish().ok());
  EXPECT_TRUE(VerifyEarToken(*old_token, a.signer->Jwks().value()).ok());
  EXPECT_TRUE(VerifyEarToken(*new_token, a.signer->Jwks().value()).ok());

  // After it the retired key is gone from A's JWKS (and B's), the new one still verifies.
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(VerifyEarToken(*old_token, a.signer->Jwks().value()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(VerifyEarToken(*old_token, b.signer->Jwks().value()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(VerifyEarToken(*new_token, a.signer->Jwks().value()).ok());
  EXPECT_EQ(Kids(*a.signer),
            (std::set<std::string>{a.signer->current_kid(), b.signer->current_kid()}));
  // The next write deletes the expired row.
  ASSERT_TRUE(a.signer->Publish().ok());
  absl::StatusOr<int64_t> rows =
      PostgresServer::QueryInt(url_, "SELECT COUNT(*) FROM ear_keys WHERE kid = '" + old_kid + "'");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, 0);
}

TEST_F(PostgresEarKeysTest, AStoppedReplicasKeyLeavesWhenItsLeaseEnds) {
  Replica a = Open("a");
  ASSERT_NE(a.signer, nullptr);
  // B stops without retiring its key: nobody extends its lease any more.
  absl::StatusOr<SignedByStopped> b = SignAndStop("b");
  ASSERT_TRUE(b.ok()) << b.status();
  const std::string& token = b->token;

  // Its last token verifies for a grace period after its last lease extension...
  clock_.Advance(kGrace + kInterval);
  ASSERT_TRUE(a.signer->Publish().ok());
  EXPECT_TRUE(VerifyEarToken(token, a.signer->Jwks().value()).ok());
  // ...and its key is gone once the lease (grace + two intervals) ends.
  clock_.Advance(kInterval);
  ASSERT_TRUE(a.signer->Publish().ok());
  EXPECT_EQ(VerifyEarToken(token, a.signer->Jwks().value()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Kids(*a.signer), std::set<std::string>{a.signer->current_kid()});
}

TEST_F(PostgresEarKeysTest, AReplicaRestartedOnItsKeyDirectoryPublishesTheSameKey) {
  Replica a = Open("a");
  ASSERT_NE(a.signer, nullptr);
  absl::StatusOr<SignedByStopped> stopped = SignAndStop("b");
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  clock_.Advance(kGrace + 3 * kInterval);  // its lease ended while it was down
  EXPECT_EQ(Kids(*a.signer).count(stopped->kid), 0u);
  Replica b = Open("b");
  ASSERT_NE(b.signer, nullptr);
  EXPECT_EQ(b.signer->current_kid(), stopped->kid);
  EXPECT_TRUE(VerifyEarToken(stopped->token, a.signer->Jwks().value()).ok());
}

TEST_F(PostgresEarKeysTest, JwksIsUnavailableWhileTheDatabaseIsDown) {
  Replica a = Open("a");
  ASSERT_NE(a.signer, nullptr);
  absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Stop().ok());
  absl::StatusOr<std::string> jwks = a.signer->Jwks();
  ASSERT_TRUE((*server)->Start().ok());
  // A JWKS without the other replicas' keys would refuse their tokens: none is served.
  EXPECT_EQ(jwks.status().code(), absl::StatusCode::kUnavailable) << jwks.status();
  // Once the server is back the connection is made again.
  EXPECT_TRUE(a.signer->Jwks().ok());
}

}  // namespace
}  // namespace vigil::verifier
