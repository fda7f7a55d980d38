// Declared workload scope: the policy section (model and line:col errors), the assignment of
// observed scopes to workloads, and the scope rule's outcomes.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/policy/engine.h"
#include "common/policy/parser.h"
#include "common/policy/scope.h"
#include "tests/common/policy/policy_test_util.h"

namespace vigil::policy {
namespace {

using testing::CompliantReport;

constexpr char kPolicy[] = R"(apiVersion: vigil.dev/v1
kind: RuntimePolicy
metadata: {name: scoped, revision: 2}
spec:
  workloads:
    - name: agent
      selectors: ["exe=/opt/agent/*"]
      scope:
        component:
          title: Report agent
          description: Summarises tickets.
        executables: [/opt/agent/bin/*, /usr/bin/curl]
        interpreters: [python]
        library_roots: [/usr/lib/x86_64-linux-gnu/, /opt/agent/lib]
        storage: [/var/lib/agent/*]
        endpoints:
          - {direction: outbound, protocol: tcp, address: 10.0.0.0/8, ports: [443]}
          - {direction: listen, address: /run/agent/*.sock}
        config: [/etc/agent/*.yaml]
        secrets: [/run/secrets/agent-*]
  rules:
    - id: within-scope
      kind: scope
      grade: warning
)";

Policy Parse(const std::string& yaml) {
  absl::StatusOr<std::vector<Policy>> p = ParsePoliciesOrError(yaml, "scoped.yaml");
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok() || p->size() != 1) return Policy{};
  return p->front();
}

std::vector<std::string> Diagnostics(const std::string& yaml) {
  std::vector<std::string> out;
  for (const Diagnostic& d : ParsePolicies(yaml, "p.yaml").diagnostics) {
    out.push_back(d.ToString());
  }
  return out;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// A scope of the compliant process (pid 100, /opt/agent/bin/agent) using only what kPolicy
// declares, each declared item once.
v1::WorkloadScope WithinScope() {
  v1::WorkloadScope s;
  s.set_root_exe_path("/opt/agent/bin/agent");
  s.set_cgroup("/system.slice/agent.service");
  s.add_matched_by("exe=/opt/agent/*");
  s.set_root_pid(100);
  s.set_first_seen_unix_nano(1'700'000'000'000'000'000);
  s.set_last_seen_unix_nano(1'700'000'060'000'000'000);
  v1::ScopeExecutable* agent = s.add_executables();
  agent->set_path("/opt/agent/bin/agent");
  agent->set_sha256(std::string(64, 'a'));
  agent->set_exec_count(1);
  v1::ScopeExecutable* curl = s.add_executables();
  curl->set_path("/usr/bin/curl");
  curl->mutable_package()->set_name("curl");
  curl->mutable_package()->set_version("7.88.1-10+deb12u5");
  curl->mutable_package()->set_architecture("amd64");
  v1::ScopeInterpreter* py = s.add_interpreters();
  py->set_kind("python");
  py->set_executable("/usr/bin/python3.11");
  py->set_recognised_by("executable");
  s.add_libraries()->set_path("/usr/lib/x86_64-linux-gnu/libc.so.6");
  s.add_libraries()->set_path("/opt/agent/lib/libagent.so");
  v1::ScopeStorage* st = s.add_storage();
  st->set_directory("/var/lib/agent/state");
  st->add_files("cache.db");
  st->add_files("cache.db-wal");
  v1::SqliteDatabase* db = st->add_sqlite_databases();
  db->set_name("cache.db");
  db->add_companions("-wal");
  v1::ScopeEndpoint* out = s.add_endpoints();
  out->set_direction("outbound");
  out->set_protocol("tcp6");
  out->set_address("::ffff:10.1.2.3");
  out->set_port(443);
  v1::ScopeEndpoint* listen = s.add_endpoints();
  listen->set_direction("listen");
  listen->set_protocol("unix");
  listen->set_address("/run/agent/api.sock");
  v1::ScopeFileRead* config = s.add_files_read();
  config->set_path("/etc/agent/agent.yaml");
  config->set_classification("config");
  v1::ScopeFileRead* secret = s.add_files_read();
  secret->set_path("/run/secrets/agent-token");
  secret->set_classification("secret");
  secret->set_mode(0600);
  return s;
}

std::vector<v1::RuleOutcome> Outcomes(const v1::RuntimeReport& report,
                                      const Policy& policy = Parse(kPolicy)) {
  std::vector<v1::WorkloadVerdict> v = Evaluate({policy}, report);
  EXPECT_EQ(v.size(), 1u);
  if (v.size() != 1) return {};
  return {v[0].rules().begin(), v[0].rules().end()};
}

v1::TrustStatus WorkloadStatus(const v1::RuntimeReport& report) {
  std::vector<v1::WorkloadVerdict> v = Evaluate({Parse(kPolicy)}, report);
  return v.size() == 1 ? v[0].status() : v1::TRUST_STATUS_UNSPECIFIED;
}

TEST(ScopePolicyTest, BuildsTheDeclaredScopeWithDefaultControls) {
  const Policy p = Parse(kPolicy);
  ASSERT_EQ(p.workloads.size(), 1u);
  ASSERT_TRUE(p.workloads[0].scope.has_value());
  const DeclaredScope& s = *p.workloads[0].scope;
  EXPECT_EQ(s.component_title, "Report agent");
  EXPECT_EQ(s.component_description, "Summarises tickets.");
  EXPECT_EQ(s.executables, (std::vector<std::string>{"/opt/agent/bin/*", "/usr/bin/curl"}));
  EXPECT_EQ(s.interpreters, std::vector<std::string>{"python"});
  // A trailing '/' on a root is dropped.
  EXPECT_EQ(s.library_roots,
            (std::vector<std::string>{"/usr/lib/x86_64-linux-gnu", "/opt/agent/lib"}));
  ASSERT_EQ(s.endpoints.size(), 2u);
  EXPECT_TRUE(s.endpoints[0].cidr.has_value());
  EXPECT_EQ(s.endpoints[0].ports, (std::vector<std::pair<uint32_t, uint32_t>>{{443, 443}}));
  EXPECT_FALSE(s.endpoints[1].cidr.has_value());
  EXPECT_EQ(s.secrets, std::vector<std::string>{"/run/secrets/agent-*"});
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].kind, RuleKind::kScope);
  EXPECT_EQ(p.rules[0].controls, DefaultScopeControls());
  // The issue's controls, every one through the catalogue (ISO 2022 with its 2013 numbers).
  EXPECT_EQ(DefaultScopeControls(),
            (std::vector<std::string>{
                "NIST-800-53r5:CM-7", "NIST-800-53r5:CM-8", "NIST-800-53r5:CM-8(3)",
                "NIST-800-53r5:SA-9", "NIST-800-53r5:SC-7", "NIST-800-53r5:SI-7",
                "ISO27001:2022:A.5.9", "ISO27001:2013:A.8.1.1", "ISO27001:2013:A.8.1.2",
                "ISO27001:2022:A.8.9", "ISO27001:2022:A.8.19", "ISO27001:2013:A.12.5.1",
                "ISO27001:2013:A.12.6.2", "SOC2:CC6.1", "SOC2:CC6.8", "SOC2:CC8.1"}));
}

TEST(ScopePolicyTest, NamedControlsReplaceTheDefaults) {
  const Policy p = Parse(Replace(kPolicy, "      grade: warning\n",
                                 "      grade: warning\n      controls: {nist_800_53: [CM-8]}\n"));
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].controls, std::vector<std::string>{"NIST-800-53r5:CM-8"});
}

struct ErrorCase {
  const char* name;
  std::string yaml;
  std::vector<std::string> diagnostics;
};

class ScopePolicyErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ScopePolicyErrorTest, ReportsTheProblemWithItsPosition) {
  EXPECT_EQ(Diagnostics(GetParam().yaml), GetParam().diagnostics);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ScopePolicyErrorTest,
    ::testing::Values(
        ErrorCase{
            "UnknownScopeKey",
            Replace(kPolicy, "        storage:", "        storge: [/tmp/*]\n        storage:"),
            {"p.yaml:15:9: error: unknown key 'storge' in scope (expected one of: "
             "component, executables, interpreters, library_roots, storage, endpoints, "
             "config, secrets)"}},
        ErrorCase{"ComponentWithoutTitle",
                  Replace(kPolicy, "          title: Report agent\n", ""),
                  {"p.yaml:10:11: error: 'title' is required"}},
        ErrorCase{"RelativePattern",
                  Replace(kPolicy, "[/var/lib/agent/*]", "[var/lib/*]"),
                  {"p.yaml:15:18: error: scope.storage: 'var/lib/*' must be an absolute path "
                   "or start with '*'"}},
        ErrorCase{"BadEndpoint",
                  Replace(Replace(kPolicy, "direction: outbound", "direction: out"),
                          "address: /run/agent/*.sock", "address: 10.0.0.1/33"),
                  {"p.yaml:17:25: error: direction must be listen or outbound",
                   "p.yaml:18:42: error: '10.0.0.1/33': prefix length must be 0 to 32"}},
        ErrorCase{"UppercaseInterpreter",
                  Replace(kPolicy, "[python]", "[Python]"),
                  {"p.yaml:13:23: error: interpreter kind 'Python' must be lowercase (python, "
                   "perl, ruby, node, lua, sh, bash, java, wasm, ...)"}},
        ErrorCase{"ScopeRuleOnAWorkloadWithoutScope",
                  Replace(kPolicy, "  rules:\n",
                          "    - name: other\n      selectors: [\"exe=/opt/other/*\"]\n  rules:\n"),
                  {"p.yaml:24:7: error: scope rule 'within-scope' applies to workload 'other', "
                   "which declares no scope (workloads[].scope)"}}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

TEST(ScopeRuleTest, AffirmsAWorkloadWithinItsScope) {
  v1::RuntimeReport r = CompliantReport();
  *r.add_scopes() = WithinScope();
  std::vector<v1::RuleOutcome> o = Outcomes(r);
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(o[0].kind(), "scope");
  EXPECT_EQ(o[0].rule_id(), "within-scope");
  EXPECT_EQ(o[0].reason(), "every observed item is within the declared scope");
  EXPECT_EQ(o[0].observed(), "10 observed item(s), all declared");
  EXPECT_EQ(o[0].controls_size(), static_cast<int>(DefaultScopeControls().size()));
  EXPECT_EQ(WorkloadStatus(r), v1::TRUST_AFFIRMING);
}

TEST(ScopeRuleTest, EachItemOutsideIsAFindingOfTheRulesGrade) {
  v1::RuntimeReport r = CompliantReport();
  v1::WorkloadScope* s = r.add_scopes();
  *s = WithinScope();
  v1::ScopeExecutable* wget = s->add_executables();
  wget->set_path("/usr/bin/wget\n");
  wget->mutable_package()->set_name("wget");
  wget->mutable_package()->set_version("1.21.3-1+b2");
  wget->set_exec_count(2);
  v1::ScopeInterpreter* perl = s->add_interpreters();
  perl->set_kind("perl");
  perl->set_executable("/usr/bin/perl");
  perl->set_recognised_by("executable");
  perl->add_scripts("/tmp/x.pl");
  s->add_libraries()->set_path("/tmp/libevil.so");
  v1::ScopeStorage* st = s->add_storage();
  st->set_directory("/home/agent/.cache");
  st->add_files("notes.db");
  st->add_files("notes.db-journal");
  v1::ScopeEndpoint* e = s->add_endpoints();
  e->set_direction("outbound");
  e->set_protocol("tcp");
  e->set_address("203.0.113.9");
  e->set_port(443);
  e->set_count(3);
  v1::ScopeFileRead* f = s->add_files_read();
  f->set_path("/root/.aws/credentials");
  f->set_classification("secret");
  f->set_reason("pattern:*/.aws/credentials");
  f->set_mode(0600);
  f->set_count(1);
  v1::ScopeFileRead* c = s->add_files_read();
  c->set_path("/etc/other.conf");
  c->set_classification("config");
  std::vector<v1::RuleOutcome> o = Outcomes(r);
  ASSERT_EQ(o.size(), 7u);
  for (const v1::RuleOutcome& x : o) {
    EXPECT_EQ(x.status(), v1::TRUST_WARNING) << x.reason();
    EXPECT_EQ(x.kind(), "scope");
    EXPECT_FALSE(x.expected().empty());
  }
  EXPECT_EQ(o[0].reason(),
            "the workload runs an executable outside its declared scope: '/usr/bin/wget\\n' "
            "(wget@1.21.3-1+b2, 2 exec(s), sha256 unknown)");
  EXPECT_EQ(o[0].expected(), "executables: '/opt/agent/bin/*', '/usr/bin/curl'");
  EXPECT_EQ(o[1].observed(),
            "'perl' interpreter '/usr/bin/perl' (unpackaged, recognised by 'executable', ran "
            "'/tmp/x.pl')");
  EXPECT_EQ(o[1].expected(), "interpreters: python");
  EXPECT_EQ(o[2].observed(), "'/tmp/libevil.so' (unpackaged)");
  EXPECT_EQ(o[3].observed(),
            "directory '/home/agent/.cache': 2 path(s) written outside: "
            "'/home/agent/.cache/notes.db', '/home/agent/.cache/notes.db-journal'");
  EXPECT_EQ(o[4].observed(), "'outbound' 'tcp' '203.0.113.9' port 443 (3 time(s))");
  EXPECT_EQ(o[5].observed(),
            "secret '/root/.aws/credentials' (mode 0600, 'pattern:*/.aws/credentials', 1 "
            "read(s))");
  EXPECT_EQ(o[5].expected(), "secrets: '/run/secrets/agent-*'");
  EXPECT_EQ(o[6].expected(), "config: '/etc/agent/*.yaml'");
  EXPECT_EQ(WorkloadStatus(r), v1::TRUST_WARNING);
}

TEST(ScopeRuleTest, DeclaredItemsNeverSeenAreInformationalOnly) {
  v1::RuntimeReport r = CompliantReport();
  v1::WorkloadScope* s = r.add_scopes();
  *s = WithinScope();
  s->clear_interpreters();
  s->clear_files_read();
  std::vector<v1::RuleOutcome> o = Outcomes(r);
  ASSERT_EQ(o.size(), 4u);
  EXPECT_EQ(o[0].reason(), "informational: declared interpreter 'python' was not observed");
  EXPECT_EQ(o[1].reason(),
            "informational: declared config path '/etc/agent/*.yaml' was not observed");
  EXPECT_EQ(o[2].reason(),
            "informational: declared secret path '/run/secrets/agent-*' was not observed");
  EXPECT_EQ(o[3].reason(), "every observed item is within the declared scope");
  for (const v1::RuleOutcome& x : o) EXPECT_EQ(x.status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(WorkloadStatus(r), v1::TRUST_AFFIRMING);
}

TEST(ScopeRuleTest, TruncationIsAFindingAndGapsAWarning) {
  v1::RuntimeReport r = CompliantReport();
  v1::WorkloadScope* s = r.add_scopes();
  *s = WithinScope();
  (*s->mutable_truncated())["libraries"] = 12;
  s->add_gaps("file events: tracepoint refused");
  std::vector<v1::RuleOutcome> o = Outcomes(r);
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0].status(), v1::TRUST_WARNING);  // the rule's grade
  EXPECT_EQ(o[0].reason(),
            "the node left out 12 'libraries' item(s) at its bound: the workload's boundary "
            "cannot be stated");
  EXPECT_EQ(o[1].status(), v1::TRUST_WARNING);
  EXPECT_EQ(o[1].reason(),
            "the node could not observe part of the scope: 'file events: tracepoint refused'");
}

TEST(ScopeRuleTest, ANodeWithoutScopesIsAWarningNotAPass) {
  v1::RuntimeReport r = CompliantReport();
  std::vector<v1::RuleOutcome> o = Outcomes(r);
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].status(), v1::TRUST_WARNING);
  EXPECT_EQ(o[0].reason(),
            "the node reported no workload scope (a node without scope observation): the "
            "boundary cannot be stated");
}

TEST(ScopeRuleTest, FindingsAreCappedWithASummary) {
  v1::RuntimeReport r = CompliantReport();
  v1::WorkloadScope* s = r.add_scopes();
  *s = WithinScope();
  for (int i = 0; i < 70; ++i) s->add_executables()->set_path("/tmp/x" + std::to_string(i));
  std::vector<v1::RuleOutcome> o = Outcomes(r);
  ASSERT_EQ(o.size(), 65u);
  EXPECT_EQ(o[64].reason(), "6 more findings of this rule");
  EXPECT_EQ(o[64].status(), v1::TRUST_WARNING);
}

TEST(ScopePlacementTest, AScopeJoinsTheWorkloadOfItsRunningRoot) {
  const Policy p = Parse(kPolicy);
  v1::RuntimeReport r = CompliantReport();
  *r.add_scopes() = WithinScope();
  const ScopePlacement placed = PlaceScope(p, r, r.scopes(0));
  ASSERT_EQ(placed.workload, 0);
  std::vector<v1::WorkloadVerdict> v = Evaluate({p}, r);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(placed.workload_id, v[0].workload_id());
  EXPECT_EQ(placed.identity.name(), "agent");
}

TEST(ScopePlacementTest, AScopeWhoseRootExitedIsAppraisedByTheScopeRuleAlone) {
  Policy p = Parse(kPolicy);
  v1::RuntimeReport r = CompliantReport();
  r.clear_processes();
  v1::WorkloadScope* s = r.add_scopes();
  *s = WithinScope();
  s->set_root_pid(0);
  s->add_executables()->set_path("/usr/bin/nc");
  std::vector<v1::WorkloadVerdict> v = Evaluate({p}, r);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].pids_size(), 0);
  EXPECT_EQ(v[0].identity().exe_path(), "/opt/agent/bin/agent");
  EXPECT_EQ(v[0].workload_id(), PlaceScope(p, r, *s).workload_id);
  ASSERT_EQ(v[0].rules_size(), 1u);
  EXPECT_EQ(v[0].rules(0).kind(), "scope");
  EXPECT_EQ(v[0].status(), v1::TRUST_WARNING);
  // The same identity as when the root runs: history lines up.
  v1::RuntimeReport running = CompliantReport();
  *running.add_scopes() = WithinScope();
  EXPECT_EQ(Evaluate({p}, running)[0].workload_id(), v[0].workload_id());
}

TEST(ScopePlacementTest, AScopeNoSelectorMatchesBelongsNowhere) {
  const Policy p = Parse(kPolicy);
  v1::RuntimeReport r = CompliantReport();
  v1::WorkloadScope* s = r.add_scopes();
  s->set_root_exe_path("/usr/sbin/cron");
  s->set_root_pid(4242);
  EXPECT_EQ(PlaceScope(p, r, *s).workload, -1);
  // The agent's own workload gets no scope, and says so.
  std::vector<v1::RuleOutcome> o = Outcomes(r, p);
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].reason(),
            "the report carries no observed scope for this workload: its boundary cannot be "
            "stated");
}

}  // namespace
}  // namespace vigil::policy
