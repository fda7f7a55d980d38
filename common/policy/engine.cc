#include "common/policy/engine.h"

#include <fnmatch.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/policy/placement.h"
#include "common/policy/rules.h"
#include "common/policy/scope.h"

namespace vigil::policy {
namespace {

int Rank(v1::TrustStatus s) {
  switch (s) {
    case v1::TRUST_CONTRAINDICATED:
      return 3;
    case v1::TRUST_WARNING:
      return 2;
    case v1::TRUST_AFFIRMING:
      return 1;
    default:
      return 0;
  }
}

bool Glob(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

}  // namespace

v1::TrustStatus WorseStatus(v1::TrustStatus a, v1::TrustStatus b) {
  return Rank(b) > Rank(a) ? b : a;
}

v1::TrustStatus OverallStatus(const std::vector<v1::WorkloadVerdict>& workloads) {
  v1::TrustStatus worst = v1::TRUST_NONE;
  for (const v1::WorkloadVerdict& w : workloads) worst = WorseStatus(worst, w.status());
  return worst;
}

std::string WorkloadId(const v1::WorkloadIdentity& identity) {
  std::string framed;
  for (const std::string* field :
       {&identity.name(), &identity.exe_path(), &identity.cgroup(), &identity.container_id()}) {
    uint64_t n = field->size();
    for (int i = 0; i < 8; ++i) framed.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    framed += *field;
  }
  return HexEncode(Sha256(framed));
}

bool SelectorMatchesSnapshot(const Selector& s, const v1::ProcessSnapshot& p) {
  if (s.pid && *s.pid != p.pid()) return false;
  if (!s.exe_glob.empty() && (p.exe_path().empty() || !Glob(s.exe_glob, p.exe_path()))) {
    return false;
  }
  if (!s.cgroup_glob.empty() && (p.cgroup().empty() || !Glob(s.cgroup_glob, p.cgroup()))) {
    return false;
  }
  if (!s.container_id.empty() && !absl::StartsWith(p.container_id(), s.container_id)) {
    return false;
  }
  if (!s.comm.empty() && s.comm != p.comm()) {
    // comm is the process's to change: one that renamed itself stays what the node saw.
    return std::find(p.matched_by().begin(), p.matched_by().end(), s.name) != p.matched_by().end();
  }
  return true;
}

std::vector<v1::WorkloadVerdict> Evaluate(const std::vector<Policy>& policies,
                                          const v1::RuntimeReport& report,
                                          const EvaluateOptions& options) {
  std::map<int, const v1::ProcessSnapshot*> by_pid;
  for (const v1::ProcessSnapshot& p : report.processes()) by_pid.emplace(p.pid(), &p);

  uint64_t lost = 0;
  for (const auto& [reason, count] : report.probes().dropped_events()) lost += count;

  std::vector<v1::WorkloadVerdict> verdicts;
  for (const Policy& policy : policies) {
    Placer placer(policy, by_pid);
    // Workloads of this policy keyed by (workload index, workload_id), in pid order of
    // their first process.
    std::map<std::pair<int, std::string>, size_t> index;
    std::vector<WorkloadEvidence> evidence;
    std::vector<v1::WorkloadVerdict> found;
    std::vector<int> workload_of;  // the workload index of each of `found`
    std::map<int, size_t> pid_group;
    // The group of a workload identity, added when new.
    auto add_group = [&](int workload, v1::WorkloadIdentity identity) {
      std::string id = WorkloadId(identity);
      auto [it, inserted] = index.emplace(std::make_pair(workload, id), found.size());
      if (inserted) {
        v1::WorkloadVerdict v;
        v.set_workload_id(std::move(id));
        *v.mutable_identity() = std::move(identity);
        v.set_policy_id(policy.Id());
        found.push_back(std::move(v));
        workload_of.push_back(workload);
        WorkloadEvidence ev;
        ev.workload = &policy.workloads[workload];
        ev.probes_ran = report.has_probes();
        ev.events_lost = lost;
        ev.report_has_scopes = report.scopes_size() > 0;
        evidence.push_back(std::move(ev));
      }
      return it->second;
    };
    for (const auto& [pid, process] : by_pid) {
      const Placement placement = placer.Place(pid);
      if (placement.workload < 0) continue;
      const size_t group = add_group(
          placement.workload,
          RootIdentity(policy.workloads[placement.workload].name, placement.root_pid, by_pid));
      found[group].add_pids(pid);
      evidence[group].processes.push_back(process);
      pid_group[pid] = group;
    }
    // Observed scopes join the workload their root is placed in; a scope whose workload
    // has no process in the report (its root exited) is a workload of its own, appraised
    // by the scope rules only.
    const size_t with_processes = found.size();
    for (const v1::WorkloadScope& scope : report.scopes()) {
      ScopePlacement placed = PlaceScope(policy, by_pid, placer, scope);
      if (placed.workload < 0) continue;
      evidence[add_group(placed.workload, std::move(placed.identity))].scopes.push_back(&scope);
    }
    // Events of processes that exited before the snapshot belong to the workload of the
    // parent that forked them.
    for (const v1::RuntimeEvent& e : report.events()) {
      auto group = pid_group.find(e.pid());
      if (group == pid_group.end()) {
        auto parent = pid_group.find(e.ppid());
        if (parent == pid_group.end()) continue;
        group = pid_group.emplace(e.pid(), parent->second).first;
      }
      evidence[group->second].events.push_back(&e);
      if (e.kind() == v1::EVENT_KIND_PROCESS_FORK && e.target_pid() > 0) {
        pid_group.emplace(e.target_pid(), group->second);
      }
    }
    for (size_t g = 0; g < found.size(); ++g) {
      v1::WorkloadVerdict& v = found[g];
      v1::TrustStatus status = v1::TRUST_NONE;
      for (const Rule& rule : policy.rules) {
        if (!rule.workloads.empty() && std::find(rule.workloads.begin(), rule.workloads.end(),
                                                 v.identity().name()) == rule.workloads.end()) {
          continue;
        }
        if (g >= with_processes && rule.kind != RuleKind::kScope) continue;
        std::vector<v1::RuleOutcome> outcomes;
        EvaluateRule(rule, evidence[g], options, &outcomes);
        for (v1::RuleOutcome& o : outcomes) {
          o.set_workload_id(v.workload_id());
          status = WorseStatus(status, o.status());
          *v.add_rules() = std::move(o);
        }
      }
      v.set_status(status);
    }
    std::vector<size_t> order(found.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return workload_of[a] < workload_of[b]; });
    for (size_t g : order) verdicts.push_back(std::move(found[g]));
  }
  return verdicts;
}

}  // namespace vigil::policy
