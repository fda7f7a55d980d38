#include "cli/audit_manifests.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/pki.h"
#include "common/policy/parser.h"
#include "nlohmann/json.hpp"
#include "tests/testing/build_paths.h"
#include "tests/testing/temp_dir.h"
#include "tests/verifier/results/ear_test_util.h"

namespace vigil::cli {
namespace {

const std::string kData = vigil::testing::SourceDir() + "/tests/cli/testdata/manifests/";

std::string Base(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// "FILE:LINE OBJECT CONTAINER RULE SEVERITY" for each finding of every container.
std::vector<std::string> Describe(const ManifestSet& set, const PolicyExpectations& expectations) {
  std::vector<std::string> out;
  for (const DeclaredContainer& c : set.containers) {
    for (const Finding& f : AuditContainer(c, expectations)) {
      out.push_back(absl::StrCat(Base(f.file), ":", f.line, " ", f.object, " ", f.container, " ",
                                 f.rule, " ", SeverityName(f.severity)));
    }
  }
  return out;
}

PolicyExpectations TestPolicy() {
  absl::StatusOr<std::string> text = ReadFileToString(kData + "policy.yaml");
  EXPECT_TRUE(text.ok());
  absl::StatusOr<std::vector<policy::Policy>> policies =
      policy::ParsePoliciesOrError(text.value_or(""), "policy.yaml");
  EXPECT_TRUE(policies.ok()) << policies.status();
  return ExpectationsOf(policies.value_or(std::vector<policy::Policy>{}));
}

TEST(ManifestLoaderTest, ReadsEveryKindAndContainerListInSortedFileOrder) {
  absl::StatusOr<ManifestSet> set = LoadManifests({kData + "all"});
  ASSERT_TRUE(set.ok()) << set.status();
  std::vector<std::string> files;
  for (const std::string& f : set->files) files.push_back(Base(f));
  // notes.txt is not a manifest file.
  EXPECT_EQ(files,
            (std::vector<std::string>{"a-deployment.yaml", "b-workloads.yaml", "c-list.yml"}));
  std::vector<std::string> containers;
  for (const DeclaredContainer& c : set->containers) {
    containers.push_back(
        absl::StrCat(c.ObjectName(), " ", c.container_list, "/", c.container, " line ", c.line));
  }
  EXPECT_EQ(containers, (std::vector<std::string>{
                            "agents/Deployment/risky containers/agent line 19",
                            "StatefulSet/store containers/db line 12",
                            "StatefulSet/store containers/sidecar line 18",
                            "DaemonSet/probe containers/probe line 35",
                            "ReplicaSet/cache containers/cache line 56",
                            "Job/migrate containers/migrate line 71",
                            "CronJob/report containers/report line 92",
                            "tools/Pod/debug initContainers/setup line 14",
                            "tools/Pod/debug containers/main line 21",
                            "tools/Pod/debug ephemeralContainers/shell line 28",
                        }));
  EXPECT_EQ(set->objects, 7);
  std::vector<std::string> skipped;
  for (const SkippedObject& s : set->skipped) {
    skipped.push_back(absl::StrCat(Base(s.file), ":", s.line, " ", s.kind));
  }
  EXPECT_EQ(skipped,
            (std::vector<std::string>{"a-deployment.yaml:28 Service",
                                      "a-deployment.yaml:36 ConfigMap", "c-list.yml:33 Secret"}));
  // A container's own seccompProfile overrides the pod's.
  EXPECT_EQ(set->containers[1].seccomp_type.value, "Unconfined");
  EXPECT_TRUE(set->containers[1].seccomp_from_pod);
  EXPECT_EQ(set->containers[2].seccomp_type.value, "RuntimeDefault");
  EXPECT_FALSE(set->containers[2].seccomp_from_pod);
  EXPECT_EQ(set->containers[2].seccomp_type.line, 21);
}

TEST(ManifestAuditTest, FindsEveryRuleAtTheLineOfItsKeyOrContainer) {
  absl::StatusOr<ManifestSet> set = LoadManifests({kData + "all"});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(
      Describe(*set, PolicyExpectations{}),
      (std::vector<std::string>{
          "a-deployment.yaml:19 agents/Deployment/risky agent seccomp-profile-missing medium",
          "a-deployment.yaml:25 agents/Deployment/risky agent capabilities-drop-all-missing "
          "medium",
          "a-deployment.yaml:26 agents/Deployment/risky agent capability-added medium",
          "a-deployment.yaml:26 agents/Deployment/risky agent capability-added medium",
          "a-deployment.yaml:23 agents/Deployment/risky agent privilege-escalation-allowed "
          "medium",
          "a-deployment.yaml:19 agents/Deployment/risky agent root-filesystem-writable medium",
          "a-deployment.yaml:22 agents/Deployment/risky agent privileged-container high",
          "a-deployment.yaml:15 agents/Deployment/risky agent host-pid high",
          "a-deployment.yaml:16 agents/Deployment/risky agent host-ipc high",
          "a-deployment.yaml:17 agents/Deployment/risky agent host-network high",
          "a-deployment.yaml:24 agents/Deployment/risky agent proc-mount-unmasked high",
          "b-workloads.yaml:10 StatefulSet/store db seccomp-unconfined high",
          "b-workloads.yaml:43 DaemonSet/probe probe capabilities-drop-all-missing medium",
          "b-workloads.yaml:41 DaemonSet/probe probe root-filesystem-writable medium",
          "b-workloads.yaml:79 Job/migrate migrate capability-added medium",
          "c-list.yml:32 tools/Pod/debug shell capability-added medium",
          "c-list.yml:28 tools/Pod/debug shell privilege-escalation-allowed medium",
          "c-list.yml:28 tools/Pod/debug shell root-filesystem-writable medium",
      }));
}

TEST(ManifestAuditTest, NormalisesBothCapabilitySpellings) {
  EXPECT_EQ(NormalizeCapability("SYS_PTRACE"), "CAP_SYS_PTRACE");
  EXPECT_EQ(NormalizeCapability("CAP_SYS_PTRACE"), "CAP_SYS_PTRACE");
  EXPECT_EQ(NormalizeCapability(" sys_ptrace "), "CAP_SYS_PTRACE");
  EXPECT_EQ(NormalizeCapability("all"), "ALL");
  absl::StatusOr<ManifestSet> set = LoadManifests({kData + "all/a-deployment.yaml"});
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->containers.size(), 1u);
  std::vector<std::string> added;
  for (const auto& [name, line] : set->containers[0].added_capabilities) added.push_back(name);
  EXPECT_EQ(added, (std::vector<std::string>{"CAP_SYS_PTRACE", "CAP_NET_ADMIN"}));
}

TEST(ManifestAuditTest, PolicyJudgesRuntimeDefaultAndMakesForbiddenCapabilitiesHigh) {
  const PolicyExpectations expectations = TestPolicy();
  EXPECT_EQ(expectations.denied_syscalls,
            (std::vector<std::string>{"mount", "process_vm_readv", "ptrace"}));
  EXPECT_EQ(expectations.forbidden_capabilities,
            (std::vector<std::string>{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}));
  absl::StatusOr<ManifestSet> set = LoadManifests({kData + "all"});
  ASSERT_TRUE(set.ok()) << set.status();
  std::vector<std::string> described = Describe(*set, expectations);
  auto has = [&](const std::string& s) {
    return std::find(described.begin(), described.end(), s) != described.end();
  };
  // Every RuntimeDefault container, at the line of the type that applies to it.
  for (const char* line : {
           "b-workloads.yaml:21 StatefulSet/store sidecar seccomp-runtime-default-insufficient",
           "b-workloads.yaml:54 ReplicaSet/cache cache seccomp-runtime-default-insufficient",
           "b-workloads.yaml:74 Job/migrate migrate seccomp-runtime-default-insufficient",
           "b-workloads.yaml:95 CronJob/report report seccomp-runtime-default-insufficient",
           "c-list.yml:12 tools/Pod/debug setup seccomp-runtime-default-insufficient",
           "c-list.yml:12 tools/Pod/debug main seccomp-runtime-default-insufficient",
           "c-list.yml:12 tools/Pod/debug shell seccomp-runtime-default-insufficient",
       }) {
    EXPECT_TRUE(has(absl::StrCat(line, " medium"))) << line;
  }
  // Localhost profiles are not judged: Vigil cannot read them from the manifest.
  EXPECT_FALSE(
      has("b-workloads.yaml:38 DaemonSet/probe probe seccomp-runtime-default-insufficient "
          "medium"));
  EXPECT_TRUE(
      has("a-deployment.yaml:26 agents/Deployment/risky agent capability-added-forbidden high"));
  EXPECT_TRUE(has("a-deployment.yaml:26 agents/Deployment/risky agent capability-added medium"));
  EXPECT_TRUE(has("c-list.yml:32 tools/Pod/debug shell capability-added-forbidden high"));
  EXPECT_TRUE(has("b-workloads.yaml:79 Job/migrate migrate capability-added medium"));
  EXPECT_EQ(described.size(), 18u + 7u);

  // The message names what RuntimeDefault lets through (mount it denies), and the findings
  // carry the policy's controls.
  std::vector<Finding> sidecar = AuditContainer(set->containers[2], expectations);
  ASSERT_EQ(sidecar.size(), 1u);
  EXPECT_NE(sidecar[0].message.find("process_vm_readv, ptrace;"), std::string::npos)
      << sidecar[0].message;
  EXPECT_EQ(sidecar[0].message.find("mount"), std::string::npos) << sidecar[0].message;
  EXPECT_EQ(
      sidecar[0].controls,
      (std::vector<std::string>{"NIST-800-53r5:AC-6", "NIST-800-53r5:SC-39", "ISO27001:2022:A.8.2",
                                "ISO27001:2013:A.9.2.3", "SOC2:CC6.1"}));
  std::vector<Finding> risky = AuditContainer(set->containers[0], expectations);
  EXPECT_EQ(risky[2].rule, "capability-added-forbidden");
  EXPECT_EQ(risky[2].controls,
            (std::vector<std::string>{"NIST-800-53r5:AC-6(10)", "ISO27001:2022:A.8.18",
                                      "ISO27001:2013:A.9.4.4", "SOC2:CC6.3"}));
}

TEST(ManifestAuditTest, DefaultControlsAreTheShippedPoliciesMappingInRuleOutcomeForm) {
  const PolicyExpectations none;
  EXPECT_EQ(
      CheckControls("seccomp", none),
      (std::vector<std::string>{"NIST-800-53r5:AC-6", "NIST-800-53r5:SC-39", "NIST-800-53r5:CM-7",
                                "ISO27001:2022:A.8.2", "ISO27001:2013:A.9.2.3",
                                "ISO27001:2022:A.8.9", "SOC2:CC6.1", "SOC2:CC6.8"}));
  EXPECT_EQ(CheckControls("privilege-escalation", none),
            (std::vector<std::string>{"NIST-800-53r5:AC-6(10)", "ISO27001:2022:A.8.2",
                                      "ISO27001:2013:A.9.2.3", "SOC2:CC6.1"}));
  EXPECT_EQ(CheckControls("read-only-root-filesystem", none),
            (std::vector<std::string>{"NIST-800-53r5:SI-7", "NIST-800-53r5:CM-5",
                                      "ISO27001:2022:A.8.9", "SOC2:CC6.8"}));
  // Every check has controls of all three frameworks.
  for (const std::string& check : ManifestChecks()) {
    const std::string all = absl::StrJoin(CheckControls(check, none), " ");
    EXPECT_NE(all.find("NIST-800-53r5:"), std::string::npos) << check;
    EXPECT_NE(all.find("ISO27001:2022:"), std::string::npos) << check;
    EXPECT_NE(all.find("SOC2:"), std::string::npos) << check;
  }
}

TEST(ManifestAuditTest, RuntimeDefaultListIsSortedAndLeavesProcessAccessAllowed) {
  const std::vector<std::string>& denied = RuntimeDefaultDeniedSyscalls();
  EXPECT_TRUE(std::is_sorted(denied.begin(), denied.end()));
  for (const char* allowed : {"ptrace", "process_vm_readv", "process_vm_writev"}) {
    EXPECT_FALSE(std::binary_search(denied.begin(), denied.end(), allowed)) << allowed;
  }
  for (const char* d : {"mount", "unshare", "bpf", "init_module", "kexec_load"}) {
    EXPECT_TRUE(std::binary_search(denied.begin(), denied.end(), d)) << d;
  }
}

TEST(ManifestLoaderTest, ReportsSyntaxAndShapeErrorsAsFileLineColumn) {
  absl::StatusOr<ManifestSet> broken = LoadManifests({kData + "broken.yaml"});
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().message().rfind(kData + "broken.yaml:9:1: ", 0), 0u)
      << broken.status().message();
  absl::StatusOr<ManifestSet> wrong = LoadManifests({kData + "wrong-type.yaml"});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(),
            kData +
                "wrong-type.yaml:9:21: spec.containers[a].securityContext.privileged must be "
                "true or false");
  absl::StatusOr<ManifestSet> missing = LoadManifests({kData + "absent.yaml"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), kData + "absent.yaml: no such file or directory");
}

// The real vigilctl binary: exit codes, JSON and JUnit.
class AuditManifestsCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("audit-manifests");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
  }
  int Run(const std::string& args, std::string* out, std::string* err = nullptr) {
    const std::string err_path = dir_.path() + "/stderr";
    testing::CommandResult r = testing::RunCommand(
        absl::StrCat(vigil::testing::BuildDir(), "/cli/vigilctl audit manifests ", args, " 2>",
                     err_path, " </dev/null"));
    *out = r.out;
    if (err != nullptr) *err = ReadFileToString(err_path).value_or("");
    return r.exit_code;
  }
  nlohmann::json Junit(const std::string& path) {
    testing::CommandResult r =
        testing::RunCommand(absl::StrCat(testing::kSystemPython, " ", vigil::testing::SourceDir(),
                                         "/tests/cli/junit_check.py ", path));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  testing::TestTempDir dir_;
};

TEST_F(AuditManifestsCommandTest, CleanManifestsExitZero) {
  std::string out;
  EXPECT_EQ(Run(kData + "clean", &out), 0) << out;
  EXPECT_NE(out.find("1 file(s), 1 object(s), 1 container(s): 0 finding(s)"), std::string::npos)
      << out;
}

TEST_F(AuditManifestsCommandTest, FindingsExitOneWithJsonAndJunit) {
  std::string out, err;
  const std::string junit = dir_.path() + "/junit.xml";
  ASSERT_EQ(
      Run(absl::StrCat("--json --junit ", junit, " --policy ", kData, "policy.yaml ", kData, "all"),
          &out, &err),
      1)
      << err;
  nlohmann::json doc = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out;
  EXPECT_EQ(doc["summary"]["containers"], 10);
  EXPECT_EQ(doc["summary"]["objects"], 7);
  EXPECT_EQ(doc["summary"]["skipped"], 3);
  EXPECT_EQ(doc["summary"]["findings"], 25);
  EXPECT_EQ(doc["summary"]["high"], 8);
  const nlohmann::json& first = doc["findings"][0];
  EXPECT_EQ(first["file"], kData + "all/a-deployment.yaml");
  EXPECT_EQ(first["line"], 19);
  EXPECT_EQ(first["kind"], "Deployment");
  EXPECT_EQ(first["namespace"], "agents");
  EXPECT_EQ(first["container"], "agent");
  EXPECT_EQ(first["rule"], "seccomp-profile-missing");
  EXPECT_EQ(first["severity"], "medium");
  EXPECT_EQ(first["controls"][0], "NIST-800-53r5:AC-6");

  // One testcase per container per check; a failure per finding, typed by rule.
  nlohmann::json j = Junit(junit);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["counts"]["tests"], 10 * 8);
  int failed_cases = 0;
  for (const auto& c : j["cases"]) failed_cases += c["state"] == "failed";
  EXPECT_EQ(j["counts"]["failures"], failed_cases);
  bool saw_ptrace = false, saw_clean = false;
  for (const auto& c : j["cases"]) {
    if (c["classname"] == kData + "all/a-deployment.yaml:agents/Deployment/risky" &&
        c["name"] == "agent: capabilities-added") {
      EXPECT_EQ(c["types"], nlohmann::json({"capability-added-forbidden", "capability-added"}));
      saw_ptrace = c["messages"][0] == kData +
                                           "all/a-deployment.yaml:26: capabilities.add holds "
                                           "CAP_SYS_PTRACE, which the policy requires absent";
    }
    if (c["classname"] == kData + "all/b-workloads.yaml:StatefulSet/store" &&
        c["name"] == "db: privileged") {
      saw_clean = c["state"] == "passed";
    }
  }
  EXPECT_TRUE(saw_ptrace);
  EXPECT_TRUE(saw_clean);
}

TEST_F(AuditManifestsCommandTest, TableNamesLocationRuleSeverityAndControls) {
  std::string out;
  ASSERT_EQ(Run(kData + "all/b-workloads.yaml", &out), 1);
  EXPECT_NE(out.find(kData + "all/b-workloads.yaml:10"), std::string::npos) << out;
  EXPECT_NE(out.find("seccomp-unconfined"), std::string::npos) << out;
  EXPECT_NE(out.find("NIST-800-53r5:SC-39"), std::string::npos) << out;
  EXPECT_NE(out.find("1 file(s), 5 object(s), 6 container(s): 4 finding(s) (1 high, 3 medium, "
                     "0 low); 0 object(s) skipped"),
            std::string::npos)
      << out;
}

TEST_F(AuditManifestsCommandTest, UsageErrorsExitTwo) {
  std::string out, err;
  EXPECT_EQ(Run(kData + "broken.yaml", &out, &err), 2);
  EXPECT_NE(err.find("broken.yaml:9:1: "), std::string::npos) << err;
  EXPECT_EQ(Run(kData + "absent.yaml", &out, &err), 2);
  EXPECT_NE(err.find("absent.yaml: no such file or directory"), std::string::npos) << err;
  EXPECT_EQ(Run(absl::StrCat("--policy ", kData, "broken.yaml ", kData, "clean"), &out, &err), 2);
  EXPECT_EQ(Run("", &out, &err), 2);
}

TEST_F(AuditManifestsCommandTest, UnknownKindsAreSkippedAndCountedNotErrors) {
  const std::string path = dir_.path() + "/service.yaml";
  testing::WriteFile(path, "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n");
  std::string out;
  EXPECT_EQ(Run(path, &out), 0) << out;
  EXPECT_NE(out.find("0 container(s): 0 finding(s) (0 high, 0 medium, 0 low); 1 object(s) skipped "
                     "(kinds without a pod template: Service x1)"),
            std::string::npos)
      << out;
}

TEST_F(AuditManifestsCommandTest, BytesThatAreNotUtf8NeitherCrashNorBreakTheOutputs) {
  const std::string path = dir_.path() + "/latin1.yaml";
  testing::WriteFile(path,
                     "kind: Pod\nmetadata:\n  name: caf\xe9\nspec:\n  containers:\n    - name: "
                     "\"<\x01\xff>\"\n");
  std::string out, err;
  const std::string junit = dir_.path() + "/latin1.xml";
  ASSERT_EQ(Run(absl::StrCat("--json --junit ", junit, " ", path), &out, &err), 1) << err;
  nlohmann::json doc = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out;
  EXPECT_EQ(doc["summary"]["containers"], 1);
  nlohmann::json j = Junit(junit);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["cases"][0]["name"], "<\\x01\\xff>: seccomp");
  // The table escapes them: no control byte reaches the terminal.
  ASSERT_EQ(Run(path, &out), 1);
  EXPECT_EQ(out.find('\x01'), std::string::npos) << out;
  EXPECT_NE(out.find("Pod/caf\\xe9"), std::string::npos) << out;
}

}  // namespace
}  // namespace vigil::cli
