#include "node/procfs/process_matcher.h"

#include <dirent.h>
#include <fnmatch.h>

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"
#include "node/procfs/procfs.h"

namespace vigil::node {

bool SelectorMatches(const Selector& sel, const ProcessFacts& p) {
  if (sel.pid.has_value() && *sel.pid != p.pid) return false;
  if (!sel.comm.empty() && sel.comm != p.comm) return false;
  if (!sel.exe_glob.empty() &&
      (p.exe.empty() || fnmatch(sel.exe_glob.c_str(), p.exe.c_str(), 0) != 0)) {
    return false;
  }
  if (!sel.cgroup_glob.empty() &&
      (p.cgroup.empty() || fnmatch(sel.cgroup_glob.c_str(), p.cgroup.c_str(), 0) != 0)) {
    return false;
  }
  if (!sel.container_id.empty() &&
      (p.container_id.empty() || !absl::StartsWith(p.container_id, sel.container_id))) {
    return false;
  }
  return true;
}

ProcessMatcher::ProcessMatcher(std::vector<Selector> selectors, std::string proc_root)
    : proc_root_(std::move(proc_root)) {
  SetSelectors(std::move(selectors));
}

void ProcessMatcher::SetSelectors(std::vector<Selector> selectors) {
  selectors_ = std::move(selectors);
  need_exe_ = false;
  need_cgroup_ = false;
  for (const Selector& s : selectors_) {
    need_exe_ |= !s.exe_glob.empty();
    need_cgroup_ |= !s.cgroup_glob.empty() || !s.container_id.empty();
  }
}

std::vector<MatchedProcess> ProcessMatcher::Scan(const std::vector<int>& extra_pids) const {
  std::map<int, ProcessFacts> procs;
  {
    DirPtr dir(opendir(proc_root_.c_str()));
    if (dir == nullptr) return {};
    while (dirent* e = readdir(dir.get())) {
      int pid = 0;
      if (!absl::SimpleAtoi(e->d_name, &pid) || pid <= 0) continue;
      auto text = procfs::ReadFile(absl::StrCat(proc_root_, "/", pid, "/stat"));
      if (!text.ok()) continue;
      auto st = procfs::ParseStat(*text);
      if (!st.ok()) continue;
      ProcessFacts& f = procs[pid];
      f.pid = pid;
      f.ppid = st->ppid;
      f.comm = st->comm;
    }
  }
  // Read the costlier facts only for selectors that need them.
  std::map<int, std::vector<std::string>> direct;
  for (auto& [pid, f] : procs) {
    if (need_exe_) {
      auto exe = procfs::ReadLink(absl::StrCat(proc_root_, "/", pid, "/exe"));
      if (exe.ok()) f.exe = *exe;
    }
    if (need_cgroup_) {
      auto cg = procfs::ReadFile(absl::StrCat(proc_root_, "/", pid, "/cgroup"));
      if (cg.ok()) {
        // The same cgroup and container id the snapshot reports, on v2 and v1 hosts alike.
        f.cgroup = procfs::ParseCgroupPath(*cg);
        f.container_id = procfs::ContainerIdFromCgroupFile(*cg);
      }
    }
    for (const Selector& s : selectors_) {
      if (SelectorMatches(s, f)) direct[pid].push_back(s.name);
    }
  }

  // A process is monitored when a selector matches it or its parent is monitored. Walk each
  // process's ancestry once, memoising, with a depth bound against ppid cycles in a torn
  // read of /proc.
  std::map<int, bool> monitored;
  auto is_monitored = [&](int pid) {
    std::vector<int> chain;
    bool result = false;
    for (int cur = pid, depth = 0; cur > 0 && depth < 4096; ++depth) {
      if (auto m = monitored.find(cur); m != monitored.end()) {
        result = m->second;
        break;
      }
      if (direct.contains(cur)) {
        result = true;
        monitored[cur] = true;
        break;
      }
      chain.push_back(cur);
      auto it = procs.find(cur);
      if (it == procs.end()) break;
      cur = it->second.ppid;
    }
    for (int c : chain) monitored[c] = result;
    return result;
  };

  std::vector<MatchedProcess> out;
  absl::flat_hash_set<int> included;
  for (const auto& [pid, f] : procs) {
    if (std::find(excluded_pids_.begin(), excluded_pids_.end(), pid) != excluded_pids_.end()) {
      continue;
    }
    MatchedProcess m;
    m.pid = pid;
    if (auto it = direct.find(pid); it != direct.end()) {
      m.matched_by = it->second;
    } else if (f.ppid > 0 && is_monitored(f.ppid)) {
      m.matched_by.push_back(absl::StrCat("inherited:", f.ppid));
    } else {
      continue;
    }
    included.insert(pid);
    out.push_back(std::move(m));
  }
  for (int pid : extra_pids) {
    if (included.contains(pid) || !procs.contains(pid)) continue;
    if (std::find(excluded_pids_.begin(), excluded_pids_.end(), pid) != excluded_pids_.end()) {
      continue;
    }
    included.insert(pid);
    out.push_back(MatchedProcess{pid, {"probe"}});
  }
  std::sort(out.begin(), out.end(),
            [](const MatchedProcess& a, const MatchedProcess& b) { return a.pid < b.pid; });
  return out;
}

}  // namespace vigil::node
