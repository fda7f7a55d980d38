#include "node/commands/check_command.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "common/policy/bundle.h"
#include "common/policy/engine.h"
#include "common/policy/parser.h"
#include "common/status_macros.h"
#include "node/commands/check_observation.h"
#include "node/commands/check_report.h"
#include "node/commands/check_verifier.h"
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
  // A signal that came after the last look is taken here: the check is ending anyway, and
  // unblocked it would end vigil-node before the report is written.
  ~StopSignals() {
    while (Pending()) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
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
  // As the verifier's bundles: two policies of one name are refused.
  RETURN_IF_ERROR(policy::BuildBundle(parsed.policies).status());
  return std::move(parsed.policies);
}

void SetCommandStatus(int ws, CommandResult* c) {
  if (WIFEXITED(ws)) c->exit_code = WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) c->signal = WTERMSIG(ws);
}

// The absolute path /proc/<pid>/exe would show for `path`, as far as it can be known.
std::string CanonicalExe(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) return path;
  std::string out = real;
  free(real);
  return out;
}

// The verifier appraises under its own bundle: a local policy it did not send is the
// pipeline's gate only, never on record.
void WarnUnlessSent(const std::vector<policy::Policy>& policies, const VerifierResult& verifier,
                    std::ostream& err) {
  if (verifier.outcome != VerifierOutcome::kAcknowledged) return;
  const std::set<std::string> sent(verifier.bundle_policy_digests.begin(),
                                   verifier.bundle_policy_digests.end());
  for (const policy::Policy& p : policies) {
    if (sent.count(PolicyDigest(p)) > 0) continue;
    err << "vigil-node: check: warning: policy " << p.Id()
        << " is not among the verifier's policies ("
        << (verifier.bundle_policy_ids.empty() ? "none"
                                               : absl::StrJoin(verifier.bundle_policy_ids, ", "))
        << "): the verdict on record does not appraise it; only this check's local result "
           "does\n";
  }
}

// A check that could not run: a usage error (2) or a failure of the check itself (3).
struct NotRun {
  int exit_code;
  std::string message;
};

// Loads the probes, observes the workload (starting the command, for a command) and
// evaluates the policy; `result` holds the policy and target fields already.
std::optional<NotRun> Observe(const CheckOptions& o, const std::vector<policy::Policy>& policies,
                              Target& target, CheckAttestation* attestation, CheckResult& result,
                              std::ostream& err) {
  const policy::NodeDirectives directives = policy::DirectivesOf(policies);
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
  probe_options.seed_pids = target.running;
  // A check on record measures its probes like `vigil-node run` (the verifier compares the
  // program tags with the reference values), so it loads the same programs, the file-event
  // tracepoints of the workload scope included; the check itself does not use file events.
  probe_options.file_events = attestation != nullptr;
  for (const Selector& s : o.selectors) {
    if (!s.pid.has_value()) probe_options.selectors.push_back(s);
  }
  absl::StatusOr<std::unique_ptr<BpfEventSource>> probes = BpfEventSource::Start(probe_options);
  if (!probes.ok()) {
    return NotRun{kCheckNotRun,
                  absl::StrCat("the probes could not be loaded: ", probes.status().message())};
  }
  BpfEventSource& source = **probes;
  if (attestation != nullptr) {
    // As `run` starts: the probes' object and program tags measured before any report.
    if (absl::Status st = attestation->MeasureStart(source); !st.ok()) {
      return NotRun{kCheckNotRun,
                    absl::StrCat("the start could not be measured in the TPM: ", st.message())};
    }
  }

  std::unique_ptr<CheckedCommand> command;
  int held_pid = 0;
  if (!o.command.empty()) {
    absl::StatusOr<std::unique_ptr<CheckedCommand>> spawned =
        CheckedCommand::Spawn(target.command_path, o.command);
    if (!spawned.ok()) {
      return NotRun{kCheckNotRun,
                    absl::StrCat("cannot start the command: ", spawned.status().message())};
    }
    command = *std::move(spawned);
    held_pid = command->pid();
    // Monitored before it execs: the probes see the command from its first syscall.
    if (absl::Status st = source.Monitor(held_pid); !st.ok()) {
      return NotRun{kCheckNotRun, absl::StrCat("cannot monitor the command: ", st.message())};
    }
    Selector own;
    own.name = "command";
    own.pid = held_pid;
    target.selectors = {own};
    target.roots = {held_pid};
    result.command.emplace();
    result.command->argv = o.command;
    result.command->pid = held_pid;
  }
  ProcessMatcher matcher(target.selectors);
  CheckObservation obs(&snapshotter, &matcher, &source);
  if (command != nullptr) {
    if (absl::Status st = command->Release(); !st.ok()) {
      return NotRun{kCheckUsage,
                    absl::StrCat("cannot run ", target.command_path, ": ", st.message())};
    }
    // Right after the exec, before anything else: a short-lived command may be gone soon.
    obs.tracked()[held_pid].exe = CanonicalExe(target.command_path);
    obs.Snapshot(held_pid, {"command"});
  } else {
    // What started or forked between the scan and the attach is picked up now.
    for (const MatchedProcess& m : matcher.Scan()) {
      if (absl::Status st = source.Monitor(m.pid); !st.ok()) {
        return NotRun{kCheckNotRun, absl::StrCat("cannot monitor pid ", m.pid, ": ", st.message())};
      }
    }
    obs.Round();
  }

  const absl::Time deadline = o.duration_seconds > 0
                                  ? obs.start() + absl::Seconds(o.duration_seconds)
                                  : absl::InfiniteFuture();
  absl::Time next_round = absl::Now() + kSnapshotInterval;
  for (;;) {
    if (command != nullptr && command->WaitExit(absl::ZeroDuration())) break;
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
    if (command->KillRemains()) {
      err << "vigil-node: check: killed what the command left running in its process group\n";
    }
  }
  source.Stop();
  obs.Drain(held_pid);
  obs.MarkExited();
  result.observed_seconds = absl::ToDoubleSeconds(absl::Now() - obs.start());

  std::set<int> unobserved;
  v1::RuntimeReport report = obs.BuildReport(target.roots, source.Status(), &unobserved);
  result.rows = FoldVerdicts(policy::Evaluate(policies, report), unobserved);
  result.probes = report.probes();
  result.events = static_cast<uint64_t>(report.events_size());
  result.gaps = obs.gaps();
  result.processes = obs.Processes(target.roots);
  if (attestation != nullptr) {
    // The same observation the rules above were evaluated on; the probes have stopped, so a
    // bundle's selectors change only what a later report would observe (there is none).
    result.verifier = attestation->Attest(std::move(report), &matcher, &snapshotter, nullptr);
    WarnUnlessSent(policies, *result.verifier, err);
  }
  return std::nullopt;
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
  if (o.node.has_value() && o.node->ca_cert_path.empty()) {
    return absl::InvalidArgumentError(
        "--verifier needs --ca-cert (the CA that signed the verifier), as `vigil-node run` does");
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
  CheckResult result;
  result.policy_file = o.policy_path;
  for (const policy::Policy& p : *policies) result.policy_ids.push_back(p.Id());
  result.target_mode = target->mode;
  result.target = target->text;
  std::unique_ptr<CheckAttestation> attestation;
  std::optional<NotRun> failed;
  if (o.node.has_value()) {
    absl::StatusOr<std::unique_ptr<StateDirLock>> lock = StateDirLock::Acquire(o.node->state_dir);
    if (!lock.ok()) {
      // A `vigil-node run` (or another check) owns this node's PCR and log: not disturbed.
      err << "vigil-node: check: " << lock.status().message() << "\n";
      return kCheckUsage;
    }
    absl::StatusOr<std::unique_ptr<CheckAttestation>> opened =
        CheckAttestation::Open(*o.node, *std::move(lock));
    if (!opened.ok()) {
      failed = NotRun{kCheckNotRun, absl::StrCat("the node's TPM could not be opened or enrolled: ",
                                                 opened.status().message())};
    } else {
      attestation = *std::move(opened);
    }
  }
  if (!failed.has_value()) failed = Observe(o, *policies, *target, attestation.get(), result, err);
  if (failed.has_value()) {
    err << "vigil-node: check: " << failed->message << "\n";
    if (failed->exit_code == kCheckUsage) return kCheckUsage;
    // The pipeline's report says the check did not run, rather than nothing at all.
    result.error = failed->message;
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
