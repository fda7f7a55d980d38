#include "cli/audit_compare.h"

#include <gtest/gtest.h>
#include <linux/capability.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/pki.h"
#include "nlohmann/json.hpp"
#include "tests/cli/fake_fleet.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/temp_dir.h"
#include "tests/verifier/results/ear_test_util.h"

namespace vigil::cli {
namespace {

using testing::NodeId;

const std::string kData = vigil::testing::SourceDir() + "/tests/cli/testdata/compare/";
const std::string kA(64, 'a');
const std::string kB(64, 'b');
const std::string kC(64, 'c');

struct CgroupCase {
  std::string name;
  std::string path;
  std::string qos, pod_uid, container_id, runtime;
};

class KubepodsCgroupTest : public ::testing::TestWithParam<CgroupCase> {};

TEST_P(KubepodsCgroupTest, ParsesEveryDriverAndRuntime) {
  const CgroupCase& c = GetParam();
  std::optional<KubepodsCgroup> parsed = ParseKubepodsCgroup(c.path);
  ASSERT_TRUE(parsed.has_value()) << c.path;
  EXPECT_EQ(parsed->qos, c.qos);
  EXPECT_EQ(parsed->pod_uid, c.pod_uid);
  EXPECT_EQ(parsed->container_id, c.container_id);
  EXPECT_EQ(parsed->runtime, c.runtime);
}

const std::string kUid = "11111111-2222-3333-4444-555555555555";
const std::string kUidUnderscores = "11111111_2222_3333_4444_555555555555";

INSTANTIATE_TEST_SUITE_P(
    Layouts, KubepodsCgroupTest,
    ::testing::Values(
        // systemd driver, containerd, burstable
        CgroupCase{"SystemdContainerdBurstable",
                   "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                       kUidUnderscores + ".slice/cri-containerd-" + kA + ".scope",
                   "burstable", kUid, kA, "containerd"},
        // systemd driver, CRI-O, guaranteed (no QoS slice)
        CgroupCase{
            "SystemdCrioGuaranteed",
            "/kubepods.slice/kubepods-pod" + kUidUnderscores + ".slice/crio-" + kB + ".scope",
            "guaranteed", kUid, kB, "crio"},
        // systemd driver, Docker, best effort
        CgroupCase{"SystemdDockerBestEffort",
                   "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
                       kUidUnderscores + ".slice/docker-" + kC + ".scope",
                   "besteffort", kUid, kC, "docker"},
        // cgroupfs driver, bare id (containerd, Docker)
        CgroupCase{"CgroupfsBareIdBurstable", "/kubepods/burstable/pod" + kUid + "/" + kA,
                   "burstable", kUid, kA, ""},
        CgroupCase{"CgroupfsBareIdGuaranteed", "/kubepods/pod" + kUid + "/" + kB, "guaranteed",
                   kUid, kB, ""},
        // cgroupfs driver, CRI-O
        CgroupCase{"CgroupfsCrio", "/kubepods/besteffort/pod" + kUid + "/crio-" + kC, "besteffort",
                   kUid, kC, "crio"},
        // kind: the kubelet's hierarchy below a parent slice, a process in a sub-cgroup
        CgroupCase{"KindNestedSubCgroup",
                   "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
                   "kubelet-kubepods-besteffort-pod" +
                       kUidUnderscores + ".slice/cri-containerd-" + kA + ".scope/init",
                   "besteffort", kUid, kA, "containerd"},
        // the pod's own cgroup, no container below it
        CgroupCase{"PodCgroupWithoutContainer", "/kubepods/burstable/pod" + kUid, "burstable", kUid,
                   "", ""}),
    [](const ::testing::TestParamInfo<CgroupCase>& info) { return info.param.name; });

TEST(KubepodsCgroupParseTest, RefusesPathsThatAreNotAPodsContainer) {
  EXPECT_FALSE(ParseKubepodsCgroup("/system.slice/containerd.service").has_value());
  EXPECT_FALSE(ParseKubepodsCgroup("/user.slice/user-1000.slice").has_value());
  EXPECT_FALSE(ParseKubepodsCgroup("/kubepods.slice/kubepods-burstable.slice").has_value());
  EXPECT_FALSE(ParseKubepodsCgroup("/kubepods.slice/kubepods-pod" + kUidUnderscores +
                                   ".slice/crio-conmon-" + kB + ".scope")
                   .has_value());
  EXPECT_FALSE(ParseKubepodsCgroup("/kubepods/burstable/podnot-a-uid/" + kA).has_value());
  EXPECT_FALSE(ParseKubepodsCgroup("").has_value());
}

TEST(PairRuleTest, ParsesNamespaceNameContainerAndSelector) {
  absl::StatusOr<PairRule> rule = ParsePairRule("agents/web/nginx=comm=nginx,exe=/usr/sbin/*");
  ASSERT_TRUE(rule.ok()) << rule.status();
  EXPECT_EQ(rule->namespace_name, "agents");
  EXPECT_EQ(rule->name, "web");
  EXPECT_EQ(rule->container, "nginx");
  EXPECT_EQ(rule->selector.comm, "nginx");
  EXPECT_EQ(rule->selector.exe_glob, "/usr/sbin/*");
  absl::StatusOr<PairRule> short_form = ParsePairRule("web/nginx=container=" + kA.substr(0, 12));
  ASSERT_TRUE(short_form.ok()) << short_form.status();
  EXPECT_EQ(short_form->namespace_name, "");
  EXPECT_FALSE(ParsePairRule("web=comm=nginx").ok());
  EXPECT_FALSE(ParsePairRule("a/b/c/d=comm=x").ok());
  EXPECT_FALSE(ParsePairRule("web/nginx").ok());
  EXPECT_FALSE(ParsePairRule("web/nginx=colour=blue").ok());
}

v1::SyscallVerdict Verdict(const std::string& syscall, v1::SeccompAction action) {
  v1::SyscallVerdict v;
  v.set_syscall(syscall);
  v.set_arch("x86_64");
  v.set_action(action);
  return v;
}

constexpr uint64_t Cap(int n) { return uint64_t{1} << n; }

// Node a runs the steady pod's agent (everything as declared) and the drifted pod's worker;
// node b the host pod's tool and the web Deployment's nginx; node c has sent nothing.
class AuditCompareCommandTest : public testing::FakeFleetTest {
 protected:
  void SetUp() override {
    FakeFleetTest::SetUp();
    for (char c : {'a', 'b', 'c'}) fleet_.nodes.add_nodes()->set_node_id(NodeId(c));

    v1::RuntimeReport a;
    a.set_hostname("node-a");
    a.set_sequence(5);
    v1::ProcessSnapshot* agent = a.add_processes();
    agent->set_pid(100);
    agent->set_comm("agent");
    agent->set_cgroup(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
        "11111111_2222_3333_4444_555555555555.slice/cri-containerd-" +
        kA + ".scope");
    agent->set_container_id(kA);
    agent->mutable_seccomp()->set_mode(2);
    agent->mutable_seccomp()->set_no_new_privs(true);
    agent->mutable_seccomp()->set_filters_inspected(true);
    *agent->mutable_seccomp()->add_verdicts() = Verdict("ptrace", v1::SECCOMP_ACTION_ERRNO);
    *agent->mutable_seccomp()->add_verdicts() =
        Verdict("process_vm_readv", v1::SECCOMP_ACTION_ERRNO);
    *agent->mutable_seccomp()->add_verdicts() =
        Verdict("process_vm_writev", v1::SECCOMP_ACTION_KILL_PROCESS);
    agent->set_root_read_only(true);
    agent->mutable_node_namespaces()->add_shared("user");

    v1::ProcessSnapshot* worker = a.add_processes();
    worker->set_pid(200);
    worker->set_comm("worker");
    // cgroupfs driver and CRI-O; the id comes from the path.
    worker->set_cgroup("/kubepods/burstable/pod22222222-3333-4444-5555-666666666666/crio-" + kB);
    worker->mutable_capabilities()->set_bounding(Cap(CAP_SYS_PTRACE) | Cap(CAP_CHOWN));
    worker->mutable_seccomp()->set_mode(2);
    worker->mutable_seccomp()->set_filters_inspected(true);
    *worker->mutable_seccomp()->add_verdicts() = Verdict("ptrace", v1::SECCOMP_ACTION_ALLOW);
    *worker->mutable_seccomp()->add_verdicts() =
        Verdict("process_vm_readv", v1::SECCOMP_ACTION_ALLOW);
    worker->set_root_read_only(false);
    worker->mutable_node_namespaces();

    v1::ProcessSnapshot* unrelated = a.add_processes();
    unrelated->set_pid(1);
    unrelated->set_cgroup("/init.scope");

    v1::RuntimeReport b;
    b.set_hostname("node-b");
    v1::ProcessSnapshot* tool = b.add_processes();
    tool->set_pid(300);
    tool->set_comm("tool");
    tool->set_cgroup(
        "/kubepods.slice/kubepods-pod33333333_4444_5555_6666_777777777777.slice/"
        "docker-" +
        kC + ".scope");
    tool->set_container_id(kC);
    tool->mutable_capabilities()->set_bounding((uint64_t{1} << 41) - 1);
    tool->mutable_node_namespaces()->add_shared("net");
    tool->mutable_node_namespaces()->add_shared("pid");

    v1::ProcessSnapshot* nginx = b.add_processes();
    nginx->set_pid(400);
    nginx->set_comm("nginx");
    nginx->mutable_capabilities()->set_bounding(Cap(CAP_NET_BIND_SERVICE));
    nginx->mutable_seccomp()->set_mode(2);
    nginx->mutable_seccomp()->set_no_new_privs(true);
    nginx->mutable_seccomp()->set_inspection_error("PTRACE_SECCOMP_GET_FILTER: EACCES");
    nginx->mutable_node_namespaces();

    v1::GetLatestEvidenceResponse& ea = fleet_.evidence[NodeId('a')];
    ea.set_node_id(NodeId('a'));
    ea.mutable_evidence()->set_payload(a.SerializeAsString());
    v1::WorkloadVerdict* w = ea.mutable_verdict()->add_workloads();
    w->mutable_identity()->set_name("agent");
    w->add_pids(100);
    v1::GetLatestEvidenceResponse& eb = fleet_.evidence[NodeId('b')];
    eb.set_node_id(NodeId('b'));
    eb.mutable_evidence()->set_payload(b.SerializeAsString());

    absl::StatusOr<vigil::testing::TestTempDir> dir =
        vigil::testing::TestTempDir::Create("compare");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
  }

  // result of `check` for the comparison of `container` in a --json document.
  static std::string Result(const nlohmann::json& doc, const std::string& container,
                            const std::string& check) {
    for (const auto& c : doc["comparisons"]) {
      if (c["container"] != container) continue;
      for (const auto& k : c["checks"]) {
        if (k["check"] == check) return k["result"];
      }
    }
    return "absent";
  }

  vigil::testing::TestTempDir dir_;
};

TEST_F(AuditCompareCommandTest, ReportsEachDisagreementAndTheCleanPair) {
  std::string out, err;
  const std::string junit = dir_.path() + "/compare.xml";
  const std::string oscal = dir_.path() + "/compare.json";
  ASSERT_EQ(RunVigilctl(absl::StrCat("audit compare --json --manifests ", kData,
                                     " --pair agents/web/nginx=comm=nginx --junit ", junit,
                                     " --oscal ", oscal, ConnectionFlags()),
                        &out, &err),
            1)
      << err;
  // Node c has no evidence yet: said, not fatal.
  EXPECT_NE(err.find("node " + NodeId('c') + " has sent no evidence yet"), std::string::npos)
      << err;
  nlohmann::json doc = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out;

  ASSERT_EQ(doc["comparisons"].size(), 5u);
  EXPECT_EQ(doc["comparisons"][0]["paired_by"], "container id");
  EXPECT_EQ(doc["comparisons"][0]["processes"][0]["pid"], 100);
  EXPECT_EQ(doc["comparisons"][0]["processes"][0]["workload"], "agent");
  EXPECT_EQ(doc["comparisons"][1]["paired_by"], "container id");
  EXPECT_EQ(doc["comparisons"][2]["paired_by"], "pod uid");
  EXPECT_EQ(doc["comparisons"][3]["paired_by"], "--pair agents/web/nginx=comm=nginx");
  EXPECT_EQ(doc["comparisons"][4]["paired_by"], "");
  EXPECT_TRUE(doc["comparisons"][4]["processes"].empty());

  // The clean pair agrees on everything it declares.
  for (const char* check : {"capabilities", "seccomp", "read-only-root", "no-new-privs",
                            "privileged", "host-namespaces"}) {
    EXPECT_EQ(Result(doc, "agent", check), "agree") << check;
  }
  // The drifted pod: the spec drops ALL but CAP_SYS_PTRACE stays; RuntimeDefault but ptrace
  // allowed; read-only root declared, writable at runtime; no escalation declared, no
  // no_new_privs.
  EXPECT_EQ(Result(doc, "worker", "capabilities"), "disagree");
  EXPECT_EQ(Result(doc, "worker", "seccomp"), "disagree");
  EXPECT_EQ(Result(doc, "worker", "read-only-root"), "disagree");
  EXPECT_EQ(Result(doc, "worker", "no-new-privs"), "disagree");
  EXPECT_EQ(Result(doc, "worker", "privileged"), "agree");
  EXPECT_EQ(Result(doc, "worker", "host-namespaces"), "agree");
  // The host pod: not declared privileged but holds every capability; declares hostNetwork
  // only but shares the node's pid namespace too.
  EXPECT_EQ(Result(doc, "tool", "privileged"), "disagree");
  EXPECT_EQ(Result(doc, "tool", "host-namespaces"), "disagree");
  EXPECT_EQ(Result(doc, "tool", "seccomp"), "not-declared");
  // nginx: within the added capability; filters not inspected.
  EXPECT_EQ(Result(doc, "nginx", "capabilities"), "agree");
  EXPECT_EQ(Result(doc, "nginx", "seccomp"), "unknown");
  EXPECT_EQ(Result(doc, "nginx", "no-new-privs"), "agree");
  EXPECT_EQ(doc["summary"]["disagreements"], 6);
  EXPECT_EQ(doc["summary"]["unknown"], 1);
  EXPECT_EQ(doc["summary"]["paired"], 4);

  const std::string ptrace_message = [&] {
    for (const auto& k : doc["comparisons"][1]["checks"]) {
      if (k["check"] == "capabilities") return k["message"].get<std::string>();
    }
    return std::string();
  }();
  EXPECT_NE(ptrace_message.find("pid 200 on node-a's bounding set still holds 2 capabilities"),
            std::string::npos)
      << ptrace_message;
  EXPECT_NE(ptrace_message.find("CAP_SYS_PTRACE"), std::string::npos) << ptrace_message;

  // JUnit: a failure per disagreement, skipped for unknown, undeclared and unpaired.
  vigil::testing::CommandResult junit_check = vigil::testing::RunCommand(
      absl::StrCat(vigil::testing::kSystemPython, " ", vigil::testing::SourceDir(),
                   "/tests/cli/junit_check.py ", junit));
  ASSERT_EQ(junit_check.exit_code, 0) << junit_check.out;
  nlohmann::json j = nlohmann::json::parse(junit_check.out);
  EXPECT_EQ(j["counts"]["tests"], 4 * 6 + 1);
  EXPECT_EQ(j["counts"]["failures"], 6);
  bool saw_worker_seccomp = false;
  for (const auto& c : j["cases"]) {
    if (c["name"] == "worker: seccomp") {
      saw_worker_seccomp = c["types"] == nlohmann::json({"spec-seccomp"}) &&
                           c["messages"][0] ==
                               "declared RuntimeDefault; pid 200 on node-a's filter allows "
                               "ptrace, process_vm_readv";
    }
  }
  EXPECT_TRUE(saw_worker_seccomp);

  // OSCAL: valid assessment-results; AC-6(10) (capabilities, no_new_privs) is not satisfied.
  const std::string root = vigil::testing::SourceDir() + "/tests/verifier/results/";
  vigil::testing::CommandResult schema = vigil::testing::RunCommand(
      absl::StrCat(vigil::testing::kSystemPython, " ", root, "oscal_schema_check.py ", root,
                   "testdata/oscal_assessment_results.schema.json ", oscal));
  EXPECT_EQ(schema.exit_code, 0) << schema.out;
  absl::StatusOr<std::string> text = ReadFileToString(oscal);
  ASSERT_TRUE(text.ok());
  nlohmann::json assessment = nlohmann::json::parse(*text);
  bool ac610_not_satisfied = false;
  int observations = 0;
  for (const auto& result : assessment["assessment-results"]["results"]) {
    observations += static_cast<int>(result["observations"].size());
    for (const auto& f : result["findings"]) {
      if (f["target"]["target-id"] == "ac-6.10_obj") {
        ac610_not_satisfied = f["target"]["status"]["state"] == "not-satisfied";
      }
    }
  }
  EXPECT_TRUE(ac610_not_satisfied);
  // Two nodes, four paired containers.
  EXPECT_EQ(observations, 2 + 4);
}

TEST_F(AuditCompareCommandTest, AgreementExitsZeroAndTheTableSaysSo) {
  const std::string path = dir_.path() + "/steady.yaml";
  absl::StatusOr<std::string> all = ReadFileToString(kData + "pods.yaml");
  ASSERT_TRUE(all.ok());
  vigil::testing::WriteFile(path, all->substr(0, all->find("---")));
  std::string out, err;
  EXPECT_EQ(RunVigilctl(absl::StrCat("audit compare --node ", NodeId('a'), " --manifests ", path,
                                     ConnectionFlags()),
                        &out, &err),
            0)
      << out << err;
  EXPECT_NE(out.find("agents/Pod/steady"), std::string::npos) << out;
  EXPECT_EQ(out.find("disagree "), std::string::npos) << out;
  EXPECT_NE(out.find("1 declared container(s), 1 paired with processes of 1 node(s): 0 "
                     "disagreement(s), 0 unknown"),
            std::string::npos)
      << out;
  EXPECT_EQ(fleet_.CallCount("ListNodes"), 0);
}

TEST_F(AuditCompareCommandTest, NothingPairedIsAFailureNotASuccess) {
  const std::string path = dir_.path() + "/ghost.yaml";
  vigil::testing::WriteFile(path,
                            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ghost\nspec:\n  "
                            "containers:\n    - name: x\n");
  std::string out, err;
  EXPECT_EQ(
      RunVigilctl(absl::StrCat("audit compare --manifests ", path, ConnectionFlags()), &out, &err),
      1);
  EXPECT_NE(err.find("no declared container paired with an observed process"), std::string::npos)
      << err;
}

TEST_F(AuditCompareCommandTest, UsageErrorsExitTwo) {
  std::string out, err;
  EXPECT_EQ(RunVigilctl(absl::StrCat("audit compare --manifests ", kData, " --pair web=comm=x",
                                     ConnectionFlags()),
                        &out, &err),
            2);
  EXPECT_NE(err.find("expected [NAMESPACE/]NAME/CONTAINER=SELECTOR"), std::string::npos) << err;
  EXPECT_EQ(RunVigilctl(
                absl::StrCat("audit compare --manifests ", kData, "absent.yaml", ConnectionFlags()),
                &out, &err),
            2);
  EXPECT_EQ(fleet_.CallCount("GetLatestEvidence"), 0);
}

TEST_F(AuditCompareCommandTest, AnUnknownNodeIsAFailure) {
  std::string out, err;
  EXPECT_EQ(RunVigilctl(absl::StrCat("audit compare --node ", NodeId('d'), " --manifests ", kData,
                                     ConnectionFlags()),
                        &out, &err),
            1);
  EXPECT_NE(err.find("GetLatestEvidence: NOT_FOUND"), std::string::npos) << err;
}

}  // namespace
}  // namespace vigil::cli
