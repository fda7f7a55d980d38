#include "node/watch_command.h"

#include <csignal>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "node/probes/bpf_event_source.h"
#include "node/probes/event_decoder.h"
#include "node/process_matcher.h"

namespace vigil::node {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return absl::StrCat("{\"error\":\"", status.ToString(), "\"}");
  return json;
}

void PrintSummary(const v1::ProbeStatus& status, bool json, std::ostream& summary) {
  if (json) {
    summary << ToJson(status) << "\n";
    return;
  }
  summary << "active hooks (" << status.active_hooks_size()
          << "): " << absl::StrJoin(status.active_hooks(), ", ") << "\n";
  summary << "refused hooks (" << status.refused_hooks_size()
          << "): " << absl::StrJoin(status.refused_hooks(), ", ") << "\n";
  summary << "dropped events:";
  for (const auto& [reason, n] : status.dropped_events()) summary << " " << reason << "=" << n;
  summary << "\nbpf object sha256: " << status.bpf_object_sha256() << "\n";
}

}  // namespace

absl::Status RunWatch(const WatchOptions& options, std::ostream& out, std::ostream& summary) {
  ProbeOptions probe;
  probe.monitor_all = options.selectors.empty();
  for (const auto& s : options.selectors) {
    if (s.pid.has_value()) probe.seed_pids.push_back(*s.pid);
  }
  probe.selectors = options.selectors;
  if (!options.selectors.empty()) {
    // Already running processes (and their descendants) the selectors match.
    for (const auto& m : ProcessMatcher(options.selectors).Scan()) {
      probe.seed_pids.push_back(m.pid);
    }
  }
  ASSIGN_OR_RETURN(auto source, BpfEventSource::Start(probe));

  g_stop.store(false);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  const absl::Time deadline = options.duration_seconds > 0
                                  ? absl::Now() + absl::Seconds(options.duration_seconds)
                                  : absl::InfiniteFuture();
  std::vector<v1::RuntimeEvent> events;
  while (!g_stop.load() && absl::Now() < deadline) {
    source->WaitForEvents(absl::Milliseconds(200));
    events.clear();
    source->Drain(&events);
    for (const auto& e : events) out << (options.json ? ToJson(e) : FormatEvent(e)) << "\n";
    out.flush();
  }
  events.clear();
  source->Drain(&events);
  for (const auto& e : events) out << (options.json ? ToJson(e) : FormatEvent(e)) << "\n";
  out.flush();
  PrintSummary(source->Status(), options.json, summary);

  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return absl::OkStatus();
}

}  // namespace vigil::node
