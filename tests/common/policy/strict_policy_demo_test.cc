// deploy/policies/strict.yaml against the real demo agents, end to end: the node's probes
// watch both agents, its process matcher and snapshotter read them from procfs with the
// directives the policy derives, and the engine appraises the report. The hardened agent
// must be affirmed on every rule; the naive one must be contraindicated on the rules it
// breaks. Needs root (BPF, PTRACE_SECCOMP_GET_FILTER).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/policy/bundle.h"
#include "common/policy/engine.h"
#include "common/policy/parser.h"
#include "node/probes/bpf_event_source.h"
#include "node/procfs/file_hash_cache.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/demo_agent.h"

namespace vigil::policy {
namespace {

std::vector<Policy> StrictPolicy() {
  std::ifstream in(vigil::testing::SourceDir() + "/deploy/policies/strict.yaml");
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<Policy>> p = ParsePoliciesOrError(text.str(), "strict.yaml");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : std::vector<Policy>{};
}

bool Has(const std::vector<v1::RuntimeEvent>& events, v1::EventKind kind, int pid) {
  return std::any_of(events.begin(), events.end(), [&](const v1::RuntimeEvent& e) {
    return e.kind() == kind && (e.pid() == pid || e.ppid() == pid);
  });
}

const v1::WorkloadVerdict* VerdictOf(const std::vector<v1::WorkloadVerdict>& verdicts, int pid) {
  for (const v1::WorkloadVerdict& v : verdicts) {
    if (std::find(v.pids().begin(), v.pids().end(), pid) != v.pids().end()) return &v;
  }
  return nullptr;
}

// The worst status of each rule id.
std::map<std::string, v1::TrustStatus> ByRule(const v1::WorkloadVerdict& v) {
  std::map<std::string, v1::TrustStatus> out;
  for (const v1::RuleOutcome& o : v.rules()) {
    auto [it, inserted] = out.emplace(o.rule_id(), o.status());
    if (!inserted) it->second = WorseStatus(it->second, o.status());
  }
  return out;
}

TEST(StrictPolicyDemoTest, HardenedAgentPassesAndNaiveAgentFails) {
  ASSERT_EQ(geteuid(), 0u) << "needs root";
  const std::vector<Policy> policies = StrictPolicy();
  ASSERT_EQ(policies.size(), 1u);
  const NodeDirectives directives = DirectivesOf(policies);

  node::ProbeOptions probe_options;
  probe_options.selectors = directives.selectors;
  absl::StatusOr<std::unique_ptr<node::BpfEventSource>> probes =
      node::BpfEventSource::Start(probe_options);
  ASSERT_TRUE(probes.ok()) << probes.status();

  testing::DemoAgent hardened(testing::DemoAgent::BuiltPath("vigil-demo-hardened-agent"));
  testing::DemoAgent naive(testing::DemoAgent::BuiltPath("vigil-demo-naive-agent"));
  ASSERT_GT(hardened.pid(), 0);
  ASSERT_GT(naive.pid(), 0);
  ASSERT_NE(hardened.ReadyLine(), "");
  ASSERT_NE(naive.ReadyLine(), "");
  ASSERT_TRUE((*probes)->Monitor(hardened.pid()).ok());
  ASSERT_TRUE((*probes)->Monitor(naive.pid()).ok());

  // The naive agent repeats its ptrace, process_vm_readv and unshare every three seconds:
  // wait (bounded) until the probes have seen a round of them.
  std::vector<v1::RuntimeEvent> events;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && !(Has(events, v1::EVENT_KIND_PTRACE, naive.pid()) &&
                                     Has(events, v1::EVENT_KIND_PROCESS_VM_READV, naive.pid()) &&
                                     Has(events, v1::EVENT_KIND_UNSHARE, naive.pid()))) {
    (*probes)->WaitForEvents(absl::Milliseconds(500));
    (*probes)->Drain(&events);
  }
  ASSERT_TRUE(Has(events, v1::EVENT_KIND_PTRACE, naive.pid()));
  ASSERT_TRUE(Has(events, v1::EVENT_KIND_UNSHARE, naive.pid()));

  // The report of a node that runs strict.yaml, limited to this test's agents (other demo
  // agents may run on the machine).
  node::ProcessMatcher matcher(directives.selectors);
  std::set<int> ours = {hardened.pid(), naive.pid()};
  node::SnapshotOptions snapshot_options;
  snapshot_options.seccomp_syscalls = directives.seccomp_syscalls;
  for (const SensitiveFile& f : directives.sensitive_files) {
    snapshot_options.sensitive_paths.push_back({f.glob, f.classification});
  }
  node::FileHashCache hashes;
  node::Snapshotter snapshotter(snapshot_options, &hashes);
  v1::RuntimeReport report;
  std::vector<std::string> gaps;
  for (const node::MatchedProcess& m : matcher.Scan((*probes)->MonitoredPids())) {
    absl::StatusOr<v1::ProcessSnapshot> s = snapshotter.Snapshot(m.pid, &gaps);
    if (!s.ok() || (ours.count(s->pid()) == 0 && ours.count(s->ppid()) == 0)) continue;
    ours.insert(s->pid());
    for (const std::string& why : m.matched_by) s->add_matched_by(why);
    *report.add_processes() = *std::move(s);
  }
  (*probes)->Drain(&events);
  for (const v1::RuntimeEvent& e : events) {
    if (ours.count(e.pid()) != 0 || ours.count(e.ppid()) != 0) *report.add_events() = e;
  }
  *report.mutable_probes() = (*probes)->Status();
  for (const std::string& g : gaps) report.add_observation_gaps(g);

  const std::vector<v1::WorkloadVerdict> verdicts = Evaluate(policies, report);
  const v1::WorkloadVerdict* good = VerdictOf(verdicts, hardened.pid());
  const v1::WorkloadVerdict* bad = VerdictOf(verdicts, naive.pid());
  ASSERT_NE(good, nullptr) << report.DebugString();
  ASSERT_NE(bad, nullptr) << report.DebugString();
  ASSERT_NE(good, bad);

  EXPECT_EQ(good->status(), v1::TRUST_AFFIRMING) << good->DebugString();
  const std::map<std::string, v1::TrustStatus> good_rules = ByRule(*good);
  EXPECT_EQ(good_rules.size(), policies[0].rules.size());  // every rule spoke
  for (const auto& [id, status] : good_rules) EXPECT_EQ(status, v1::TRUST_AFFIRMING) << id;

  EXPECT_EQ(bad->status(), v1::TRUST_CONTRAINDICATED);
  const std::map<std::string, v1::TrustStatus> bad_rules = ByRule(*bad);
  for (const char* id : {"seccomp-denies-process-access", "capabilities-dropped", "no-new-privs",
                         "secrets-locked-no-wx", "no-user-namespaces", "process-access-events"}) {
    ASSERT_EQ(bad_rules.count(id), 1u) << id;
    EXPECT_EQ(bad_rules.at(id), v1::TRUST_CONTRAINDICATED) << id << "\n" << bad->DebugString();
  }
  // The naive agent's sibling is part of its workload, by inheritance or by its executable.
  EXPECT_GE(bad->pids_size(), 2) << bad->DebugString();
  EXPECT_EQ(bad->identity().name(), "agent");
  EXPECT_NE(good->workload_id(), bad->workload_id());
}

}  // namespace
}  // namespace vigil::policy
