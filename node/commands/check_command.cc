#include "node/commands/check_command.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "common/policy/bundle.h"
#include "common/policy/engine.h"
#include "common/policy/parser.h"
#include "common/status_macros.h"
#include "node/commands/check_report.h"
#include "node/commands/checked_command.h"
#include "node/commands/watch_command.h"
#include "node/probes/bpf_event_source.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/procfs.h"
#include "node/procfs/snapshotter.h"

namespace vigil::node {
namespace {

// Between two snapshots of every observed process; new processes and new programs (exec)
// are snapshotted as soon as their events arrive, whatever this says.
constexpr absl::Duration kSnapshotInterval = absl::Milliseconds(500);
// How often the loop looks at events, the command and signals.
constexpr absl::Duration kTick = absl::Milliseconds(50);
// Between SIGTERM and SIGKILL when the observation ends before the command does.
constexpr absl::Duration kTerminateGrace = absl::Seconds(5);
// Events kept for the evaluation; beyond it they are counted as lost (the engine then
// says absent events prove nothing).
constexpr size_t kMaxEvents = 200000;
constexpr size_t kMaxGaps = 64;

// SIGINT and SIGTERM blocked (before any probe thread starts, so only sigtimedwait takes
// them); the previous mask comes back at the end.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~StopSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Whether SIGINT or SIGTERM arrived (consumes it).
  bool Pending() const {
    timespec zero{0, 0};
    return sigtimedwait(&set_, nullptr, &zero) > 0;
  }

 private:
  sigset_t set_;
  sigset_t old_;
};

// Whether `pid` exists and has not exited (a zombie has).
bool Running(int pid) {
  absl::StatusOr<std::string> text = procfs::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!text.ok()) return false;
  absl::StatusOr<procfs::Stat> stat = procfs::ParseStat(*text);
  return stat.ok() && !stat->exited();
}

// One process of the check, as last seen.
struct Tracked {
  v1::ProcessSnapshot snapshot;  // the latest snapshot taken while it ran
  std::vector<std::string> matched_by;
  int snapshots = 0;
  int64_t snapshot_ms = 0;
  bool exited = false;
  // What the events said, for a process never snapshotted.
  int ppid = 0;
  std::string comm;
  std::string exe;
};

// The processes of one check: snapshots them on demand and keeps the latest live one.
class Observation {
 public:
  Observation(const Snapshotter* snapshotter, const ProcessMatcher* matcher, BpfEventSource* probes)
      : snapshotter_(snapshotter), matcher_(matcher), probes_(probes), start_(absl::Now()) {}

  absl::Time start() const { return start_; }
  std::map<int, Tracked>& tracked() { return tracked_; }
  std::vector<v1::RuntimeEvent>& events() { return events_; }
  const std::vector<std::string>& gaps() const { return gaps_; }
  uint64_t events_lost() const { return events_lost_; }

  // Snapshots `pid` when it still runs; a process that exited keeps its last snapshot.
  void Snapshot(int pid, const std::vector<std::string>& matched_by) {
    Tracked& t = tracked_[pid];
    if (!matched_by.empty()) t.matched_by = matched_by;
    if (t.exited) return;
    if (!Running(pid)) {
      t.exited = true;
      return;
    }
    std::vector<std::string> gaps;
    absl::StatusOr<v1::ProcessSnapshot> s = snapshotter_->Snapshot(pid, &gaps);
    if (!s.ok()) {
      if (absl::IsNotFound(s.status())) {
        t.exited = true;
      } else {
        gaps.push_back(absl::StrCat("pid ", pid, ": ", s.status().message()));
      }
    } else if (s->exe_path().empty()) {
      t.exited = true;  // it became a zombie on the way: what remains is not its live state
    } else {
      t.snapshot = *std::move(s);
      ++t.snapshots;
      t.snapshot_ms = absl::ToInt64Milliseconds(absl::Now() - start_);
    }
    for (std::string& g : gaps) {
      if (gaps_.size() < kMaxGaps && std::find(gaps_.begin(), gaps_.end(), g) == gaps_.end()) {
        gaps_.push_back(std::move(g));
      }
    }
  }

  // Marks the processes that no longer run (at the end, once the command was ended).
  void MarkExited() {
    for (auto& [pid, t] : tracked_) {
      if (!Running(pid)) t.exited = true;
    }
  }

  // Snapshots every process of the check that runs now; false when none does.
  bool Round() {
    bool any = false;
    for (const MatchedProcess& m : matcher_->Scan(probes_->MonitoredPids())) {
      Snapshot(m.pid, m.matched_by);
      any = any || !tracked_[m.pid].exited;
    }
    return any;
  }

  // Takes the events the probes queued. A process seen for the first time, or a program
  // just exec'd, is snapshotted at once. Events of `held_pid` before its first exec are
  // vigil-node's own (the fork waiting to exec the command) and are left out.
  void Drain(int held_pid) {
    std::vector<v1::RuntimeEvent> batch;
    probes_->Drain(&batch);
    std::set<int> fresh;
    for (v1::RuntimeEvent& e : batch) {
      const bool exec = e.kind() == v1::EVENT_KIND_PROCESS_EXEC;
      if (e.pid() == held_pid && !held_exec_seen_) {
        if (!exec) continue;
        held_exec_seen_ = true;
      }
      Tracked& t = tracked_[e.pid()];
      if (t.ppid == 0) t.ppid = e.ppid();
      t.comm = e.comm();
      if (exec) t.exe = e.path();
      if (t.snapshots == 0 || exec) fresh.insert(e.pid());
      if (events_.size() < kMaxEvents) {
        events_.push_back(std::move(e));
      } else {
        ++events_lost_;
      }
    }
    for (int pid : fresh) {
      Tracked& t = tracked_[pid];
      std::vector<std::string> why;
      if (t.matched_by.empty()) {
        why.push_back(tracked_.count(t.ppid) != 0 && t.ppid != pid
                          ? absl::StrCat("inherited:", t.ppid)
                          : std::string("probe"));
      }
      Snapshot(pid, why);
    }
  }

 private:
  const Snapshotter* snapshotter_;
  const ProcessMatcher* matcher_;
  BpfEventSource* probes_;
  absl::Time start_;
  std::map<int, Tracked> tracked_;
  std::vector<v1::RuntimeEvent> events_;
  std::vector<std::string> gaps_;
  uint64_t events_lost_ = 0;
  bool held_exec_seen_ = false;
};

// What a check is about, decided before anything is loaded.
struct Target {
  std::string mode;
  std::string text;
  std::vector<Selector> selectors;  // for the process matcher
  std::vector<int> running;         // already running processes to seed
  std::set<int> roots;              // the processes the user named
  std::string command_path;         // resolved, for a command
};

absl::StatusOr<Target> ResolveTarget(const CheckOptions& o) {
  Target t;
  if (!o.command.empty()) {
    t.mode = "command";
    t.text = absl::StrJoin(o.command, " ");
    ASSIGN_OR_RETURN(t.command_path, ResolveCommand(o.command[0]));
    return t;
  }
  if (o.pid > 0) {
    t.mode = "pid";
    t.text = absl::StrCat(o.pid);
    Selector s;
    s.name = absl::StrCat("pid=", o.pid);
    s.pid = o.pid;
    t.selectors.push_back(s);
  } else {
    t.mode = "select";
    std::vector<std::string> names;
    for (const Selector& s : o.selectors) names.push_back(s.name);
    t.text = absl::StrJoin(names, " | ");
    t.selectors = o.selectors;
  }
  for (const MatchedProcess& m : ProcessMatcher(t.selectors).Scan()) {
    t.running.push_back(m.pid);
    const bool named = std::any_of(m.matched_by.begin(), m.matched_by.end(), [](auto& why) {
      return why.rfind("inherited:", 0) != 0 && why != "probe";
    });
    if (named) t.roots.insert(m.pid);
  }
  if (t.roots.empty()) {
    return absl::NotFoundError(
        o.pid > 0 ? absl::StrCat("no such process: pid ", o.pid)
                  : absl::StrCat("--select ", t.text, ": matches no running process"));
  }
  return t;
}

absl::StatusOr<std::vector<policy::Policy>> LoadPolicy(const std::string& path, std::ostream& err) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  policy::ParseResult parsed = policy::ParsePolicies(text, path);
  for (const policy::Diagnostic& d : parsed.diagnostics) err << d.ToString() << "\n";
  if (parsed.HasErrors()) return absl::InvalidArgumentError(absl::StrCat(path, ": invalid policy"));
  if (parsed.policies.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds no RuntimePolicy document"));
  }
  return std::move(parsed.policies);
}

void SetCommandStatus(int ws, CommandResult* c) {
  if (WIFEXITED(ws)) c->exit_code = WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) c->signal = WTERMSIG(ws);
}

// The RuntimeReport the engine evaluates: each process's latest live snapshot; a named
// process never snapshotted alive as the little its events said (its snapshot rules are then
// not observed); every event; the probes' status.
v1::RuntimeReport BuildReport(Observation& obs, const Target& target, BpfEventSource& probes,
                              std::set<int>* unobserved) {
  v1::RuntimeReport report;
  for (auto& [pid, t] : obs.tracked()) {
    if (t.snapshots > 0) {
      v1::ProcessSnapshot& s = *report.add_processes();
      s = t.snapshot;
      s.clear_matched_by();
      for (const std::string& why : t.matched_by) s.add_matched_by(why);
    } else if (target.roots.count(pid) != 0) {
      v1::ProcessSnapshot& s = *report.add_processes();
      s.set_pid(pid);
      s.set_ppid(t.ppid);
      s.set_comm(t.comm);
      s.set_exe_path(t.exe);
      for (const std::string& why : t.matched_by) s.add_matched_by(why);
      unobserved->insert(pid);
    }
  }
  for (const v1::RuntimeEvent& e : obs.events()) *report.add_events() = e;
  *report.mutable_probes() = probes.Status();
  if (obs.events_lost() > 0) {
    (*report.mutable_probes()->mutable_dropped_events())["check_queue_full"] += obs.events_lost();
  }
  for (const std::string& g : obs.gaps()) report.add_observation_gaps(g);
  return report;
}

// The absolute path /proc/<pid>/exe would show for `path`, as far as it can be known.
std::string CanonicalExe(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) return path;
  std::string out = real;
  free(real);
  return out;
}

}  // namespace

absl::Status ValidateCheckOptions(const CheckOptions& o) {
  const int ways = (o.pid > 0) + !o.selectors.empty() + !o.command.empty();
  if (ways != 1) {
    return absl::InvalidArgumentError(
        "name the workload exactly one way: --pid PID, --select SELECTOR or -- COMMAND ARGS...");
  }
  if (o.policy_path.empty()) return absl::InvalidArgumentError("--policy is required");
  if (o.duration_seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--duration ", o.duration_seconds, ": must be 0 or more seconds"));
  }
  if (o.duration_seconds == 0 && o.command.empty()) {
    return absl::InvalidArgumentError(
        "--duration 0 (until the command exits) needs a command; --pid and --select observe "
        "for a set time");
  }
  WatchOptions watch;
  watch.selectors = o.selectors;
  return ValidateWatchOptions(watch);
}

int RunCheck(const CheckOptions& o, std::ostream& out, std::ostream& err) {
  if (absl::Status valid = ValidateCheckOptions(o); !valid.ok()) {
    err << "vigil-node: check: " << valid.message() << "\n";
    return kCheckUsage;
  }
  absl::StatusOr<std::vector<policy::Policy>> policies = LoadPolicy(o.policy_path, err);
  if (!policies.ok()) {
    err << "vigil-node: check: " << policies.status().message() << "\n";
    return kCheckUsage;
  }
  absl::StatusOr<Target> target = ResolveTarget(o);
  if (!target.ok()) {
    err << "vigil-node: check: " << target.status().message() << "\n";
    return kCheckUsage;
  }
  const policy::NodeDirectives directives = policy::DirectivesOf(*policies);
  SnapshotOptions snapshot_options;
  snapshot_options.seccomp_syscalls = directives.seccomp_syscalls;
  for (const policy::SensitiveFile& f : directives.sensitive_files) {
    snapshot_options.sensitive_paths.push_back({f.glob, f.classification});
  }
  FileHashCache hashes;
  Snapshotter snapshotter(snapshot_options, &hashes);

  StopSignals signals;
  ProbeOptions probe_options;
  probe_options.syscall_entry_hooks = o.syscall_entry_hooks;
  probe_options.seed_pids = target->running;
  for (const Selector& s : o.selectors) {
    if (!s.pid.has_value()) probe_options.selectors.push_back(s);
  }
  absl::StatusOr<std::unique_ptr<BpfEventSource>> probes = BpfEventSource::Start(probe_options);
  if (!probes.ok()) {
    err << "vigil-node: check: the probes could not be loaded: " << probes.status().message()
        << "\n";
    return kCheckNotRun;
  }
  BpfEventSource& source = **probes;

  CheckResult result;
  result.policy_file = o.policy_path;
  for (const policy::Policy& p : *policies) result.policy_ids.push_back(p.Id());
  result.target_mode = target->mode;
  result.target = target->text;

  std::unique_ptr<CheckedCommand> command;
  int held_pid = 0;
  if (!o.command.empty()) {
    absl::StatusOr<std::unique_ptr<CheckedCommand>> spawned =
        CheckedCommand::Spawn(target->command_path, o.command);
    if (!spawned.ok()) {
      err << "vigil-node: check: cannot start the command: " << spawned.status().message() << "\n";
      return kCheckNotRun;
    }
    command = *std::move(spawned);
    held_pid = command->pid();
    // Monitored before it execs: the probes see the command from its first syscall.
    if (absl::Status st = source.Monitor(held_pid); !st.ok()) {
      err << "vigil-node: check: cannot monitor the command: " << st.message() << "\n";
      return kCheckNotRun;
    }
    Selector own;
    own.name = "command";
    own.pid = held_pid;
    target->selectors = {own};
    target->roots = {held_pid};
    result.command.emplace();
    result.command->argv = o.command;
    result.command->pid = held_pid;
  }
  ProcessMatcher matcher(target->selectors);
  Observation obs(&snapshotter, &matcher, &source);
  if (command != nullptr) {
    if (absl::Status st = command->Release(); !st.ok()) {
      err << "vigil-node: check: cannot run " << target->command_path << ": " << st.message()
          << "\n";
      return kCheckUsage;
    }
    // Right after the exec, before anything else: a short-lived command may be gone soon.
    obs.tracked()[held_pid].exe = CanonicalExe(target->command_path);
    obs.Snapshot(held_pid, {"command"});
  } else {
    // What started or forked between the scan and the attach is picked up now.
    for (const MatchedProcess& m : matcher.Scan()) {
      if (absl::Status st = source.Monitor(m.pid); !st.ok()) {
        err << "vigil-node: check: cannot monitor pid " << m.pid << ": " << st.message() << "\n";
        return kCheckNotRun;
      }
    }
    obs.Round();
  }

  const absl::Time deadline = o.duration_seconds > 0
                                  ? obs.start() + absl::Seconds(o.duration_seconds)
                                  : absl::InfiniteFuture();
  absl::Time next_round = absl::Now() + kSnapshotInterval;
  for (;;) {
    if (command != nullptr ? command->WaitExit(absl::ZeroDuration()) : false) break;
    if (signals.Pending()) {
      err << "vigil-node: check: signal received, ending the observation\n";
      break;
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    source.WaitForEvents(std::min(kTick, deadline - now));
    obs.Drain(held_pid);
    if (absl::Now() >= next_round) {
      next_round = absl::Now() + kSnapshotInterval;
      if (!obs.Round() && command == nullptr) break;  // every observed process exited
    }
  }
  // The state at the end of the observation, before the command is asked to stop.
  obs.Drain(held_pid);
  obs.Round();
  if (command != nullptr) {
    if (!command->WaitExit(absl::ZeroDuration())) {
      result.command->ended_by_check = true;
      command->Signal(SIGTERM);
      if (!command->WaitExit(kTerminateGrace)) {
        err << "vigil-node: check: the command ignored SIGTERM for "
            << absl::FormatDuration(kTerminateGrace) << ": killing it\n";
        command->Signal(SIGKILL);
        command->WaitExit(absl::InfiniteDuration());
      }
    }
    SetCommandStatus(*command->wait_status(), &*result.command);
  }
  source.Stop();
  obs.Drain(held_pid);
  obs.MarkExited();
  result.observed_seconds = absl::ToDoubleSeconds(absl::Now() - obs.start());

  std::set<int> unobserved;
  const v1::RuntimeReport report = BuildReport(obs, *target, source, &unobserved);
  const std::vector<v1::WorkloadVerdict> verdicts = policy::Evaluate(*policies, report);
  result.rows = FoldVerdicts(verdicts, unobserved);
  result.probes = report.probes();
  result.events = static_cast<uint64_t>(report.events_size());
  result.gaps = obs.gaps();
  for (auto& [pid, t] : obs.tracked()) {
    if (t.snapshots == 0 && target->roots.count(pid) == 0) continue;
    ObservedProcess p;
    p.pid = pid;
    p.exe = t.snapshots > 0 ? t.snapshot.exe_path() : t.exe;
    p.snapshots = t.snapshots;
    p.snapshot_ms = t.snapshot_ms;
    p.exited = t.exited;
    result.processes.push_back(std::move(p));
  }
  FinishResult(result);

  out << (o.json ? RenderJson(result) : RenderTable(result));
  out.flush();
  if (!o.junit_path.empty()) {
    std::ofstream junit(o.junit_path, std::ios::binary | std::ios::trunc);
    junit << RenderJunit(result);
    junit.close();
    if (!junit) {
      err << "vigil-node: check: cannot write " << o.junit_path << "\n";
      return kCheckNotRun;
    }
  }
  if (!out) return kCheckNotRun;
  return result.exit_code;
}

}  // namespace vigil::node
