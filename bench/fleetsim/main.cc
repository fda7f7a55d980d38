// vigil-fleetsim: many simulated nodes against one real vigil-verifier (docs/fleetsim.md).

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/fleetsim/fleet.h"
#include "bench/fleetsim/fleet_check.h"
#include "bench/fleetsim/spawned_verifier.h"
#include "common/logging.h"
#include "common/tls.h"
#include "nlohmann/json.hpp"

namespace {

using vigil::fleetsim::Fleet;
using vigil::fleetsim::ProcessStats;
using vigil::fleetsim::WindowStats;

struct Flags {
  size_t nodes = 100;
  double interval = 5;
  double duration = 30;
  double warmup = 0;  // 0: one interval
  std::string verifier;
  std::string enroll;
  std::string ca;
  std::string tls_server_name;
  std::string sim_dir;
  int verifier_pid = 0;
  bool spawn = false;
  std::string verifier_binary;
  std::vector<std::string> verifier_args;
  std::string verifier_log_level = "warn";
  bool keep_dir = false;
  std::string write_setup;
  bool ramp = false;
  double ramp_start = 500;
  double ramp_step = 500;
  double step_duration = 20;
  double p99_limit_ms = 50;
  double events_per_second = 1;
  uint32_t noncompliant_percent = 20;
  size_t rsa_every = 16;
  size_t enroll_concurrency = 8;
  size_t workers = 2;
  size_t check_nodes = 0;
  size_t sentinels = 0;
  bool json = false;
};

// vigil-verifier next to this program in the build tree, else on PATH.
std::string DefaultVerifierBinary() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const std::filesystem::path built = self.parent_path() / "../../verifier/vigil-verifier";
    if (std::filesystem::exists(built, ec)) return std::filesystem::canonical(built).string();
    const std::filesystem::path beside = self.parent_path() / "vigil-verifier";
    if (std::filesystem::exists(beside, ec)) return beside.string();
  }
  return "/usr/bin/vigil-verifier";
}

nlohmann::json StatsJson(const WindowStats& w) {
  return nlohmann::json{
      {"seconds", w.seconds},
      {"acknowledged", w.acknowledged},
      {"reports_per_second", w.reports_per_second()},
      {"latency_ms", {{"p50", w.p50_ms}, {"p99", w.p99_ms}, {"max", w.max_ms}}},
      {"errors", w.errors},
      {"statuses", w.statuses},
      {"not_marked_simulated", w.not_marked_simulated},
      {"noncompliant_affirmed", w.noncompliant_affirmed},
      {"compliant_not_affirmed", w.compliant_not_affirmed},
      {"detection",
       {{"violations_sent", w.violations_sent},
        {"violations_detected", w.violations_detected},
        {"latency_ms",
         {{"p50", w.detect_p50_ms}, {"p99", w.detect_p99_ms}, {"max", w.detect_max_ms}}}}}};
}

std::optional<ProcessStats> Sample(int pid) {
  if (pid <= 0) return std::nullopt;
  absl::StatusOr<ProcessStats> s = vigil::fleetsim::ReadProcessStats(pid);
  if (!s.ok()) return std::nullopt;
  return *s;
}

// Sleeps `length` while the fleet reports, printing every 5 s what the verifier acknowledged
// in that slice (all acknowledgements, not only the measured window's) and their mean latency.
void ReportProgress(const Fleet& fleet, absl::Duration length, const std::string& phase) {
  const absl::Time end = absl::Now() + length;
  const absl::Time start = absl::Now();
  while (absl::Now() < end) {
    const uint64_t acks = fleet.acknowledged_total();
    const int64_t latency_ns = fleet.latency_total_ns();
    const absl::Time from = absl::Now();
    absl::SleepFor(std::min(absl::Seconds(5), end - from));
    const double seconds = absl::ToDoubleSeconds(absl::Now() - from);
    const uint64_t n = fleet.acknowledged_total() - acks;
    const double mean_ms = n > 0 ? (fleet.latency_total_ns() - latency_ns) / 1e6 / n : 0;
    std::fprintf(stderr,
                 "vigil-fleetsim: %s %.0f/%.0f s: %.0f reports/s acknowledged, mean latency "
                 "%.1f ms, %zu connected\n",
                 phase.c_str(), absl::ToDoubleSeconds(absl::Now() - start),
                 absl::ToDoubleSeconds(length), n / std::max(seconds, 1e-9), mean_ms,
                 fleet.connected());
  }
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "vigil-fleetsim: %s\n", what.c_str());
  return 1;
}

int Run(const Flags& f) {
  const uint64_t files = vigil::fleetsim::RaiseFileLimit();
  if (files < f.nodes + 256) {
    std::fprintf(stderr,
                 "vigil-fleetsim: warning: RLIMIT_NOFILE is %lu, fewer than one descriptor per "
                 "node; raise the hard limit (ulimit -Hn)\n",
                 static_cast<unsigned long>(files));
  }
  if (absl::Status st = vigil::EnforceTls13Only(); !st.ok()) return Fail(st.ToString());

  std::unique_ptr<vigil::fleetsim::SpawnedVerifier> spawned;
  vigil::CaMaterial ek_ca;
  vigil::fleetsim::FleetOptions options;
  int verifier_pid = f.verifier_pid;
  if (f.spawn) {
    vigil::fleetsim::SpawnedVerifier::Options so;
    so.binary = f.verifier_binary.empty() ? DefaultVerifierBinary() : f.verifier_binary;
    so.report_interval = absl::StrCat(static_cast<int64_t>(f.interval * 1000), "ms");
    so.extra_args = f.verifier_args;
    so.log_level = f.verifier_log_level;
    so.keep_dir = f.keep_dir;
    auto started = vigil::fleetsim::SpawnedVerifier::Start(so);
    if (!started.ok()) return Fail(started.status().ToString());
    spawned = *std::move(started);
    verifier_pid = spawned->pid();
    std::fprintf(stderr, "vigil-fleetsim: vigil-verifier pid %d on %s\n", verifier_pid,
                 spawned->attest_address().c_str());
    if (f.keep_dir)
      std::fprintf(stderr, "vigil-fleetsim: verifier files in %s\n", spawned->dir().c_str());
    options.attest_address = spawned->attest_address();
    options.enroll_address = spawned->enroll_address();
    options.ca_pem = spawned->ca_pem();
    options.ek_ca = &spawned->ek_ca();
  } else {
    if (f.verifier.empty() || f.enroll.empty() || f.ca.empty() || f.sim_dir.empty()) {
      return Fail("give --spawn-verifier, or --verifier, --enroll, --ca and --sim-dir");
    }
    auto ca_pem = vigil::ReadFileToString(f.ca);
    if (!ca_pem.ok()) return Fail(ca_pem.status().ToString());
    auto loaded = vigil::fleetsim::WriteSimulationFiles(f.sim_dir);
    if (!loaded.ok()) return Fail(loaded.status().ToString());
    ek_ca = *std::move(loaded);
    options.attest_address = f.verifier;
    options.enroll_address = f.enroll;
    options.ca_pem = *ca_pem;
    options.tls_server_name = f.tls_server_name;
    options.ek_ca = &ek_ca;
  }
  options.nodes = f.nodes;
  options.rsa_every = f.rsa_every;
  options.events_per_second = f.events_per_second;
  options.noncompliant_percent = f.noncompliant_percent;
  options.enroll_concurrency = f.enroll_concurrency;
  options.workers = f.workers;
  options.sentinels = std::min<size_t>(f.sentinels, f.nodes);
  if (options.sentinels > 0 && spawned == nullptr) {
    return Fail("--sentinels needs --spawn-verifier (its WatchVerdicts client is the operator)");
  }

  nlohmann::json out;
  out["nodes"] = f.nodes;
  out["interval_seconds"] = f.interval;
  out["warmup_seconds"] = f.warmup > 0 ? f.warmup : f.interval;
  out["events_per_second_per_node"] = f.events_per_second;
  Fleet fleet(options);
  std::optional<ProcessStats> before = Sample(verifier_pid);
  const absl::Time enroll_start = absl::Now();
  absl::Status enrolled = fleet.Enroll();
  const double enroll_seconds = absl::ToDoubleSeconds(absl::Now() - enroll_start);
  out["enrolled"] = fleet.enrolled();
  out["enroll_seconds"] = enroll_seconds;
  out["enrollments_per_second"] = fleet.enrolled() / std::max(enroll_seconds, 1e-9);
  if (!enrolled.ok()) return Fail(enrolled.ToString());
  std::optional<ProcessStats> after_enroll = Sample(verifier_pid);
  absl::Status connected = fleet.Connect();
  out["connected"] = fleet.connected();
  if (!connected.ok()) std::fprintf(stderr, "vigil-fleetsim: %s\n", connected.ToString().c_str());
  // Idle authenticated streams, each holding its first challenge: the streams' own cost.
  absl::SleepFor(absl::Seconds(2));
  std::optional<ProcessStats> idle = Sample(verifier_pid);

  if (options.sentinels > 0) {
    absl::Status watching =
        fleet.WatchChanges(spawned->attest_address(), spawned->operator_identity());
    if (!watching.ok()) return Fail(watching.ToString());
  }
  const absl::Duration interval = absl::Seconds(f.interval);
  fleet.Release(interval);
  WindowStats measured;
  if (!f.ramp) {
    // One interval for every node's first report (which carries its whole log), or longer
    // when asked (a large fleet's first reports can take the verifier longer to clear), then
    // the measured window.
    ReportProgress(fleet, f.warmup > 0 ? absl::Seconds(f.warmup) : interval, "warm-up");
    std::optional<ProcessStats> start = Sample(verifier_pid);
    fleet.StartWindow();
    ReportProgress(fleet, absl::Seconds(f.duration), "measured");
    measured = fleet.TakeWindow();
    std::optional<ProcessStats> end = Sample(verifier_pid);
    if (start && end) {
      out["verifier_cpu_percent"] =
          100 * (end->cpu_seconds - start->cpu_seconds) / std::max(measured.seconds, 1e-9);
    }
    out["connected_at_end"] = fleet.connected();
  } else {
    nlohmann::json steps = nlohmann::json::array();
    double best = 0;
    std::string saturation = "not reached";
    for (double rate = f.ramp_start;; rate += f.ramp_step) {
      const double step_interval = static_cast<double>(f.nodes) / rate;
      if (step_interval < 0.25) {
        saturation = "the simulated nodes' own limit (4 reports per second per node)";
        break;
      }
      fleet.SetInterval(absl::Seconds(step_interval));
      // The first step also clears every node's first report (--warmup, when given).
      const double settle =
          rate == f.ramp_start ? std::max(step_interval, f.warmup) : step_interval;
      ReportProgress(fleet, absl::Seconds(std::max(settle, 2.0)),
                     absl::StrFormat("ramp %.0f/s settling", rate));
      std::optional<ProcessStats> start = Sample(verifier_pid);
      fleet.StartWindow();
      ReportProgress(fleet, absl::Seconds(f.step_duration),
                     absl::StrFormat("ramp %.0f/s measured", rate));
      WindowStats w = fleet.TakeWindow();
      std::optional<ProcessStats> end = Sample(verifier_pid);
      nlohmann::json step = StatsJson(w);
      step["target_reports_per_second"] = rate;
      if (start && end) {
        step["verifier_cpu_percent"] =
            100 * (end->cpu_seconds - start->cpu_seconds) / std::max(w.seconds, 1e-9);
      }
      uint64_t errors = 0;
      for (const auto& [reason, n] : w.errors) errors += n;
      std::fprintf(stderr,
                   "vigil-fleetsim: ramp %.0f/s: achieved %.0f/s, p50 %.1f ms, p99 %.1f ms, "
                   "errors %lu\n",
                   rate, w.reports_per_second(), w.p50_ms, w.p99_ms,
                   static_cast<unsigned long>(errors));
      const bool sustained = errors == 0 && w.p99_ms <= f.p99_limit_ms &&
                             w.reports_per_second() >= 0.95 * rate && fleet.connected() == f.nodes;
      step["sustained"] = sustained;
      steps.push_back(step);
      if (!sustained) {
        saturation = errors > 0                     ? "errors"
                     : w.p99_ms > f.p99_limit_ms    ? "p99 latency over the limit"
                     : fleet.connected() != f.nodes ? "streams lost"
                                                    : "achieved rate below the target";
        break;
      }
      best = rate;
      measured = w;
    }
    out["ramp"] = {{"steps", steps},
                   {"highest_sustained_reports_per_second", best},
                   {"stopped_by", saturation},
                   {"p99_limit_ms", f.p99_limit_ms}};
  }
  std::optional<ProcessStats> reporting = Sample(verifier_pid);
  const size_t connected_nodes = fleet.connected();
  // Every violation of the measured window must reach the watcher, if late.
  const uint64_t undetected =
      options.sentinels > 0 ? fleet.AwaitDetections(absl::Now(), absl::Seconds(30)) : 0;
  fleet.Stop();

  out["reports_per_second"] = measured.reports_per_second();
  out["acknowledged"] = measured.acknowledged;
  out["latency_ms"] = {
      {"p50", measured.p50_ms}, {"p99", measured.p99_ms}, {"max", measured.max_ms}};
  std::map<std::string, uint64_t> errors = fleet.AllErrors();
  out["errors"] = errors;
  out["verdict_statuses"] = measured.statuses;
  out["verdicts_not_marked_simulated"] = measured.not_marked_simulated;
  out["noncompliant_affirmed"] = measured.noncompliant_affirmed;
  out["compliant_not_affirmed"] = measured.compliant_not_affirmed;
  if (options.sentinels > 0) {
    out["sentinels"] = options.sentinels;
    out["detection_latency_ms"] = {{"p50", measured.detect_p50_ms},
                                   {"p99", measured.detect_p99_ms},
                                   {"max", measured.detect_max_ms}};
    out["violations_sent"] = measured.violations_sent;
    out["violations_detected"] = measured.violations_detected;
    out["violations_undetected"] = undetected;
  }
  if (reporting) {
    out["verifier_cpu_seconds"] = reporting->cpu_seconds;
    out["verifier_peak_rss_bytes"] = reporting->peak_rss_bytes;
    out["verifier_rss_bytes"] = reporting->rss_bytes;
  }
  if (before && after_enroll && idle && reporting && connected_nodes > 0) {
    const double n = static_cast<double>(connected_nodes);
    out["verifier_rss_bytes_by_phase"] = {{"start", before->rss_bytes},
                                          {"enrolled", after_enroll->rss_bytes},
                                          {"streams_idle", idle->rss_bytes},
                                          {"reporting", reporting->rss_bytes}};
    out["memory_per_node_bytes"] =
        (static_cast<double>(reporting->rss_bytes) - static_cast<double>(after_enroll->rss_bytes)) /
        n;
    out["stream_bytes_per_node"] =
        (static_cast<double>(idle->rss_bytes) - static_cast<double>(after_enroll->rss_bytes)) / n;
    out["memory_beyond_stream_per_node_bytes"] =
        (static_cast<double>(reporting->rss_bytes) - static_cast<double>(idle->rss_bytes)) / n;
  }
  if (spawned != nullptr && f.check_nodes > 0) {
    auto checked =
        vigil::fleetsim::CheckFleet(spawned->attest_address(), spawned->ca_pem(),
                                    spawned->operator_identity(), fleet.node_ids(), f.check_nodes);
    if (!checked.ok()) return Fail(checked.status().ToString());
    out["fleet_api"] = checked->ToJson();
  }
  if (f.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("nodes enrolled:          %zu (%.0f/s)\n", fleet.enrolled(),
                out["enrollments_per_second"].get<double>());
    std::printf("streams connected:       %zu\n", connected_nodes);
    std::printf("reports per second:      %.1f\n", measured.reports_per_second());
    std::printf("verdict latency (ms):    p50 %.2f  p99 %.2f  max %.2f\n", measured.p50_ms,
                measured.p99_ms, measured.max_ms);
    if (options.sentinels > 0) {
      std::printf(
          "detection latency (ms):  p50 %.2f  p99 %.2f  max %.2f (%lu of %lu sentinel "
          "violations seen by the WatchVerdicts client in the window; %lu never)\n",
          measured.detect_p50_ms, measured.detect_p99_ms, measured.detect_max_ms,
          static_cast<unsigned long>(measured.violations_detected),
          static_cast<unsigned long>(measured.violations_sent),
          static_cast<unsigned long>(undetected));
    }
    std::printf("errors:                  %s\n", errors.empty() ? "none" : "");
    for (const auto& [reason, count] : errors) {
      std::printf("  %8lu  %s\n", static_cast<unsigned long>(count), reason.c_str());
    }
    if (reporting) {
      std::printf("verifier CPU time:       %.1f s\n", reporting->cpu_seconds);
      std::printf("verifier peak RSS:       %.1f MiB\n", reporting->peak_rss_bytes / 1048576.0);
    }
    if (out.contains("memory_per_node_bytes")) {
      std::printf("verifier memory/node:    %.1f KiB (stream %.1f KiB, beyond it %.1f KiB)\n",
                  out["memory_per_node_bytes"].get<double>() / 1024,
                  out["stream_bytes_per_node"].get<double>() / 1024,
                  out["memory_beyond_stream_per_node_bytes"].get<double>() / 1024);
    }
    if (out.contains("ramp")) {
      std::printf("highest sustained rate:  %.0f reports/s (stopped by %s)\n",
                  out["ramp"]["highest_sustained_reports_per_second"].get<double>(),
                  out["ramp"]["stopped_by"].get<std::string>().c_str());
    }
    if (out.contains("fleet_api"))
      std::printf("fleet API check:         %s\n", out["fleet_api"].dump().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // As in vigil-verifier: Debian's abseil (built without NDEBUG) would otherwise keep a
  // process-wide lock-order graph under one global lock, which gRPC's locks take on every
  // message of every simulated node (~9 % of the simulator's CPU with 2,000 nodes, perf).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  vigil::LogToStderr();
  CLI::App app{
      "vigil-fleetsim: many simulated nodes (software TPMs, real enrollment, real quotes, one\n"
      "mutual-TLS Attest stream each) against one vigil-verifier; prints reports per second,\n"
      "verdict latency, errors and the verifier's CPU and memory (docs/fleetsim.md).",
      "vigil-fleetsim"};
  Flags f;
  app.add_option("--nodes", f.nodes, "Simulated nodes")->check(CLI::PositiveNumber);
  app.add_option("--interval", f.interval, "Seconds between a node's reports")
      ->check(CLI::Range(0.25, 3600.0));
  app.add_option("--duration", f.duration,
                 "Seconds measured (after the warm-up: one interval, or --warmup)")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", f.warmup,
                 "Seconds between the release and the measured window, or the first ramp "
                 "step's (default: one interval)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--spawn-verifier", f.spawn,
               "Start a vigil-verifier with a temporary PKI, store and --accept-simulated-tpm");
  app.add_option("--verifier-binary", f.verifier_binary,
                 "The vigil-verifier to spawn (default: the build tree's, else "
                 "/usr/bin/vigil-verifier)");
  app.add_option("--verifier-arg", f.verifier_args,
                 "A further flag for the spawned verifier (repeatable, e.g. "
                 "--verifier-arg=--max-streams=30000)");
  app.add_option("--verifier-log-level", f.verifier_log_level,
                 "The spawned verifier's --log-level (default warn; info, its own default, "
                 "logs a line per accepted report)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_flag("--keep-dir", f.keep_dir, "Keep the spawned verifier's directory (and its log)");
  app.add_option("--verifier", f.verifier,
                 "A running verifier's mutual-TLS listener (host:port) instead of spawning one");
  app.add_option("--enroll", f.enroll, "Its enrollment listener (host:port)");
  app.add_option("--ca", f.ca, "PEM of the Vigil CA its certificate chains to")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-server-name", f.tls_server_name,
                 "The name its certificate carries, when not the address's host");
  app.add_option("--sim-dir", f.sim_dir,
                 "Directory of the simulated-TPM EK CA (sim-ek-ca.crt/.key, created when "
                 "missing) with the verifier's reference-values.yaml and policy.yaml; start the "
                 "verifier with --accept-simulated-tpm DIR/sim-ek-ca.crt --reference-values "
                 "DIR/reference-values.yaml --policy DIR/policy.yaml")
      ->check(CLI::ExistingDirectory);
  app.add_option("--verifier-pid", f.verifier_pid,
                 "The running verifier's pid, to read its CPU time and memory from /proc");
  app.add_flag("--ramp", f.ramp,
               "Step the fleet's report rate up until p99 latency, errors or the achieved rate "
               "break; report the highest sustained rate");
  app.add_option("--ramp-start", f.ramp_start, "First ramp rate (reports/s)")
      ->check(CLI::PositiveNumber);
  app.add_option("--ramp-step", f.ramp_step, "Ramp increment (reports/s)")
      ->check(CLI::PositiveNumber);
  app.add_option("--step-duration", f.step_duration, "Seconds measured per ramp step")
      ->check(CLI::PositiveNumber);
  app.add_option("--p99-limit-ms", f.p99_limit_ms, "The ramp's p99 verdict latency limit")
      ->check(CLI::PositiveNumber);
  app.add_option("--events-per-second", f.events_per_second,
                 "Benign runtime events per node per second, carried in its reports")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--noncompliant-percent", f.noncompliant_percent,
                 "Nodes running a workload that breaks the policy")
      ->check(CLI::Range(0, 100));
  app.add_option("--rsa-every", f.rsa_every,
                 "Every N-th node has an RSA 2048 EK, the others ECC P-256 (0: none)");
  app.add_option("--enroll-concurrency", f.enroll_concurrency, "Enrollments in flight at once")
      ->check(CLI::PositiveNumber);
  app.add_option("--workers", f.workers, "Threads that quote and send evidence")
      ->check(CLI::PositiveNumber);
  app.add_option("--sentinels", f.sentinels,
                 "With --spawn-verifier: this many nodes alternate a compliant report with one "
                 "carrying a succeeded ptrace; a WatchVerdicts client times each violation from "
                 "the report sent to the node's change to CONTRAINDICATED (detection latency)");
  app.add_option("--check-fleet", f.check_nodes,
                 "With --spawn-verifier: afterwards read this many nodes' enrollment and every "
                 "verdict back through the Fleet API and count what says tpm_simulated");
  app.add_flag("--json", f.json, "Print the summary as JSON");
  CLI11_PARSE(app, argc, argv);
  return Run(f);
}
