// Parsing RuntimePolicy YAML: the model it builds, and every error and warning reported with
// the exact line and column it refers to.

#include "common/policy/parser.h"
#include "tests/common/policy/policy_test_util.h"
#include "tests/testing/build_paths.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace vigil::policy {
namespace {

using testing::Replace;

std::vector<std::string> Lines(const ParseResult& r) {
  std::vector<std::string> out;
  for (const Diagnostic& d : r.diagnostics) out.push_back(d.ToString());
  return out;
}

std::string ReadSource(const std::string& relative) {
  std::ifstream in(vigil::testing::SourceDir() + "/" + relative);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr char kValid[] = R"(apiVersion: vigil.dev/v1
kind: RuntimePolicy
metadata:
  name: agents
  revision: 7
  description: test
spec:
  workloads:
    - name: agent
      selectors: ["exe=/opt/agent/*", "cgroup=/system.slice/agent*"]
  sensitive_files:
    - {path: /etc/agent/*.yaml, classification: config}
  rules:
    - id: caps
      kind: capabilities
      grade: warning
      absent: [CAP_SYS_PTRACE]
      controls:
        nist_800_53: [AC-6(10)]
        iso27001: [A.8.2, A.8.16]
        soc2: [CC6.1]
)";

TEST(PolicyParserTest, BuildsTheModel) {
  ParseResult r = ParsePolicies(kValid, "agents.yaml");
  ASSERT_FALSE(r.HasErrors()) << ::testing::PrintToString(Lines(r));
  EXPECT_TRUE(r.diagnostics.empty());
  ASSERT_EQ(r.policies.size(), 1u);
  const Policy& p = r.policies[0];
  EXPECT_EQ(p.Id(), "agents@7");
  EXPECT_EQ(p.description, "test");
  ASSERT_EQ(p.workloads.size(), 1u);
  ASSERT_EQ(p.workloads[0].selectors.size(), 2u);
  EXPECT_EQ(p.workloads[0].selectors[0].exe_glob, "/opt/agent/*");
  EXPECT_EQ(p.workloads[0].selectors[1].cgroup_glob, "/system.slice/agent*");
  ASSERT_EQ(p.sensitive_files.size(), 1u);
  EXPECT_EQ(p.sensitive_files[0].classification, "config");
  ASSERT_EQ(p.rules.size(), 1u);
  const Rule& rule = p.rules[0];
  EXPECT_EQ(rule.kind, RuleKind::kCapabilities);
  EXPECT_EQ(rule.grade, Grade::kWarning);
  EXPECT_EQ(rule.capabilities.absent, std::vector<int>{19});
  EXPECT_EQ(rule.position.line, 14);
  EXPECT_EQ(rule.position.column, 7);
  // ISO 27001:2022 numbers carry the 2013 ones they replace; A.8.16 is new in 2022.
  EXPECT_EQ(rule.controls, (std::vector<std::string>{"NIST-800-53r5:AC-6(10)",
                                                     "ISO27001:2022:A.8.2", "ISO27001:2013:A.9.2.3",
                                                     "ISO27001:2022:A.8.16", "SOC2:CC6.1"}));
  EXPECT_EQ(p.yaml, kValid);
}

struct ErrorCase {
  const char* name;
  std::string yaml;
  std::vector<std::string> diagnostics;  // exactly these, in order
};

class PolicyParserErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(PolicyParserErrorTest, ReportsEveryProblemWithItsPosition) {
  const ErrorCase& c = GetParam();
  ParseResult r = ParsePolicies(c.yaml, "p.yaml");
  EXPECT_EQ(Lines(r), c.diagnostics);
  bool any_error = false;
  for (const std::string& d : c.diagnostics) any_error |= d.find(": error: ") != std::string::npos;
  EXPECT_EQ(r.HasErrors(), any_error);
  if (any_error) {
    EXPECT_TRUE(r.policies.empty());  // refused whole
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PolicyParserErrorTest,
    ::testing::Values(
        ErrorCase{"UnknownTopLevelKey",
                  Replace(kValid, "kind: RuntimePolicy\n", "kind: RuntimePolicy\nstatus: {}\n"),
                  {"p.yaml:3:1: error: unknown key 'status' in the document (expected one of: "
                   "apiVersion, kind, metadata, spec)"}},
        ErrorCase{"UnknownRuleKeyAndWrongApiVersion",
                  Replace(Replace(kValid, "vigil.dev/v1", "vigil.dev/v2"), "      grade: warning\n",
                          "      grade: warning\n      absnet: [CAP_BPF]\n"),
                  {"p.yaml:1:13: error: apiVersion must be vigil.dev/v1, not 'vigil.dev/v2'",
                   "p.yaml:17:7: error: unknown key 'absnet' in a capabilities rule (expected one "
                   "of: id, kind, grade, workloads, controls, description, absent, "
                   "ambient_empty)"}},
        ErrorCase{"EveryErrorOfTheFile",
                  Replace(Replace(Replace(kValid, "revision: 7", "revision: 0"), "CAP_SYS_PTRACE",
                                  "CAP_SYS_PTRAC"),
                          "[CC6.1]", "[CC9.9, XX1]"),
                  {"p.yaml:5:13: error: metadata.revision must be a positive integer",
                   "p.yaml:17:16: error: unknown capability 'CAP_SYS_PTRAC' (e.g. CAP_SYS_PTRACE)",
                   "p.yaml:21:23: error: 'XX1' is not a SOC 2 Trust Services Criteria id (e.g. "
                   "CC6.1, CC7.2, A1.2)"}},
        ErrorCase{"BadControlIds",
                  Replace(Replace(kValid, "[AC-6(10)]", "[AC-6(10), ZZ-1]"), "A.8.16", "A.9.2.3"),
                  {"p.yaml:19:33: error: 'ZZ-1' is not a NIST SP 800-53 rev5 control (FAMILY-N "
                   "or FAMILY-N(M), e.g. AC-6(10))",
                   "p.yaml:20:27: error: 'A.9.2.3' is not an ISO/IEC 27001:2022 Annex A control "
                   "(A.5.1 to A.8.34, e.g. A.8.2)"}},
        ErrorCase{"DuplicateKey",
                  Replace(kValid, "  revision: 7\n", "  revision: 7\n  name: x\n"),
                  {"p.yaml:6:3: error: duplicate key 'name'"}},
        ErrorCase{"CommOnlySelectorWarns",
                  Replace(kValid, "\"cgroup=/system.slice/agent*\"", "\"comm=agent\""),
                  {"p.yaml:10:39: warning: selector 'comm=agent' rests only on comm or pid, "
                   "which a process can change or reuse; add exe=, cgroup= or container="}},
        ErrorCase{"BadSelector",
                  Replace(kValid, "\"cgroup=/system.slice/agent*\"", "\"argv=x\""),
                  {"p.yaml:10:39: error: selector 'argv=x': unknown key 'argv' (pid, exe, comm, "
                   "cgroup, container)"}},
        ErrorCase{"UnknownKindAndMissingControls",
                  Replace(Replace(kValid, "kind: capabilities", "kind: capability"),
                          "      controls:\n        nist_800_53: [AC-6(10)]\n        iso27001: "
                          "[A.8.2, A.8.16]\n        soc2: [CC6.1]\n",
                          ""),
                  {"p.yaml:14:7: error: 'controls' is required: name the controls the rule "
                   "evidences",
                   "p.yaml:15:13: error: unknown rule kind 'capability' (expected one of: "
                   "seccomp, capabilities, no_new_privs, read_only_root, user_namespaces, "
                   "memory, interpreters, egress, listeners, events, scope)"}},
        ErrorCase{"RuleNamesUnknownWorkload",
                  Replace(kValid, "      grade: warning\n", "      workloads: [agnet]\n"),
                  {"p.yaml:16:19: error: rule names workload 'agnet', which spec.workloads does "
                   "not define"}},
        ErrorCase{"MalformedYaml",
                  Replace(kValid, "  name: agents\n", "  name: [agents\n"),
                  {"p.yaml:5:11: error: end of sequence flow not found"}},
        ErrorCase{"EventsRuleGradesPerKind",
                  Replace(kValid,
                          "      kind: capabilities\n      grade: warning\n      absent: "
                          "[CAP_SYS_PTRACE]\n",
                          "      kind: events\n      grade: warning\n      events: [{kind: "
                          "ptrace, denied: fatal}, {kind: Ptrace}]\n"),
                  {"p.yaml:16:14: error: an events rule grades each event kind (denied:, "
                   "succeeded:), not the rule",
                   "p.yaml:17:39: error: an event grade must be warning, contraindicated or "
                   "ignore",
                   "p.yaml:17:54: error: unknown event kind 'Ptrace' (e.g. ptrace, "
                   "process_vm_readv, unshare, bpf)"}},
        ErrorCase{"NetworkEndpoints",
                  Replace(kValid,
                          "      kind: capabilities\n      grade: warning\n      absent: "
                          "[CAP_SYS_PTRACE]\n",
                          "      kind: egress\n      allow:\n        - {cidr: 10.0.0.1/8}\n"
                          "        - {cidr: 10.0.0.0/33}\n        - {cidr: 10.0.0.0/8, ports: "
                          "[0, 443, 90-80]}\n"),
                  {"p.yaml:17:18: error: '10.0.0.1/8' has address bits set below its prefix "
                   "length",
                   "p.yaml:18:18: error: '10.0.0.0/33': prefix length must be 0 to 32",
                   "p.yaml:19:38: error: a port must be 1 to 65535, or a range LOW-HIGH",
                   "p.yaml:19:46: error: a port must be 1 to 65535, or a range LOW-HIGH"}},
        ErrorCase{
            "SecondDocumentLinesCountFromTheFile",
            std::string(kValid) + "---\n" +
                Replace(Replace(kValid, "name: agents", "name: other"), "absent:", "present:"),
            {"p.yaml:36:7: error: a capabilities rule needs 'absent' or 'ambient_empty: "
             "true'",
             "p.yaml:39:7: error: unknown key 'present' in a capabilities rule (expected "
             "one of: id, kind, grade, workloads, controls, description, absent, "
             "ambient_empty)"}},
        ErrorCase{"EmptyFile", "# nothing\n", {"p.yaml:1:1: error: no RuntimePolicy document"}}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

TEST(PolicyParserTest, KeepsEachDocumentOfAStream) {
  const std::string second = Replace(kValid, "name: agents", "name: other");
  ParseResult r = ParsePolicies(std::string(kValid) + "---\n" + second + "...\n", "s.yaml");
  ASSERT_FALSE(r.HasErrors()) << ::testing::PrintToString(Lines(r));
  ASSERT_EQ(r.policies.size(), 2u);
  EXPECT_EQ(r.policies[0].yaml, kValid);
  EXPECT_EQ(r.policies[1].yaml, second);
  EXPECT_EQ(r.policies[1].rules[0].position.line, 22 + 14);  // after 21 lines and "---"
}

TEST(PolicyParserTest, SamePolicyNameTwiceIsAnError) {
  absl::StatusOr<std::vector<Policy>> p =
      ParsePoliciesOrError(std::string(kValid) + "---\n" + kValid, "twice.yaml");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "twice.yaml: policy 'agents' appears twice");
}

TEST(PolicyParserTest, SinglePolicyReturnsWarnings) {
  std::vector<std::string> warnings;
  absl::StatusOr<Policy> p = ParseSinglePolicy(
      Replace(kValid, "\"cgroup=/system.slice/agent*\"", "\"pid=1\""), "one.yaml", &warnings);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].rfind("one.yaml:10:39: warning: selector 'pid=1'", 0), 0u) << warnings[0];
  EXPECT_FALSE(ParseSinglePolicy(std::string(kValid) + "---\n" + kValid, "two.yaml").ok());
}

TEST(PolicyParserTest, ShippedPoliciesAreClean) {
  for (const char* file : {"deploy/policies/strict.yaml", "deploy/policies/baseline.yaml",
                           "deploy/policies/agent-scope.yaml"}) {
    ParseResult r = ParsePolicies(ReadSource(file), file);
    EXPECT_TRUE(r.diagnostics.empty()) << ::testing::PrintToString(Lines(r));
    EXPECT_EQ(r.policies.size(), 1u) << file;
  }
}

}  // namespace
}  // namespace vigil::policy
