// `vigil-node run` split by privilege, checked from outside: the real node on swtpm with BPF
// probes under exactly the systemd unit's capability bounding set (setpriv), a verifier that
// requires the node's self-protection, and the demo agents. /proc/<pid>/status of the main
// process and of its privileged process show exactly their documented capability sets,
// no_new_privs and (main only) a seccomp filter; the verdict carries vigil.node.self
// affirmed; the hardened agent's seccomp filter is still read back and evaluated. A node run
// with --single-process is contraindicated by that verifier. Without CAP_SETPCAP, CAP_BPF or
// CAP_PERFMON, `run` does not start.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/policy/node_self.h"
#include "node/privsep/privsep.h"
#include "node/procfs/procfs.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/node_unit.h"
#include "tests/testing/program_run.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil {
namespace {

using testing::Fabric;
namespace procfs = node::procfs;

procfs::Status StatusOf(pid_t pid) {
  absl::StatusOr<procfs::Status> st = node::privsep::ReadProcessStatus(pid);
  EXPECT_TRUE(st.ok()) << st.status();
  return st.ok() ? *st : procfs::Status{};
}

// The children of `pid` named `comm`, from /proc/<pid>/task/<pid>/children.
std::vector<pid_t> ChildrenNamed(pid_t pid, const std::string& comm) {
  std::vector<pid_t> out;
  absl::StatusOr<std::string> text =
      procfs::ReadFile(absl::StrCat("/proc/", pid, "/task/", pid, "/children"));
  if (!text.ok()) return out;
  for (absl::string_view field : absl::StrSplit(*text, ' ', absl::SkipWhitespace())) {
    pid_t child = 0;
    if (!absl::SimpleAtoi(field, &child)) continue;
    absl::StatusOr<std::string> name = procfs::ReadFile(absl::StrCat("/proc/", child, "/comm"));
    if (name.ok() && absl::StripTrailingAsciiWhitespace(*name) == comm) out.push_back(child);
  }
  return out;
}

const v1::ProcessSnapshot* SnapshotOf(const v1::RuntimeReport& r, pid_t pid) {
  for (const v1::ProcessSnapshot& p : r.processes()) {
    if (p.pid() == pid) return &p;
  }
  return nullptr;
}

TEST(NodePrivsepTest, SplitNodeHoldsItsDocumentedSetsAndTheVerifierAffirmsIt) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: BPF, ptrace, swtpm";
  Fabric::Options options;
  options.demo_agents = true;
  options.verifier_args = {"--require-node-self-protection"};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNodeUnder(
                   vigil::testing::SetprivWithCapabilities(vigil::testing::NodeUnitCapabilities()))
                  .ok());

  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_AFFIRMING);
  ASSERT_TRUE(node_id.ok()) << node_id.status() << f.Logs();

  // From outside: the main process and its one privileged child.
  const pid_t main_pid = f.node_pid();
  ASSERT_GT(main_pid, 0);
  std::vector<pid_t> privileged = ChildrenNamed(main_pid, node::privsep::kPrivilegedProcessName);
  ASSERT_EQ(privileged.size(), 1u) << f.Logs();
  procfs::Status main_state = StatusOf(main_pid);
  EXPECT_EQ(main_state.cap_effective, policy::kNodeMainCapabilities)
      << policy::CapabilityNames(main_state.cap_effective);
  EXPECT_EQ(main_state.cap_permitted, policy::kNodeMainCapabilities);
  EXPECT_EQ(main_state.cap_bounding, policy::kNodeMainCapabilities);
  EXPECT_EQ(main_state.cap_ambient, 0u);
  EXPECT_TRUE(main_state.no_new_privs);
  EXPECT_EQ(main_state.seccomp_mode, 2u);
  EXPECT_EQ(main_state.seccomp_filters, 1u);
  procfs::Status priv = StatusOf(privileged[0]);
  EXPECT_EQ(priv.cap_effective, policy::kNodePrivilegedCapabilities)
      << policy::CapabilityNames(priv.cap_effective);
  EXPECT_EQ(priv.cap_permitted, policy::kNodePrivilegedCapabilities);
  EXPECT_EQ(priv.cap_bounding, policy::kNodePrivilegedCapabilities);
  EXPECT_TRUE(priv.no_new_privs);
  EXPECT_EQ(priv.seccomp_mode, 0u);

  // The verdict and the report behind it, once the hardened agent is in a report.
  v1::Verdict verdict;
  v1::RuntimeReport report;
  const v1::ProcessSnapshot* hardened = nullptr;
  for (absl::Time deadline = absl::Now() + absl::Seconds(60);
       hardened == nullptr && absl::Now() < deadline; absl::SleepFor(absl::Milliseconds(200))) {
    absl::StatusOr<v1::GetLatestEvidenceResponse> latest = f.LatestEvidence(*node_id);
    ASSERT_TRUE(latest.ok()) << latest.status();
    verdict = latest->verdict();
    ASSERT_TRUE(report.ParseFromString(latest->evidence().payload()));
    hardened = SnapshotOf(report, f.hardened_agent_pid());
  }
  ASSERT_NE(hardened, nullptr) << f.Logs();
  EXPECT_EQ(verdict.status(), v1::TRUST_AFFIRMING) << verdict.detail();
  ASSERT_GE(verdict.rules_size(), 1);
  EXPECT_EQ(verdict.rules(0).rule_id(), policy::kNodeSelfRuleId);
  EXPECT_EQ(verdict.rules(0).status(), v1::TRUST_AFFIRMING) << verdict.rules(0).reason();

  ASSERT_TRUE(report.has_node_self());
  EXPECT_TRUE(report.node_self().privilege_separated());
  EXPECT_EQ(report.node_self().main().pid(), main_pid);
  EXPECT_EQ(report.node_self().privileged().pid(), privileged[0]);
  EXPECT_EQ(report.node_self().main().capabilities().effective(), policy::kNodeMainCapabilities);

  // The hardened agent's filter, read by the privileged process and evaluated by the main one.
  EXPECT_TRUE(hardened->seccomp().filters_inspected()) << hardened->seccomp().inspection_error();
  EXPECT_EQ(hardened->seccomp().inspection_error(), "");
  EXPECT_GE(hardened->seccomp().filter_sha256_size(), 1);
  bool ptrace_refused = false;
  for (const v1::SyscallVerdict& v : hardened->seccomp().verdicts()) {
    if (v.syscall() == "ptrace" && v.arch() == "x86_64") {
      ptrace_refused = v.action() != v1::SECCOMP_ACTION_ALLOW;
    }
  }
  EXPECT_TRUE(ptrace_refused) << hardened->seccomp().DebugString();

  // The main process may read map_files links but not open them: the mapped files are
  // hashed through their paths.
  ASSERT_GE(hardened->memory().executable_files_size(), 1);
  for (const v1::MappedFile& file : hardened->memory().executable_files()) {
    EXPECT_EQ(file.sha256().size(), 64u) << file.path();
  }

  EXPECT_TRUE(f.StopNode().ok()) << f.Logs();
}

TEST(NodePrivsepTest, SingleProcessNodeIsRefusedWhenSelfProtectionIsRequired) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: BPF, ptrace, swtpm";
  Fabric::Options options;
  options.verifier_args = {"--require-node-self-protection"};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  ASSERT_TRUE(f.StartNode({"--single-process"}).ok());
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(v1::TRUST_CONTRAINDICATED);
  ASSERT_TRUE(node_id.ok()) << node_id.status() << f.Logs();
  EXPECT_TRUE(ChildrenNamed(f.node_pid(), node::privsep::kPrivilegedProcessName).empty());
  absl::StatusOr<v1::GetLatestEvidenceResponse> latest = f.LatestEvidence(*node_id);
  ASSERT_TRUE(latest.ok()) << latest.status();
  const v1::Verdict& verdict = latest->verdict();
  ASSERT_GE(verdict.rules_size(), 1);
  EXPECT_EQ(verdict.rules(0).rule_id(), policy::kNodeSelfRuleId);
  EXPECT_EQ(verdict.rules(0).status(), v1::TRUST_CONTRAINDICATED);
  EXPECT_TRUE(absl::StrContains(verdict.rules(0).reason(), "the node runs as one process"))
      << verdict.rules(0).reason();
  EXPECT_TRUE(absl::StrContains(verdict.rules(0).reason(), "main process has no seccomp filter"))
      << verdict.rules(0).reason();
  EXPECT_TRUE(f.StopNode().ok()) << f.Logs();
}

TEST(NodePrivsepTest, RunDoesNotStartWithoutEachCapabilityOnlyTheSplitNeeds) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: BPF, ptrace, swtpm";
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start({});
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  Fabric& f = **fabric;
  const std::vector<std::string> unit = vigil::testing::NodeUnitCapabilities();
  // What `run` says when it stops, by the capability taken away.
  const std::map<std::string, std::string> reasons = {
      {"bpf", "vigil-node: loading BPF object: Operation not permitted"},
      {"perfmon", "vigil-node: loading BPF object: Operation not permitted"},
      {"setpcap",
       "vigil-node: locking the main process down: dropping CAP_SYS_ADMIN from the bounding set "
       "(needs CAP_SETPCAP)"}};
  for (const std::string& dropped : vigil::testing::CapabilitiesOnlyTheSplitNeeds()) {
    SCOPED_TRACE("without " + dropped);
    ASSERT_TRUE(reasons.contains(dropped));
    const size_t log_before = f.NodeLog().size();
    std::vector<std::string> fewer;
    std::copy_if(unit.begin(), unit.end(), std::back_inserter(fewer),
                 [&](const std::string& c) { return c != dropped; });
    ASSERT_TRUE(f.StartNodeUnder(vigil::testing::SetprivWithCapabilities(fewer)).ok());
    absl::StatusOr<int> status = f.AwaitNodeExit();
    ASSERT_TRUE(status.ok()) << status.status() << f.Logs();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << *status << f.NodeLog();
    const std::string log = f.NodeLog().substr(log_before);
    EXPECT_TRUE(absl::StrContains(log, reasons.at(dropped))) << log;
  }
}

}  // namespace
}  // namespace vigil
