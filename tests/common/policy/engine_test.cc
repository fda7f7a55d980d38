// Which workload each process belongs to, the workload's identity and id, and how statuses
// combine.

#include "common/policy/engine.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/common/policy/policy_test_util.h"

namespace vigil::policy {
namespace {

using testing::CompliantProcess;
using testing::CompliantReport;
using testing::PolicyWithRules;

const char kNnp[] = "{id: nnp, kind: no_new_privs, controls: {nist_800_53: [AC-6(10)]}}";
const char kCaps[] =
    "{id: caps, kind: capabilities, absent: [CAP_SYS_PTRACE], controls: {soc2: [CC6.1]}}";

TEST(PolicyEngineTest, IdentityComesFromWhatTheProcessCannotChange) {
  v1::RuntimeReport report = CompliantReport();
  const std::vector<v1::WorkloadVerdict> v = Evaluate({PolicyWithRules({kNnp})}, report);
  ASSERT_EQ(v.size(), 1u);
  const v1::WorkloadIdentity& id = v[0].identity();
  EXPECT_EQ(id.name(), "agent");
  EXPECT_EQ(id.exe_path(), "/opt/agent/bin/agent");
  EXPECT_EQ(id.exe_sha256(), std::string(64, 'a'));
  EXPECT_EQ(id.cgroup(), "/system.slice/agent.service");
  EXPECT_EQ(std::vector<std::string>(id.exec_lineage().begin(), id.exec_lineage().end()),
            std::vector<std::string>{"/opt/agent/bin/agent"});
  EXPECT_EQ(v[0].workload_id(), WorkloadId(id));
  EXPECT_EQ(v[0].workload_id().size(), 64u);
  EXPECT_EQ(v[0].policy_id(), "t@3");
  EXPECT_EQ(std::vector<int>(v[0].pids().begin(), v[0].pids().end()), std::vector<int>{100});
  EXPECT_EQ(v[0].status(), v1::TRUST_AFFIRMING);
  ASSERT_EQ(v[0].rules_size(), 1);
  EXPECT_EQ(v[0].rules(0).controls(0), "NIST-800-53r5:AC-6(10)");
}

TEST(PolicyEngineTest, WorkloadIdIsStableAcrossRestartsAndIgnoresHashAndLineage) {
  v1::WorkloadIdentity a;
  a.set_name("agent");
  a.set_exe_path("/opt/agent/bin/agent");
  a.set_cgroup("/system.slice/agent.service");
  v1::WorkloadIdentity b = a;
  b.set_exe_sha256(std::string(64, 'b'));
  b.add_exec_lineage("/usr/bin/bash");
  EXPECT_EQ(WorkloadId(a), WorkloadId(b));
  // Field boundaries count: moving a byte from one field to the next changes the id.
  v1::WorkloadIdentity c = a;
  c.set_name("agen");
  c.set_exe_path("t/opt/agent/bin/agent");
  EXPECT_NE(WorkloadId(a), WorkloadId(c));
  v1::WorkloadIdentity d = a;
  d.set_container_id("0123456789ab");
  EXPECT_NE(WorkloadId(a), WorkloadId(d));
}

TEST(PolicyEngineTest, RenamedProcessStaysItsWorkload) {
  v1::RuntimeReport report = CompliantReport();
  report.mutable_processes(0)->set_comm("sshd");  // prctl(PR_SET_NAME)
  std::vector<v1::WorkloadVerdict> v = Evaluate({PolicyWithRules({kNnp})}, report);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].identity().name(), "agent");
  const std::string id = v[0].workload_id();
  report.mutable_processes(0)->set_comm("agent");
  v = Evaluate({PolicyWithRules({kNnp})}, report);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].workload_id(), id);
}

TEST(PolicyEngineTest, CommSelectorFollowsTheNodesMatchAfterARename) {
  absl::StatusOr<std::vector<Policy>> p = ParsePoliciesOrError(
      "apiVersion: vigil.dev/v1\nkind: RuntimePolicy\nmetadata: {name: c, revision: 1}\n"
      "spec:\n  workloads: [{name: by-comm, selectors: [\"comm=worker,exe=/opt/*\"]}]\n"
      "  rules: [" +
          std::string(kNnp) + "]\n",
      "c.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  v1::RuntimeReport report = CompliantReport();
  v1::ProcessSnapshot* proc = report.mutable_processes(0);
  proc->set_comm("renamed");
  proc->clear_matched_by();
  EXPECT_TRUE(Evaluate(*p, report).empty());  // neither comm nor the node says worker
  proc->add_matched_by("comm=worker,exe=/opt/*");
  std::vector<v1::WorkloadVerdict> v = Evaluate(*p, report);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].identity().name(), "by-comm");
}

TEST(PolicyEngineTest, ChildInheritsItsParentsWorkloadWhateverItRuns) {
  v1::RuntimeReport report = CompliantReport();
  v1::ProcessSnapshot* child = report.add_processes();
  *child = CompliantProcess(150);
  child->set_ppid(100);
  child->set_exe_path("/usr/bin/python3");
  child->set_comm("python3");
  child->clear_matched_by();
  child->add_matched_by("inherited:100");
  child->mutable_seccomp()->set_no_new_privs(false);
  v1::ProcessSnapshot* grandchild = report.add_processes();
  *grandchild = CompliantProcess(160);
  grandchild->set_ppid(150);
  grandchild->set_exe_path("/bin/sh");
  grandchild->clear_matched_by();
  grandchild->add_matched_by("inherited:150");
  const std::vector<v1::WorkloadVerdict> v = Evaluate({PolicyWithRules({kNnp})}, report);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(std::vector<int>(v[0].pids().begin(), v[0].pids().end()),
            (std::vector<int>{100, 150, 160}));
  EXPECT_EQ(v[0].identity().exe_path(), "/opt/agent/bin/agent");
  EXPECT_EQ(v[0].status(), v1::TRUST_CONTRAINDICATED);
  ASSERT_EQ(v[0].rules_size(), 3);
  EXPECT_EQ(v[0].rules(1).pid(), 150);
  EXPECT_EQ(v[0].rules(1).status(), v1::TRUST_CONTRAINDICATED);
}

TEST(PolicyEngineTest, InheritanceCycleInForgedReportDoesNotHang) {
  v1::RuntimeReport report;
  for (int pid : {10, 11}) {
    v1::ProcessSnapshot* p = report.add_processes();
    p->set_pid(pid);
    p->set_ppid(pid == 10 ? 11 : 10);
    p->add_matched_by(pid == 10 ? "inherited:11" : "inherited:10");
    p->set_exe_path("/opt/agent/x");
  }
  const std::vector<v1::WorkloadVerdict> v = Evaluate({PolicyWithRules({kNnp})}, report);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].pids_size(), 2);
}

TEST(PolicyEngineTest, UnselectedProcessesAndNoRulesGiveNone) {
  v1::RuntimeReport report = CompliantReport();
  report.mutable_processes(0)->set_exe_path("/usr/sbin/cron");
  EXPECT_TRUE(Evaluate({PolicyWithRules({kNnp})}, report).empty());
  EXPECT_EQ(OverallStatus({}), v1::TRUST_NONE);

  // A rule limited to another workload: the workload is selected, but nothing speaks.
  absl::StatusOr<std::vector<Policy>> p = ParsePoliciesOrError(
      "apiVersion: vigil.dev/v1\nkind: RuntimePolicy\nmetadata: {name: n, revision: 1}\n"
      "spec:\n  workloads: [{name: a, selectors: [\"exe=/opt/*\"]}, {name: b, selectors: "
      "[\"exe=/srv/*\"]}]\n  rules: [{id: r, kind: no_new_privs, workloads: [b], controls: "
      "{soc2: [CC6.1]}}]\n",
      "n.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  const std::vector<v1::WorkloadVerdict> v = Evaluate(*p, CompliantReport());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].identity().name(), "a");
  EXPECT_EQ(v[0].status(), v1::TRUST_NONE);
  EXPECT_EQ(OverallStatus(v), v1::TRUST_NONE);
}

TEST(PolicyEngineTest, OverallStatusIsTheWorst) {
  std::vector<v1::WorkloadVerdict> v(3);
  v[0].set_status(v1::TRUST_AFFIRMING);
  v[1].set_status(v1::TRUST_NONE);
  v[2].set_status(v1::TRUST_WARNING);
  EXPECT_EQ(OverallStatus(v), v1::TRUST_WARNING);
  v[1].set_status(v1::TRUST_CONTRAINDICATED);
  EXPECT_EQ(OverallStatus(v), v1::TRUST_CONTRAINDICATED);
}

TEST(PolicyEngineTest, EachPolicyAndIdentityGetsItsOwnVerdict) {
  v1::RuntimeReport report = CompliantReport();
  v1::ProcessSnapshot* other = report.add_processes();
  *other = CompliantProcess(200);
  other->set_exe_path("/opt/agent/bin/other");
  other->mutable_capabilities()->set_bounding(uint64_t{1} << 19);
  Policy second = PolicyWithRules({kCaps});
  second.name = "second";
  const std::vector<v1::WorkloadVerdict> v = Evaluate({PolicyWithRules({kNnp}), second}, report);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0].policy_id(), "t@3");
  EXPECT_EQ(v[1].policy_id(), "t@3");
  EXPECT_EQ(v[2].policy_id(), "second@3");
  EXPECT_NE(v[0].workload_id(), v[1].workload_id());
  EXPECT_EQ(v[0].workload_id(), v[2].workload_id());  // same identity under both policies
  EXPECT_EQ(v[2].status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(v[3].status(), v1::TRUST_CONTRAINDICATED);
  EXPECT_EQ(v[3].rules(0).reason(), "process holds CAP_SYS_PTRACE in bounding");
}

TEST(PolicyEngineTest, EscapesAttackerControlledText) {
  v1::RuntimeReport report = CompliantReport();
  v1::ThreadState* t = report.mutable_processes(0)->add_divergent_threads();
  t->set_tid(101);
  t->set_comm("evil\n\xff\"");
  t->mutable_seccomp()->set_no_new_privs(false);
  const std::vector<v1::WorkloadVerdict> v = Evaluate({PolicyWithRules({kNnp})}, report);
  ASSERT_EQ(v.size(), 1u);
  ASSERT_EQ(v[0].rules_size(), 2);
  EXPECT_EQ(v[0].rules(1).reason(), "thread 101 'evil\\n\\xff\\\"' does not have no_new_privs");
  EXPECT_EQ(v[0].rules(1).tid(), 101);
}

}  // namespace
}  // namespace vigil::policy
