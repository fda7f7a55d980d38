#include "node/commands/watch_command.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "node/probes/bpf_event_source.h"
#include "node/probes/event_decoder.h"
#include "node/probes/selector_maps.h"
#include "node/procfs/process_matcher.h"

namespace vigil::node {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

// SIGINT and SIGTERM end the watch (with the summary); SIGPIPE is ignored so a closed output
// is an error on write, not a silent death. The previous dispositions come back at the end.
class SignalScope {
 public:
  SignalScope() {
    g_stop.store(false);
    struct sigaction stop {};
    stop.sa_handler = OnSignal;
    sigemptyset(&stop.sa_mask);
    sigaction(SIGINT, &stop, &old_int_);
    sigaction(SIGTERM, &stop, &old_term_);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, &old_pipe_);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGPIPE, &old_pipe_, nullptr);
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  struct sigaction old_pipe_ {};
};

// The drop reasons in the order docs/probes.md lists them; any other reason follows.
constexpr const char* kDropReasons[] = {"ringbuf_full", "stash_full", "monitor_full", "queue_full",
                                        "malformed"};

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;  // a return value of 0 is a finding too
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (status.ok()) return json;
  // Still one valid JSON object: keep only characters that need no escaping.
  std::string reason(status.message());
  for (char& c : reason) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') c = '?';
  }
  return absl::StrCat("{\"error\":\"", reason, "\"}");
}

// The decoder has already escaped what the workload controls (comm, paths), so each event
// is one line of printable ASCII.
std::string Render(const v1::RuntimeEvent& event, bool json) {
  return json ? ToJson(event) : FormatEvent(event);
}

// Whether the reader of `fd` went away (a pipe without readers polls POLLERR, a hung-up
// socket or terminal POLLHUP) or `fd` is not open at all.
bool OutputGone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, 0, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
}

void PrintSummary(const v1::ProbeStatus& status, bool json, std::ostream& summary) {
  if (json) {
    summary << ToJson(status) + "\n";
    return;
  }
  std::map<std::string, uint64_t> rest(status.dropped_events().begin(),
                                       status.dropped_events().end());
  std::vector<std::string> drops;
  for (const char* reason : kDropReasons) {
    auto it = rest.find(reason);
    drops.push_back(absl::StrCat(reason, "=", it == rest.end() ? 0 : it->second));
    if (it != rest.end()) rest.erase(it);
  }
  for (const auto& [reason, n] : rest) drops.push_back(absl::StrCat(reason, "=", n));
  summary << absl::StrCat("active hooks (", status.active_hooks_size(),
                          "): ", absl::StrJoin(status.active_hooks(), ", "), "\n",
                          "refused hooks (", status.refused_hooks_size(),
                          "): ", absl::StrJoin(status.refused_hooks(), ", "), "\n",
                          "dropped events: ", absl::StrJoin(drops, " "), "\n",
                          "bpf object sha256: ", status.bpf_object_sha256(), "\n");
}

// Running processes the selectors match, with their descendants.
std::vector<int> MatchingPids(const std::vector<Selector>& selectors) {
  std::vector<int> pids;
  if (selectors.empty()) return pids;
  for (const auto& m : ProcessMatcher(selectors).Scan()) pids.push_back(m.pid);
  return pids;
}

}  // namespace

absl::Status ValidateWatchOptions(const WatchOptions& options) {
  if (options.duration_seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--duration ", options.duration_seconds, ": must be 0 or more seconds"));
  }
  size_t in_kernel = 0;
  for (const Selector& s : options.selectors) {
    RETURN_IF_ERROR(ToKernelSelector(s).status());
    // fnmatch(3) (running processes) would read these as a bracket expression or an escape;
    // the kernel (new processes) only knows '*' and '?', so the two would disagree.
    if (s.exe_glob.find_first_of("[\\") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("selector '", s.name, "': exe pattern '", s.exe_glob,
                       "' uses '[' or '\\'; only '*' and '?' are matched in the kernel"));
    }
    if (!s.pid.has_value()) ++in_kernel;
  }
  if (in_kernel > VIGIL_MAX_SELECTORS) {
    return absl::InvalidArgumentError(
        absl::StrCat(in_kernel, " selectors without a pid: the kernel matches at most ",
                     VIGIL_MAX_SELECTORS, " at exec"));
  }
  return absl::OkStatus();
}

absl::Status RunWatch(const WatchOptions& options, std::ostream& out, std::ostream& summary) {
  RETURN_IF_ERROR(ValidateWatchOptions(options));
  // From here on, Ctrl-C (even during the scan or the load) ends with a summary.
  SignalScope signals;
  ProbeOptions probe;
  probe.monitor_all = options.selectors.empty();
  probe.syscall_entry_hooks = options.syscall_entry_hooks;
  // A selector with a pid can only ever match that process, which is seeded when it matches
  // now; the kernel's exec-time matcher cannot check a pid, so it gets only the others.
  for (const Selector& s : options.selectors) {
    if (!s.pid.has_value()) probe.selectors.push_back(s);
  }
  std::vector<MatchedProcess> running;
  if (!options.selectors.empty()) running = ProcessMatcher(options.selectors).Scan();
  for (const Selector& s : options.selectors) {
    if (!s.pid.has_value()) continue;
    bool found = std::any_of(running.begin(), running.end(), [&](const MatchedProcess& m) {
      return std::find(m.matched_by.begin(), m.matched_by.end(), s.name) != m.matched_by.end();
    });
    if (!found) {
      return absl::NotFoundError(
          absl::StrCat("selector '", s.name, "' matches no running process"));
    }
  }
  for (const MatchedProcess& m : running) probe.seed_pids.push_back(m.pid);

  ASSIGN_OR_RETURN(auto source, BpfEventSource::Start(probe));
  // What started or forked between the scan above and the attach: matched again now that
  // the probes see every exec and every fork of a monitored process.
  std::vector<int> seeded = MatchingPids(options.selectors);
  for (int pid : seeded) RETURN_IF_ERROR(source->Monitor(pid));

  {
    const v1::ProbeStatus status = source->Status();
    std::vector<std::string> names;
    for (const Selector& s : options.selectors) names.push_back(s.name);
    std::string what = options.selectors.empty()
                           ? absl::StrCat("every process except this one (pid ", getpid(), ")")
                           : absl::StrCat("running processes matched: ", seeded.size(),
                                          "; selectors: ", absl::StrJoin(names, " | "));
    summary << absl::StrCat("watching: ", status.active_hooks_size(), " hooks active, ",
                            status.refused_hooks_size(), " refused; ", what, "\n");
    summary.flush();
  }

  const absl::Time deadline = options.duration_seconds > 0
                                  ? absl::Now() + absl::Seconds(options.duration_seconds)
                                  : absl::InfiniteFuture();
  bool output_closed = false;
  std::vector<v1::RuntimeEvent> events;
  auto print_drained = [&] {
    events.clear();
    source->Drain(&events);
    for (v1::RuntimeEvent& e : events) {
      if (output_closed) break;
      // One flushed line per event: a consumer on a pipe sees each event as it happens.
      out << Render(e, options.json) << '\n';
      out.flush();
      output_closed = !out;
    }
  };
  while (!g_stop.load() && !output_closed) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    source->WaitForEvents(std::min(left, absl::Milliseconds(200)));
    print_drained();
    if (!output_closed) output_closed = OutputGone(options.output_fd);
  }
  // Everything the probes emitted until now reaches the queue before the last drain.
  source->Stop();
  if (!output_closed) print_drained();
  if (output_closed) summary << "vigil-node: watch: output closed, stopping\n";
  PrintSummary(source->Status(), options.json, summary);
  summary.flush();
  return absl::OkStatus();
}

}  // namespace vigil::node
