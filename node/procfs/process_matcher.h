#pragma once

#include <string>
#include <vector>

#include "common/selector.h"

namespace vigil::node {

/// A process the node monitors and why.
struct MatchedProcess {
  int pid = 0;
  /// Selector names that matched; "inherited:<ppid>" when followed from its monitored
  /// parent; "probe" when only the kernel probes reported it.
  std::vector<std::string> matched_by;
};

/// What a selector is evaluated against, read from procfs.
struct ProcessFacts {
  int pid = 0;
  int ppid = 0;
  std::string comm;
  /// Target of /proc/<pid>/exe; empty when unreadable (kernel threads, exited processes).
  std::string exe;
  /// cgroup v2 path.
  std::string cgroup;
  /// Container id found in the cgroup path, if any.
  std::string container_id;
};

/// Whether every field `selector` sets matches `facts`.
bool SelectorMatches(const Selector& selector, const ProcessFacts& facts);

/// Evaluates selectors over every process in procfs, following children.
class ProcessMatcher {
 public:
  explicit ProcessMatcher(std::vector<Selector> selectors, std::string proc_root = "/proc");

  /// Scans procfs and returns the monitored processes ordered by pid: those a selector
  /// matches, every descendant of one ("inherited:<ppid>"), and `extra_pids` (pids the
  /// probes picked up at exec) that still exist ("probe"). Processes that vanish during the
  /// scan are skipped silently: exiting is not a gap.
  std::vector<MatchedProcess> Scan(const std::vector<int>& extra_pids = {}) const;

  const std::vector<Selector>& selectors() const { return selectors_; }

  /// Replaces the selectors (a new policy bundle's workloads beside the configured ones);
  /// the next Scan uses them. Not to be called while another thread scans.
  void SetSelectors(std::vector<Selector> selectors);

  /// Processes Scan never returns, whatever matches them: the node's own privileged process,
  /// whose state every report carries apart (RuntimeReport.node_self).
  void set_excluded_pids(std::vector<int> pids) { excluded_pids_ = std::move(pids); }

 private:
  std::vector<Selector> selectors_;
  std::string proc_root_;
  bool need_exe_ = false;
  bool need_cgroup_ = false;
  std::vector<int> excluded_pids_;
};

}  // namespace vigil::node
