#include "common/spiffe.h"

#include <gtest/gtest.h>

#include <optional>

namespace vigil {
namespace {

struct SpiffeCase {
  std::string uri;
  // Expected parse; nullopt means the URI must be refused.
  std::optional<SpiffeId> expected;
  // What formatting the parse gives, when it is not `uri` itself (older spellings).
  std::string canonical = "";
};

class SpiffeParseTest : public ::testing::TestWithParam<SpiffeCase> {};

TEST_P(SpiffeParseTest, ParsesValidAndRefusesInvalid) {
  const SpiffeCase& c = GetParam();
  absl::StatusOr<SpiffeId> id = ParseSpiffeId(c.uri);
  if (!c.expected.has_value()) {
    EXPECT_FALSE(id.ok()) << c.uri << " parsed as " << id->name;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    return;
  }
  ASSERT_TRUE(id.ok()) << c.uri << ": " << id.status();
  EXPECT_EQ(*id, *c.expected);
  // Formatting what was parsed gives the same URI back (or its canonical spelling).
  absl::StatusOr<std::string> formatted = FormatSpiffeId(*id);
  ASSERT_TRUE(formatted.ok());
  EXPECT_EQ(*formatted, c.canonical.empty() ? c.uri : c.canonical);
}

const std::string kNodeHex = std::string(64, 'a');

INSTANTIATE_TEST_SUITE_P(
    Table, SpiffeParseTest,
    ::testing::Values(
        SpiffeCase{"spiffe://vigil.local/vigil/node/" + kNodeHex,
                   SpiffeId{"vigil.local", SpiffeRole::kNode, kNodeHex}},
        SpiffeCase{"spiffe://example-td_1.org/vigil/operator/ops-team.Alice",
                   SpiffeId{"example-td_1.org", SpiffeRole::kOperator, "ops-team.Alice"}},
        SpiffeCase{"spiffe://td/vigil/auditor/grc", SpiffeId{"td", SpiffeRole::kAuditor, "grc"}},
        SpiffeCase{"spiffe://td/vigil/orchestrator/k8s",
                   SpiffeId{"td", SpiffeRole::kOrchestrator, "k8s"}},
        // The older client spelling is the operator role.
        SpiffeCase{"spiffe://td/vigil/client/ops", SpiffeId{"td", SpiffeRole::kOperator, "ops"},
                   "spiffe://td/vigil/operator/ops"},
        SpiffeCase{"spiffe://td/vigil/node/n1", SpiffeId{"td", SpiffeRole::kNode, "n1"}},
        // Refused: other schemes and case, missing or extra parts.
        SpiffeCase{"https://vigil.local/vigil/node/n1", std::nullopt},
        SpiffeCase{"SPIFFE://vigil.local/vigil/node/n1", std::nullopt},
        SpiffeCase{"spiffe://vigil.local", std::nullopt},
        SpiffeCase{"spiffe:///vigil/node/n1", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil/node/", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil/node/n1/", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil/node/n1/extra", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil//n1", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/other/node/n1", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil/admin/n1", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil/Operator/n1", std::nullopt},
        // Refused: trust domains with ports, user info, upper case.
        SpiffeCase{"spiffe://vigil.local:443/vigil/node/n1", std::nullopt},
        SpiffeCase{"spiffe://user@vigil.local/vigil/node/n1", std::nullopt},
        SpiffeCase{"spiffe://Vigil.Local/vigil/node/n1", std::nullopt},
        // Refused: dot segments, queries, fragments, percent-encoding, overlong names.
        SpiffeCase{"spiffe://vigil.local/vigil/node/..", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil/node/.", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil/node/n1?x=1", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil/node/n1#frag", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil/node/n%31", std::nullopt},
        SpiffeCase{"spiffe://vigil.local/vigil/node/" + std::string(65, 'a'), std::nullopt},
        SpiffeCase{std::string("spiffe://vigil.local/vigil/node/n\0x", 35), std::nullopt}));

TEST(SpiffeFormatTest, RefusesInvalidParts) {
  EXPECT_FALSE(FormatSpiffeId({"", SpiffeRole::kNode, "n1"}).ok());
  EXPECT_FALSE(FormatSpiffeId({"vigil.local", SpiffeRole::kClient, "a/b"}).ok());
  EXPECT_FALSE(FormatSpiffeId({"vigil.local", SpiffeRole::kNode, ""}).ok());
  absl::StatusOr<std::string> ok = FormatSpiffeId({"vigil.local", SpiffeRole::kAuditor, "ops"});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "spiffe://vigil.local/vigil/auditor/ops");
}

TEST(SpiffeRoleTest, ParsesClientRolesOnly) {
  EXPECT_EQ(ParseClientRole("operator").value(), SpiffeRole::kOperator);
  EXPECT_EQ(ParseClientRole("auditor").value(), SpiffeRole::kAuditor);
  EXPECT_EQ(ParseClientRole("orchestrator").value(), SpiffeRole::kOrchestrator);
  EXPECT_FALSE(ParseClientRole("node").ok());
  EXPECT_FALSE(ParseClientRole("client").ok());
  EXPECT_FALSE(ParseClientRole("").ok());
  EXPECT_TRUE(IsClientRole(SpiffeRole::kAuditor));
  EXPECT_FALSE(IsClientRole(SpiffeRole::kNode));
}

}  // namespace
}  // namespace vigil
