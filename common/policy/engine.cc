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
#include "common/policy/rules.h"

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

// The parent a process was followed from, when the node says so.
std::optional<int> InheritedFrom(const v1::ProcessSnapshot& p) {
  for (const std::string& m : p.matched_by()) {
    int ppid = 0;
    if (absl::StartsWith(m, "inherited:") &&
        absl::SimpleAtoi(absl::string_view(m).substr(10), &ppid)) {
      return ppid;
    }
  }
  return std::nullopt;
}

// Where one process belongs under one policy: the workload and the process its identity
// comes from (the one a selector matched; its descendants inherit it).
struct Placement {
  int workload = -1;  // index into Policy::workloads; -1 when unselected
  int root_pid = 0;
};

class Placer {
 public:
  Placer(const Policy& policy, const std::map<int, const v1::ProcessSnapshot*>& by_pid)
      : policy_(policy), by_pid_(by_pid) {}

  Placement Place(int pid) {
    if (auto it = done_.find(pid); it != done_.end()) return it->second;
    Placement placement;
    if (!visiting_.insert(pid).second) return placement;  // a ppid cycle in forged input
    const v1::ProcessSnapshot& p = *by_pid_.at(pid);
    if (std::optional<int> parent = InheritedFrom(p); parent && by_pid_.count(*parent) != 0) {
      placement = Place(*parent);
    }
    if (placement.workload < 0) {
      for (size_t w = 0; w < policy_.workloads.size() && placement.workload < 0; ++w) {
        for (const Selector& s : policy_.workloads[w].selectors) {
          if (SelectorMatchesSnapshot(s, p)) {
            placement = {static_cast<int>(w), pid};
            break;
          }
        }
      }
    }
    visiting_.erase(pid);
    done_[pid] = placement;
    return placement;
  }

 private:
  const Policy& policy_;
  const std::map<int, const v1::ProcessSnapshot*>& by_pid_;
  std::map<int, Placement> done_;
  std::set<int> visiting_;
};

// Executable paths from the outermost monitored ancestor of `pid` to `pid`.
std::vector<std::string> ExecLineage(int pid,
                                     const std::map<int, const v1::ProcessSnapshot*>& by_pid) {
  std::vector<std::string> lineage;
  std::set<int> seen;
  for (auto it = by_pid.find(pid); it != by_pid.end() && seen.insert(it->first).second;
       it = by_pid.find(it->second->ppid())) {
    lineage.push_back(it->second->exe_path());
  }
  std::reverse(lineage.begin(), lineage.end());
  return lineage;
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
    for (const auto& [pid, process] : by_pid) {
      const Placement placement = placer.Place(pid);
      if (placement.workload < 0) continue;
      const v1::ProcessSnapshot& root = *by_pid.at(placement.root_pid);
      v1::WorkloadIdentity identity;
      identity.set_name(policy.workloads[placement.workload].name);
      identity.set_exe_path(root.exe_path());
      identity.set_exe_sha256(root.exe_sha256());
      identity.set_cgroup(root.cgroup());
      identity.set_container_id(root.container_id());
      for (std::string& e : ExecLineage(root.pid(), by_pid)) identity.add_exec_lineage(e);
      const std::string id = WorkloadId(identity);
      auto [it, inserted] = index.emplace(std::make_pair(placement.workload, id), found.size());
      if (inserted) {
        v1::WorkloadVerdict v;
        v.set_workload_id(id);
        *v.mutable_identity() = std::move(identity);
        v.set_policy_id(policy.Id());
        found.push_back(std::move(v));
        workload_of.push_back(placement.workload);
        WorkloadEvidence ev;
        ev.workload = &policy.workloads[placement.workload];
        ev.probes_ran = report.has_probes();
        ev.events_lost = lost;
        evidence.push_back(std::move(ev));
      }
      found[it->second].add_pids(pid);
      evidence[it->second].processes.push_back(process);
      pid_group[pid] = it->second;
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
