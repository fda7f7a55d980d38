// Policy bundles: canonical bytes, digest, round trip, tampering; node directives.

#include "common/policy/bundle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/digest.h"
#include "common/policy/parser.h"

namespace vigil::policy {
namespace {

std::string PolicyYaml(const std::string& name, int revision, const std::string& extra_rule) {
  return "apiVersion: vigil.dev/v1\n"
         "kind: RuntimePolicy\n"
         "metadata: {name: " +
         name + ", revision: " + std::to_string(revision) +
         "}\n"
         "spec:\n"
         "  workloads:\n"
         "    - {name: w, selectors: [\"exe=/opt/" +
         name +
         "/*\", \"cgroup=/shared/*\"]}\n"
         "  sensitive_files: [{path: /run/secrets/*, classification: secret}]\n"
         "  rules:\n"
         "    - {id: sc, kind: seccomp, deny: [ptrace, bpf], controls: {soc2: [CC6.1]}}\n" +
         extra_rule;
}

std::vector<Policy> Parse(const std::string& yaml) {
  absl::StatusOr<std::vector<Policy>> p = ParsePoliciesOrError(yaml, "b.yaml");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : std::vector<Policy>{};
}

const std::string kZeta = PolicyYaml("zeta", 2, "");
const std::string kAlpha = PolicyYaml(
    "alpha", 5, "    - {id: sc2, kind: seccomp, deny: [mount], controls: {nist_800_53: [CM-7]}}\n");

TEST(PolicyBundleTest, CanonicalContentIsNameOrderedStream) {
  absl::StatusOr<v1::PolicyBundle> b = BuildBundle(Parse(kZeta + "---\n" + kAlpha));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->content(), "---\n" + kAlpha + "---\n" + kZeta);
  EXPECT_EQ(b->sha256(), HexEncode(Sha256(b->content())));
  EXPECT_EQ(std::vector<std::string>(b->policy_ids().begin(), b->policy_ids().end()),
            (std::vector<std::string>{"alpha@5", "zeta@2"}));
}

TEST(PolicyBundleTest, DigestDoesNotDependOnInputOrderOrFiles) {
  std::vector<Policy> one = Parse(kAlpha + "---\n" + kZeta);
  std::vector<Policy> two = Parse(kZeta);
  for (Policy& p : Parse(kAlpha)) two.push_back(p);
  absl::StatusOr<v1::PolicyBundle> a = BuildBundle(one);
  absl::StatusOr<v1::PolicyBundle> b = BuildBundle(two);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->SerializeAsString(), b->SerializeAsString());
  // A pinned digest: the canonical form must not drift between releases.
  absl::StatusOr<v1::PolicyBundle> empty = BuildBundle({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->sha256(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(PolicyBundleTest, RoundTrips) {
  absl::StatusOr<v1::PolicyBundle> b = BuildBundle(Parse(kZeta + "---\n" + kAlpha));
  ASSERT_TRUE(b.ok());
  absl::StatusOr<std::vector<Policy>> back = ParseBundle(*b);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].Id(), "alpha@5");
  EXPECT_EQ((*back)[0].yaml, kAlpha);
  EXPECT_EQ((*back)[1].yaml, kZeta);
  absl::StatusOr<v1::PolicyBundle> again = BuildBundle(*back);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->SerializeAsString(), b->SerializeAsString());
}

TEST(PolicyBundleTest, RefusesTamperedBundles) {
  absl::StatusOr<v1::PolicyBundle> b = BuildBundle(Parse(kAlpha));
  ASSERT_TRUE(b.ok());
  v1::PolicyBundle content = *b;
  content.set_content(content.content() + "# appended\n");
  EXPECT_EQ(ParseBundle(content).status().message(),
            "policy bundle: sha256 is not the digest of its content");
  v1::PolicyBundle ids = *b;
  ids.set_policy_ids(0, "alpha@4");
  EXPECT_EQ(ParseBundle(ids).status().message(),
            "policy bundle: policy_ids [alpha@4] do not match its content [alpha@5]");
  std::vector<Policy> same_name = Parse(kAlpha);
  same_name.push_back(Parse(PolicyYaml("alpha", 6, "")).at(0));
  EXPECT_EQ(BuildBundle(same_name).status().message(), "two policies are named 'alpha'");
}

TEST(PolicyBundleTest, DirectivesCollectSelectorsSyscallsAndFiles) {
  NodeDirectives d = DirectivesOf(Parse(kZeta + "---\n" + kAlpha));
  std::vector<std::string> selectors;
  for (const Selector& s : d.selectors) selectors.push_back(s.name);
  EXPECT_EQ(selectors,
            (std::vector<std::string>{"exe=/opt/zeta/*", "cgroup=/shared/*", "exe=/opt/alpha/*"}));
  EXPECT_EQ(d.seccomp_syscalls, (std::vector<std::string>{"bpf", "mount", "ptrace"}));
  ASSERT_EQ(d.sensitive_files.size(), 1u);
  EXPECT_EQ(d.sensitive_files[0].glob, "/run/secrets/*");
  EXPECT_EQ(d.sensitive_files[0].classification, "secret");
}

}  // namespace
}  // namespace vigil::policy
