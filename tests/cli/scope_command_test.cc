// `vigilctl scope show|export`: resolving a workload's scope from the latest evidence, the
// tree, and the exports checked by independent readers (python3-jsonschema against the
// OSCAL 1.1 component-definition and CycloneDX 1.5 schemas under testdata/scope, and a
// package URL reader written from the purl specification).

#include "cli/scope_command.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/digest.h"
#include "common/policy/parser.h"
#include "common/policy/scope.h"
#include "tests/cli/fake_fleet.h"
#include "tests/testing/build_paths.h"
#include "tests/verifier/results/ear_test_util.h"

namespace vigil::cli {
namespace {

constexpr char kPolicyYaml[] = R"(apiVersion: vigil.dev/v1
kind: RuntimePolicy
metadata: {name: agents, revision: 4}
spec:
  workloads:
    - name: agent
      selectors: ["exe=*/hardened-agent", "exe=*/naive-agent"]
      scope:
        component: {title: Ticket agent, description: Answers support tickets.}
        executables: ["*/hardened-agent", "*/naive-agent"]
        library_roots: [/usr/lib/x86_64-linux-gnu]
        storage: [/var/lib/agent/*]
  rules:
    - {id: within-scope, kind: scope}
)";

const absl::Time kNow = absl::FromUnixSeconds(1'796'000'000);

v1::PackageRef Pkg(const std::string& name, const std::string& version) {
  v1::PackageRef p;
  p.set_name(name);
  p.set_version(version);
  p.set_architecture("amd64");
  return p;
}

// The naive agent's scope: a shell-out to python and curl, a SQLite WAL database, a secret.
v1::WorkloadScope NaiveScope() {
  v1::WorkloadScope s;
  s.set_root_exe_path("/opt/demo/naive-agent");
  s.set_root_pid(200);
  s.add_matched_by("exe=*/naive-agent");
  s.set_first_seen_unix_nano(1'795'990'000'000'000'000);
  s.set_last_seen_unix_nano(1'795'999'000'000'000'000);
  v1::ScopeProcess* root = s.add_processes();
  root->set_pid(200);
  root->set_ppid(1);
  root->set_exe_path("/opt/demo/naive-agent");
  root->add_exec_lineage("/opt/demo/naive-agent");
  v1::ScopeProcess* child = s.add_processes();
  child->set_pid(201);
  child->set_ppid(200);
  child->set_exe_path("/usr/bin/curl");
  child->add_exec_lineage("/opt/demo/naive-agent");
  child->add_exec_lineage("/usr/bin/curl");
  child->add_cmdline("curl");
  child->add_cmdline("-s");
  child->add_cmdline("http://127.0.0.1:9/");
  child->set_exited_unix_nano(1'795'990'500'000'000'000);
  v1::ScopeExecutable* agent = s.add_executables();
  agent->set_path("/opt/demo/naive-agent");
  agent->set_sha256(std::string(64, 'a'));
  agent->set_exec_count(1);
  v1::ScopeExecutable* curl = s.add_executables();
  curl->set_path("/usr/bin/curl");
  curl->set_sha256(std::string(64, 'c'));
  *curl->mutable_package() = Pkg("curl", "7.88.1-10+deb12u5");
  curl->set_exec_count(3);
  curl->set_first_seen_unix_nano(1'795'990'000'000'000'000);
  curl->set_last_seen_unix_nano(1'795'999'000'000'000'000);
  v1::ScopeExecutable* python = s.add_executables();
  python->set_path("/usr/bin/python3.11");
  python->set_sha256(std::string(64, 'b'));
  *python->mutable_package() = Pkg("python3.11-minimal", "3.11.2-6");
  v1::ScopeInterpreter* py = s.add_interpreters();
  py->set_kind("python");
  py->set_executable("/usr/bin/python3.11");
  py->set_recognised_by("executable");
  py->add_scripts("-c");
  *py->mutable_package() = Pkg("python3.11-minimal", "3.11.2-6");
  v1::ScopeLibrary* libc = s.add_libraries();
  libc->set_path("/usr/lib/x86_64-linux-gnu/libc.so.6");
  libc->set_sha256(std::string(64, 'd'));
  *libc->mutable_package() = Pkg("libc6", "2.36-9+deb12u4");
  v1::ScopeLibrary* vim = s.add_libraries();  // an epoch in the version
  vim->set_path("/usr/lib/x86_64-linux-gnu/libvim.so");
  *vim->mutable_package() = Pkg("vim", "2:9.0.1378-2");
  v1::ScopeStorage* st = s.add_storage();
  st->set_directory("/var/lib/naive-agent");
  st->add_files("memory.db");
  st->add_files("memory.db-wal");
  st->add_files("memory.db-shm");
  st->set_write_count(14);
  v1::SqliteDatabase* db = st->add_sqlite_databases();
  db->set_name("memory.db");
  db->add_companions("-wal");
  db->add_companions("-shm");
  v1::ScopeEndpoint* ep = s.add_endpoints();
  ep->set_direction("outbound");
  ep->set_protocol("tcp");
  ep->set_address("127.0.0.1");
  ep->set_port(9);
  ep->set_count(3);
  v1::ScopeFileRead* secret = s.add_files_read();
  secret->set_path("/etc/naive-agent/api-token");
  secret->set_classification("secret");
  secret->set_reason("mode:0600");
  secret->set_mode(0600);
  secret->set_count(1);
  return s;
}

v1::WorkloadScope HardenedScope() {
  v1::WorkloadScope s;
  s.set_root_exe_path("/opt/demo/hardened-agent");
  s.set_root_pid(100);
  s.add_matched_by("exe=*/hardened-agent");
  s.set_first_seen_unix_nano(1'795'990'000'000'000'000);
  s.set_last_seen_unix_nano(1'795'999'000'000'000'000);
  v1::ScopeExecutable* agent = s.add_executables();
  agent->set_path("/opt/demo/hardened-agent");
  agent->set_sha256(std::string(64, 'e'));
  return s;
}

v1::ProcessSnapshot Process(int pid, const std::string& exe, const std::string& selector) {
  v1::ProcessSnapshot p;
  p.set_pid(pid);
  p.set_ppid(1);
  p.set_exe_path(exe);
  p.add_matched_by(selector);
  return p;
}

v1::RuntimeReport Report() {
  v1::RuntimeReport r;
  r.set_hostname("edge-7");
  r.set_collected_unix_nano(1'795'999'000'000'000'000);
  *r.add_processes() = Process(100, "/opt/demo/hardened-agent", "exe=*/hardened-agent");
  *r.add_processes() = Process(200, "/opt/demo/naive-agent", "exe=*/naive-agent");
  r.mutable_probes()->add_active_hooks("tracepoint/syscalls/sys_enter_openat");
  *r.add_scopes() = HardenedScope();
  *r.add_scopes() = NaiveScope();
  return r;
}

std::vector<policy::Policy> Policies() {
  absl::StatusOr<std::vector<policy::Policy>> p =
      policy::ParsePoliciesOrError(kPolicyYaml, "agents.yaml");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : std::vector<policy::Policy>{};
}

// The latest evidence of node '9'... with its verdict from the real engine.
v1::GetLatestEvidenceResponse Latest(const v1::RuntimeReport& report) {
  v1::GetLatestEvidenceResponse latest;
  latest.set_node_id(testing::NodeId('9'));
  latest.mutable_evidence()->set_payload(report.SerializeAsString());
  v1::Verdict* v = latest.mutable_verdict();
  v->add_policy_ids("agents@4");
  std::vector<v1::WorkloadVerdict> workloads = policy::Evaluate(Policies(), report);
  for (v1::WorkloadVerdict& w : workloads) *v->add_workloads() = std::move(w);
  v->set_status(policy::OverallStatus({v->workloads().begin(), v->workloads().end()}));
  return latest;
}

ScopeEvidence Naive() {
  v1::RuntimeReport report = Report();
  absl::StatusOr<std::vector<ScopeEvidence>> s = ResolveScopes(Latest(report), Policies(), "agent");
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok() || s->size() != 2) return {};
  return (*s)[1];
}

TEST(DebianPurlTest, PercentEncodesEpochsAndPlusSigns) {
  EXPECT_EQ(DebianPurl(Pkg("vim", "2:9.0.1378-2")), "pkg:deb/debian/vim@2%3A9.0.1378-2?arch=amd64");
  EXPECT_EQ(DebianPurl(Pkg("libstdc++6", "12.2.0-14")),
            "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64");
  v1::PackageRef bare;
  bare.set_name("tzdata");
  EXPECT_EQ(DebianPurl(bare), "pkg:deb/debian/tzdata");
}

TEST(ResolveScopesTest, ANameSelectsEveryScopeOfTheWorkloadAndAnIdOne) {
  const v1::RuntimeReport report = Report();
  const v1::GetLatestEvidenceResponse latest = Latest(report);
  absl::StatusOr<std::vector<ScopeEvidence>> both = ResolveScopes(latest, Policies(), "agent");
  ASSERT_TRUE(both.ok()) << both.status();
  ASSERT_EQ(both->size(), 2u);
  const ScopeEvidence& naive = (*both)[1];
  EXPECT_EQ(naive.scope.root_exe_path(), "/opt/demo/naive-agent");
  EXPECT_EQ(naive.policy_id, "agents@4");
  EXPECT_EQ(naive.hostname, "edge-7");
  EXPECT_EQ(naive.evidence_sha256, HexEncode(Sha256(latest.evidence().payload())));
  // The verdict's workload_id, from the engine's own placement.
  EXPECT_EQ(naive.workload_id, latest.verdict().workloads(1).workload_id());
  ASSERT_FALSE(naive.scope_outcomes.empty());
  EXPECT_EQ(naive.scope_outcomes[0].status(), v1::TRUST_CONTRAINDICATED);
  // The hardened agent: within its scope; the declared items it never used (the naive
  // agent's executable, the library root, the storage) are informational only.
  const std::vector<v1::RuleOutcome>& hardened = (*both)[0].scope_outcomes;
  ASSERT_EQ(hardened.size(), 4u);
  for (const v1::RuleOutcome& o : hardened) EXPECT_EQ(o.status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(hardened[0].reason(),
            "informational: declared executable '*/naive-agent' was not observed");
  EXPECT_EQ(hardened[3].reason(), "every observed item is within the declared scope");

  absl::StatusOr<std::vector<ScopeEvidence>> one =
      ResolveScopes(latest, Policies(), naive.workload_id);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].scope.root_exe_path(), "/opt/demo/naive-agent");
}

TEST(ResolveScopesTest, PrefersThePolicyThatDeclaresTheScope) {
  absl::StatusOr<std::vector<policy::Policy>> plain = policy::ParsePoliciesOrError(
      "apiVersion: vigil.dev/v1\nkind: RuntimePolicy\nmetadata: {name: plain, revision: 1}\n"
      "spec:\n  workloads:\n    - {name: agent, selectors: [\"exe=*/naive-agent\"]}\n"
      "  rules:\n    - {id: nnp, kind: no_new_privs, controls: {soc2: [CC6.1]}}\n",
      "plain.yaml");
  ASSERT_TRUE(plain.ok()) << plain.status();
  std::vector<policy::Policy> policies = *plain;
  for (policy::Policy& p : Policies()) policies.push_back(std::move(p));
  absl::StatusOr<std::vector<ScopeEvidence>> s = ResolveScopes(Latest(Report()), policies, "agent");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[1].policy_id, "agents@4");
  ASSERT_TRUE((*s)[1].declared.has_value());
  EXPECT_EQ((*s)[1].declared->component_title, "Ticket agent");
}

TEST(ResolveScopesTest, ClearErrors) {
  v1::RuntimeReport report = Report();
  absl::StatusOr<std::vector<ScopeEvidence>> unknown =
      ResolveScopes(Latest(report), Policies(), "runner");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("has no scope for a workload 'runner'; its scopes "
                                            "belong to: agent ("),
            std::string::npos)
      << unknown.status();

  report.clear_scopes();
  absl::StatusOr<std::vector<ScopeEvidence>> none =
      ResolveScopes(Latest(report), Policies(), "agent");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("carries no workload scope"), std::string::npos)
      << none.status();

  v1::GetLatestEvidenceResponse garbage = Latest(Report());
  garbage.mutable_evidence()->set_payload("\xff\xff\xff");
  EXPECT_FALSE(ResolveScopes(garbage, Policies(), "agent").ok());
}

TEST(ScopeTreeTest, ShowsEveryPartOfTheScope) {
  std::ostringstream out;
  PrintScopeTree(Naive(), out);
  const std::string tree = out.str();
  for (const char* expected : {
           "workload agent (",
           "  policy agents@4; root /opt/demo/naive-agent pid 200\n",
           "  observed 2026-11-29T22:06:40Z .. 2026-11-30T00:36:40Z\n",
           "  pid 201 ppid 200 /usr/bin/curl (exited)\n",
           "    lineage /opt/demo/naive-agent -> /usr/bin/curl\n",
           "    argv curl -s http://127.0.0.1:9/\n",
           "  /usr/bin/curl  curl@7.88.1-10+deb12u5 (amd64)  x3  sha256:cccc",
           "  /opt/demo/naive-agent  unpackaged  x1  sha256:aaaa",
           "  python  /usr/bin/python3.11  python3.11-minimal@3.11.2-6 (amd64)  (executable)\n"
           "    script -c\n",
           "  /var/lib/naive-agent/  14 write(s)\n",
           "    sqlite memory.db with -wal, -shm\n",
           "  outbound tcp 127.0.0.1 port 9  x3\n",
           "  secret /etc/naive-agent/api-token  mode 0600  mode:0600  x1\n",
           "truncated: nothing\n",
           "against the declared scope\n  CONTRAINDICATED  the workload runs an executable "
           "outside its declared scope: '/usr/bin/curl'",
           "boundary: From 2026-11-29T22:06:40Z to 2026-11-30T00:36:40Z, node edge-7",
       }) {
    EXPECT_NE(tree.find(expected), std::string::npos) << expected << "\n---\n" << tree;
  }
}

TEST(ScopeTreeTest, HostilePathsAreEscapedAndTheYamlStillParses) {
  ScopeEvidence e = Naive();
  e.scope.mutable_executables(0)->set_path("/tmp/\x1b[2J\nfake\xff");
  std::ostringstream out;
  PrintScopeTree(e, out);
  EXPECT_EQ(out.str().find('\x1b'), std::string::npos);
  EXPECT_NE(out.str().find("/tmp/\\x1b[2J\\nfake\\xff"), std::string::npos) << out.str();
  const YAML::Node doc = YAML::Load(ScopeYaml(e));
  EXPECT_TRUE(doc["executables"][0]["path"].IsScalar());
  EXPECT_EQ(doc["executables"].size(), 3u);
}

TEST(BoundaryStatementTest, SaysWhenTheBoundaryCannotBeStated) {
  ScopeEvidence e = Naive();
  EXPECT_NE(BoundaryStatement(e).find("This is the whole boundary the workload exercised"),
            std::string::npos)
      << BoundaryStatement(e);
  (*e.scope.mutable_truncated())["libraries"] = 3;
  e.probes_present = false;
  e.verdict_status = v1::TRUST_REJECTED;
  const std::string text = BoundaryStatement(e);
  EXPECT_NE(text.find("The boundary cannot be stated in full: the node reached its bound and "
                      "left out 3 libraries; the node ran without probes"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("the evidence is not verified (verdict REJECTED)"), std::string::npos)
      << text;
}

TEST(ScopeYamlTest, IsYamlAnSspAuthorCanPaste) {
  const YAML::Node doc = YAML::Load(ScopeYaml(Naive()));
  EXPECT_EQ(doc["component"]["title"].as<std::string>(), "Ticket agent");
  EXPECT_EQ(doc["component"]["description"].as<std::string>(), "Answers support tickets.");
  EXPECT_NE(doc["boundary"].as<std::string>().find("3 executable(s) (1 unpackaged)"),
            std::string::npos);
  EXPECT_TRUE(doc["evidence"]["complete"].as<bool>());
  EXPECT_EQ(doc["executables"][1]["package"].as<std::string>(), "curl@7.88.1-10+deb12u5");
  EXPECT_EQ(doc["executables"][0]["package"].as<std::string>(), "unpackaged");
  EXPECT_EQ(doc["storage"][0]["sqlite"][0].as<std::string>(), "memory.db");
  EXPECT_EQ(doc["secrets_read"][0].as<std::string>(), "/etc/naive-agent/api-token");
}

// Runs scope_export_check.py over `doc` with a schema under testdata/scope; its exit code.
class ScopeExportSchemaTest : public ::testing::Test {
 protected:
  int Check(const nlohmann::json& doc, const std::string& schema, bool purls = false) {
    vigil::testing::ScopedTempDir dir("scope-export");
    EXPECT_FALSE(dir.path().empty());
    vigil::testing::WriteFile(dir.path() + "/doc.json", doc.dump(2));
    const std::string root = vigil::testing::SourceDir() + "/tests/cli/";
    vigil::testing::CommandResult r = vigil::testing::RunCommand(absl::StrCat(
        vigil::testing::kSystemPython, " ", root, "scope_export_check.py ", root, "testdata/scope/",
        schema, " ", dir.path(), "/doc.json", purls ? " --purls" : ""));
    output_ = r.out;
    return r.exit_code;
  }
  std::string output_;
};

TEST_F(ScopeExportSchemaTest, OscalIsAValidComponentDefinition) {
  const nlohmann::json doc = ScopeOscal(Naive(), kNow);
  EXPECT_EQ(Check(doc, "oscal_component_definition.schema.json"), 0) << output_;
  const nlohmann::json& components = doc["component-definition"]["components"];
  // The workload, then each executable, interpreter and library.
  ASSERT_EQ(components.size(), 7u);
  EXPECT_EQ(components[0]["title"], "Ticket agent");
  ASSERT_TRUE(components[0].contains("control-implementations"));
  bool cm8 = false;
  for (const auto& r : components[0]["control-implementations"][0]["implemented-requirements"]) {
    cm8 |= r["control-id"] == "cm-8.3";
  }
  EXPECT_TRUE(cm8);
  std::map<std::string, std::string> props;
  for (const auto& p : components[2]["props"]) props[p["name"]] = p["value"];
  EXPECT_EQ(props["path"], "/usr/bin/curl");
  EXPECT_EQ(props["package-name"], "curl");
  EXPECT_EQ(props["package-version"], "7.88.1-10+deb12u5");
  EXPECT_EQ(props["sha256"], std::string(64, 'c'));
  EXPECT_EQ(props["evidence-sha256"], Naive().evidence_sha256);
  EXPECT_EQ(props["observed-from"], "2026-11-29T22:06:40Z");
  // The same input gives the same document.
  EXPECT_EQ(ScopeOscal(Naive(), kNow), doc);
}

TEST_F(ScopeExportSchemaTest, TheOscalCheckRefusesBrokenDocuments) {
  nlohmann::json doc = ScopeOscal(Naive(), kNow);
  nlohmann::json no_title = doc;
  no_title["component-definition"]["components"][1].erase("title");
  EXPECT_EQ(Check(no_title, "oscal_component_definition.schema.json"), 1);
  nlohmann::json bad_prop = doc;
  bad_prop["component-definition"]["components"][1]["props"][0]["name"] = "has space";
  EXPECT_EQ(Check(bad_prop, "oscal_component_definition.schema.json"), 1);
}

TEST_F(ScopeExportSchemaTest, CycloneDxIsAValidBomWithReadablePurls) {
  const nlohmann::json doc = ScopeCycloneDx(Naive(), kNow);
  EXPECT_EQ(Check(doc, "cyclonedx_1_5.schema.json", /*purls=*/true), 0) << output_;
  std::map<std::string, nlohmann::json> by_ref;
  for (const auto& c : doc["components"]) by_ref[c["bom-ref"]] = c;
  ASSERT_TRUE(by_ref.count("pkg:deb/debian/vim@2%3A9.0.1378-2?arch=amd64")) << doc.dump(2);
  const nlohmann::json& curl = by_ref["pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64"];
  EXPECT_EQ(curl["type"], "application");
  EXPECT_EQ(curl["components"][0]["hashes"][0]["content"], std::string(64, 'c'));
  const nlohmann::json& agent = by_ref["file:/opt/demo/naive-agent"];
  EXPECT_EQ(agent["type"], "file");
  EXPECT_EQ(agent["hashes"][0]["alg"], "SHA-256");
  EXPECT_EQ(doc["metadata"]["timestamp"], "2026-11-30T00:53:20Z");
  EXPECT_EQ(doc["metadata"]["component"]["name"], "agent");
  EXPECT_EQ(doc["dependencies"][0]["dependsOn"].size(), doc["components"].size());
}

TEST_F(ScopeExportSchemaTest, TheCycloneDxCheckRefusesBrokenDocuments) {
  nlohmann::json doc = ScopeCycloneDx(Naive(), kNow);
  nlohmann::json bad_type = doc;
  bad_type["components"][0]["type"] = "package";
  EXPECT_EQ(Check(bad_type, "cyclonedx_1_5.schema.json"), 1);
  nlohmann::json unencoded = doc;
  for (auto& c : unencoded["components"]) {
    if (c["name"] == "vim") c["purl"] = c["bom-ref"] = "pkg:deb/debian/vim@2:9.0.1378-2?arch=amd64";
  }
  EXPECT_EQ(Check(unencoded, "cyclonedx_1_5.schema.json", /*purls=*/true), 1);
  nlohmann::json wrong_version = doc;
  for (auto& c : wrong_version["components"]) {
    if (c["name"] == "vim") c["version"] = "9.0.1378-2";
  }
  EXPECT_EQ(Check(wrong_version, "cyclonedx_1_5.schema.json", /*purls=*/true), 1);
}

class ScopeCommandFleetTest : public testing::FakeFleetTest {
 protected:
  void SetUp() override {
    testing::FakeFleetTest::SetUp();
    v1::PolicyInfo* p = fleet_.policies.add_policies();
    p->set_name("agents");
    p->set_revision(4);
    p->set_yaml(kPolicyYaml);
    fleet_.evidence[testing::NodeId('9')] = Latest(Report());
  }
};

TEST_F(ScopeCommandFleetTest, ShowPrintsEveryScopeOfTheWorkload) {
  std::string out, err;
  ASSERT_EQ(
      RunVigilctl("scope show " + testing::NodeId('9') + " agent" + ConnectionFlags(), &out, &err),
      0)
      << err;
  EXPECT_NE(out.find("root /opt/demo/hardened-agent pid 100"), std::string::npos) << out;
  EXPECT_NE(out.find("root /opt/demo/naive-agent pid 200"), std::string::npos) << out;
  auto requests = fleet_.Requests<v1::GetLatestEvidenceRequest>("GetLatestEvidence");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].node_id(), testing::NodeId('9'));
  EXPECT_EQ(fleet_.CallCount("ListPolicies"), 1);
}

TEST_F(ScopeCommandFleetTest, ExportNeedsOneScopeAndWritesEachFormat) {
  std::string out, err;
  const std::string node = testing::NodeId('9');
  EXPECT_EQ(
      RunVigilctl("scope export " + node + " agent --format oscal" + ConnectionFlags(), &out, &err),
      1);
  EXPECT_NE(err.find("workload 'agent' has 2 scopes on node"), std::string::npos) << err;
  const std::string id = Latest(Report()).verdict().workloads(1).workload_id();
  for (const char* format : {"oscal", "cyclonedx"}) {
    ASSERT_EQ(RunVigilctl(absl::StrCat("scope export ", node, " ", id, " --format ", format,
                                       ConnectionFlags()),
                          &out, &err),
              0)
        << err;
    EXPECT_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded()) << out;
  }
  ASSERT_EQ(
      RunVigilctl(absl::StrCat("scope export ", node, " ", id, " --format yaml", ConnectionFlags()),
                  &out, &err),
      0)
      << err;
  EXPECT_EQ(YAML::Load(out)["evidence"]["workload_id"].as<std::string>(), id);
  EXPECT_EQ(
      RunVigilctl(absl::StrCat("scope export ", node, " ", id, " --format spdx", ConnectionFlags()),
                  &out, &err),
      2);
}

TEST_F(ScopeCommandFleetTest, UnknownNodeAndNodeWithoutScopesAreClearErrors) {
  std::string out, err;
  EXPECT_EQ(
      RunVigilctl("scope show " + testing::NodeId('8') + " agent" + ConnectionFlags(), &out, &err),
      1);
  EXPECT_NE(err.find("the verifier knows no node " + testing::NodeId('8')), std::string::npos)
      << err;
  v1::RuntimeReport old = Report();
  old.clear_scopes();
  fleet_.evidence[testing::NodeId('7')] = Latest(old);
  EXPECT_EQ(
      RunVigilctl("scope show " + testing::NodeId('7') + " agent" + ConnectionFlags(), &out, &err),
      1);
  EXPECT_NE(err.find("carries no workload scope"), std::string::npos) << err;
  EXPECT_TRUE(out.empty()) << out;
}

}  // namespace
}  // namespace vigil::cli
