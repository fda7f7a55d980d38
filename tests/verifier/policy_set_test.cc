// The verifier's policy set: revisions only move forward, every change gives a bundle that
// earlier evidence can still be matched against, and listeners see changes in order.

#include "verifier/policy_set.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/policy/parser.h"

namespace vigil::verifier {
namespace {

policy::Policy MakePolicy(const std::string& name, uint64_t revision) {
  std::string yaml = absl::StrCat(R"(apiVersion: vigil.dev/v1
kind: RuntimePolicy
metadata:
  name: )",
                                  name, "\n  revision: ", revision, R"(
spec:
  workloads:
    - name: agent
      selectors: [exe=/opt/agents/*]
  rules:
    - id: no-new-privs
      kind: no_new_privs
      controls:
        nist_800_53: [AC-6]
)");
  absl::StatusOr<policy::Policy> p = policy::ParseSinglePolicy(yaml, name + ".yaml");
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

TEST(PolicySetTest, StartsEmptyWithAnEmptyBundle) {
  PolicySet set;
  auto current = set.Current();
  ASSERT_NE(current, nullptr);
  EXPECT_TRUE(current->policies.empty());
  EXPECT_EQ(current->bundle.sha256(), "");
  EXPECT_EQ(set.Find(""), current);
}

TEST(PolicySetTest, PutAddsAndReplacesOnlyWithAGreaterRevision) {
  PolicySet set;
  ASSERT_TRUE(set.Put(MakePolicy("strict", 2)).ok());
  std::string first = set.Current()->bundle.sha256();
  EXPECT_EQ(first.size(), 64u);
  EXPECT_EQ(set.Current()->bundle.policy_ids(0), "strict@2");

  absl::Status same = set.Put(MakePolicy("strict", 2));
  EXPECT_EQ(same.code(), absl::StatusCode::kFailedPrecondition) << same;
  absl::Status older = set.Put(MakePolicy("strict", 1));
  EXPECT_EQ(older.code(), absl::StatusCode::kFailedPrecondition) << older;
  EXPECT_EQ(set.Current()->bundle.sha256(), first);

  ASSERT_TRUE(set.Put(MakePolicy("baseline", 1)).ok());
  ASSERT_TRUE(set.Put(MakePolicy("strict", 3)).ok());
  auto current = set.Current();
  ASSERT_EQ(current->policies.size(), 2u);
  EXPECT_EQ(current->policies[0].name, "baseline");
  EXPECT_EQ(current->bundle.policy_ids(1), "strict@3");
  // The earlier bundle stays findable for evidence that answered a challenge before the change.
  ASSERT_NE(set.Find(first), nullptr);
  EXPECT_EQ(set.Find(first)->policies[0].revision, 2u);
  EXPECT_EQ(set.Find(std::string(64, '0')), nullptr);
}

TEST(PolicySetTest, OldBundlesAreForgottenAfterKeptSnapshotsChanges) {
  PolicySet set;
  ASSERT_TRUE(set.Put(MakePolicy("strict", 1)).ok());
  std::string first = set.Current()->bundle.sha256();
  for (uint64_t r = 2; r <= PolicySet::kKeptSnapshots + 1; ++r) {
    ASSERT_TRUE(set.Put(MakePolicy("strict", r)).ok());
  }
  EXPECT_NE(set.Find(first), nullptr);
  ASSERT_TRUE(set.Put(MakePolicy("strict", PolicySet::kKeptSnapshots + 2)).ok());
  EXPECT_EQ(set.Find(first), nullptr);
}

TEST(PolicySetTest, ResetRefusesDuplicateNamesAndChangesNothing) {
  PolicySet set;
  ASSERT_TRUE(set.Put(MakePolicy("strict", 1)).ok());
  std::string before = set.Current()->bundle.sha256();
  absl::Status st = set.Reset({MakePolicy("a", 1), MakePolicy("a", 2)});
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(set.Current()->bundle.sha256(), before);
}

TEST(PolicySetTest, ListenersSeeEachChangeInOrderUntilRemoved) {
  PolicySet set;
  std::vector<std::string> seen;
  uint64_t id = set.AddListener([&](std::shared_ptr<const PolicySnapshot> s) {
    seen.push_back(absl::StrCat(s->bundle.policy_ids_size() > 0 ? s->bundle.policy_ids(0) : ""));
  });
  ASSERT_TRUE(set.Put(MakePolicy("strict", 1)).ok());
  ASSERT_TRUE(set.Put(MakePolicy("strict", 2)).ok());
  EXPECT_FALSE(set.Put(MakePolicy("strict", 2)).ok());  // refused: no notification
  set.RemoveListener(id);
  ASSERT_TRUE(set.Put(MakePolicy("strict", 3)).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"strict@1", "strict@2"}));
}

}  // namespace
}  // namespace vigil::verifier
