// Declared workload scope: the policy section (model and line:col errors), the assignment of
// observed scopes to workloads, and the scope rule's outcomes.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/policy/engine.h"
#include "common/policy/parser.h"
#include "common/policy/scope.h"
#include "tests/common/policy/policy_test_util.h"
#include "tests/testing/build_paths.h"

namespace vigil::policy {
namespace {

using testing::CompliantReport;
using testing::Replace;

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

// deploy/policies/agent-scope.yaml against the demo agents' scopes as docs/demo.md gives
// them (default state directory /var/lib/vigil-demo): the hardened agent within, the naive
// one outside on every item it adds.
Policy AgentScopePolicy() {
  std::ifstream in(vigil::testing::SourceDir() + "/deploy/policies/agent-scope.yaml");
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str());
}

v1::WorkloadScope DemoScope(const std::string& agent, int pid) {
  v1::WorkloadScope s;
  const std::string exe = "/src/build/deploy/demo/vigil-demo-" + agent + "-agent";
  s.set_root_exe_path(exe);
  s.set_root_pid(pid);
  s.add_matched_by("exe=*/vigil-demo-" + agent + "-agent");
  s.add_executables()->set_path(exe);
  for (const char* lib :
       {"libc.so.6", "libstdc++.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2"}) {
    s.add_libraries()->set_path(std::string("/usr/lib/x86_64-linux-gnu/") + lib);
  }
  v1::ScopeStorage* base = s.add_storage();  // the state directories created at start
  base->set_directory("/var/lib");
  base->add_files("vigil-demo/");
  v1::ScopeStorage* dirs = s.add_storage();
  dirs->set_directory("/var/lib/vigil-demo");
  dirs->add_files(agent + "-agent/");
  v1::ScopeFileRead* cache = s.add_files_read();
  cache->set_path("/etc/ld.so.cache");
  cache->set_classification("config");
  return s;
}

TEST(AgentScopePolicyTest, HardenedAgentIsWithinAndNaiveAgentOutside) {
  const Policy policy = AgentScopePolicy();
  ASSERT_EQ(policy.rules.size(), 1u);
  v1::RuntimeReport r = CompliantReport();
  r.clear_processes();
  r.mutable_probes()->add_active_hooks("tracepoint/syscalls/sys_enter_openat");
  v1::WorkloadScope* hardened = r.add_scopes();
  *hardened = DemoScope("hardened", 100);
  v1::ScopeStorage* state = hardened->add_storage();
  state->set_directory("/var/lib/vigil-demo/hardened-agent");
  state->add_files("heartbeat");

  v1::WorkloadScope* naive = r.add_scopes();
  *naive = DemoScope("naive", 200);
  naive->add_libraries()->set_path("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0");
  naive->add_executables()->set_path("/usr/bin/dash");
  naive->add_executables()->set_path("/usr/bin/curl");
  v1::ScopeInterpreter* sh = naive->add_interpreters();
  sh->set_kind("sh");
  sh->set_executable("/usr/bin/dash");
  sh->set_recognised_by("executable");
  sh->add_scripts("-c");
  v1::ScopeStorage* db = naive->add_storage();
  db->set_directory("/var/lib/vigil-demo/naive-agent");
  for (const char* f : {"agent.db", "agent.db-wal", "agent.db-shm", "fetched.txt", "api-token"}) {
    db->add_files(f);
  }
  v1::ScopeFileRead* token = naive->add_files_read();
  token->set_path("/var/lib/vigil-demo/naive-agent/api-token");
  token->set_classification("secret");
  token->set_reason("mode:0600");
  token->set_mode(0600);
  v1::ScopeFileRead* hostname = naive->add_files_read();
  hostname->set_path("/etc/hostname");
  hostname->set_classification("config");

  std::vector<v1::WorkloadVerdict> v = Evaluate({policy}, r);
  ASSERT_EQ(v.size(), 2u);
  ASSERT_EQ(v[0].identity().exe_path(), hardened->root_exe_path());
  EXPECT_EQ(v[0].status(), v1::TRUST_AFFIRMING);
  ASSERT_GE(v[0].rules_size(), 1);
  EXPECT_EQ(v[0].rules(v[0].rules_size() - 1).reason(),
            "every observed item is within the declared scope");

  ASSERT_EQ(v[1].identity().exe_path(), naive->root_exe_path());
  EXPECT_EQ(v[1].status(), v1::TRUST_CONTRAINDICATED);
  std::vector<std::string> findings;
  for (const v1::RuleOutcome& o : v[1].rules()) {
    if (o.status() == v1::TRUST_CONTRAINDICATED) findings.push_back(o.observed());
  }
  EXPECT_EQ(findings,
            (std::vector<std::string>{
                "'/usr/bin/dash' (unpackaged, 0 exec(s), sha256 unknown)",
                "'/usr/bin/curl' (unpackaged, 0 exec(s), sha256 unknown)",
                "'sh' interpreter '/usr/bin/dash' (unpackaged, recognised by 'executable', ran "
                "'-c')",
                // Its state directory itself, created at start, is not declared.
                "directory '/var/lib/vigil-demo': 1 path(s) written outside: "
                "'/var/lib/vigil-demo/naive-agent/'",
                "directory '/var/lib/vigil-demo/naive-agent': 5 path(s) written outside: "
                "'/var/lib/vigil-demo/naive-agent/agent.db', "
                "'/var/lib/vigil-demo/naive-agent/agent.db-wal', "
                "'/var/lib/vigil-demo/naive-agent/agent.db-shm', "
                "'/var/lib/vigil-demo/naive-agent/fetched.txt', "
                "'/var/lib/vigil-demo/naive-agent/api-token'",
                "secret '/var/lib/vigil-demo/naive-agent/api-token' (mode 0600, 'mode:0600', 0 "
                "read(s))",
                "config '/etc/hostname' (mode 0000, '', 0 read(s))"}));
}
}  // namespace
}  // namespace vigil::policy
