// The node's cost of observing the workload scope: the same busy workload (file writes,
// renames, unlinks, reads of a secret and a configuration file, an exec every 64 steps) runs
// under the node's report loop twice per round, once with scope tracking off (probes without
// the file tracepoints, no ScopeTracker) and once on (file tracepoints, ScopeTracker fed on
// the consumer thread, dpkg lookups, the scope in every report). Printed per configuration:
// the node's CPU time (this process: ring-buffer consumer, decoding, snapshots, the tracker,
// report building), its resident memory growth, the events it received, the report size,
// the workload's steps per second; then the ratios on/off. A last pair of phases runs the
// workload unmonitored, to show what the file tracepoints cost a process the node does not
// watch. The dpkg database is loaded once before the phases, and its cost printed apart.
//
// Usage: scope_cost [--seconds S] [--rounds R]   (root: loads BPF)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/self_status.h"
#include "common/selector.h"
#include "node/agent/report_builder.h"
#include "node/probes/bpf_event_source.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "node/scope/dpkg_db.h"
#include "node/scope/scope_tracker.h"
#include "spdlog/spdlog.h"

namespace {

using namespace vigil;
using namespace vigil::node;

using vigil::bench::SelfStatusKib;

double CpuSeconds(const rusage& u) {
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Shared {
  std::atomic<int> go{0};
  std::atomic<int> stop{0};
  std::atomic<long> steps{0};
};

// The busy workload, in a child that waits for `go` and runs until `stop`.
pid_t StartWorkload(Shared* shared, const std::string& dir) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  while (shared->go.load() == 0) usleep(1000);
  const std::string secret = dir + "/token.bin", config = dir + "/app.yaml";
  char buf[64] = "scope-cost workload line\n";
  for (long i = 0; shared->stop.load() == 0; ++i) {
    const std::string tmp = absl::StrCat(dir, "/f", i % 64, ".tmp");
    const std::string dat = absl::StrCat(dir, "/f", i % 64, ".dat");
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      (void)!write(fd, buf, sizeof(buf));
      close(fd);
    }
    rename(tmp.c_str(), dat.c_str());
    if (i % 8 == 7) unlink(dat.c_str());
    if (i % 4 == 0) {
      for (const std::string& p : {secret, config}) {
        fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
          (void)!read(fd, buf, sizeof(buf) - 1);
          close(fd);
        }
      }
    }
    if (i % 64 == 63) {
      pid_t c = fork();
      if (c == 0) {
        execl("/bin/true", "true", static_cast<char*>(nullptr));
        _exit(127);
      }
      waitpid(c, nullptr, 0);
    }
    shared->steps.fetch_add(1);
  }
  _exit(0);
}

struct Result {
  double node_cpu = 0;
  double seconds = 0;
  long rss_growth_kib = 0;
  long steps = 0;
  double workload_cpu = 0;
  size_t reports = 0;
  size_t events = 0;
  size_t report_bytes = 0;  // the last report
  size_t scope_bytes = 0;   // its scopes
};

Result RunPhase(bool scope, bool monitored, double seconds, const std::string& dir) {
  auto* shared = static_cast<Shared*>(
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  new (shared) Shared();
  const pid_t child = StartWorkload(shared, dir);
  Result res;
  {
    ProbeOptions options;
    if (monitored) options.seed_pids = {child};
    options.file_events = scope;
    auto source = BpfEventSource::Start(options);
    if (!source.ok()) {
      std::fprintf(stderr, "probes: %s\n", source.status().ToString().c_str());
      std::exit(2);
    }
    Selector selector;
    selector.name = "scope-cost";
    selector.pid = monitored ? child : -1;
    ProcessMatcher matcher({selector});
    FileHashCache hashes;
    Snapshotter snapshotter(SnapshotOptions{}, &hashes);
    DpkgDatabase dpkg;
    dpkg.Owner("/usr/bin/true");  // loaded before the measurement (measured apart in main)
    ScopeTracker tracker(ScopeLimits{}, &hashes, &dpkg);
    const long rss_before = SelfStatusKib("VmRSS:");
    rusage before{}, after{};
    getrusage(RUSAGE_SELF, &before);
    if (scope) {
      (*source)->SetObserver([&tracker](const v1::RuntimeEvent& e) { tracker.ObserveEvent(e); });
    }
    ReportBuilder builder(NodeInfo{}, &matcher, &snapshotter, source->get());
    if (scope) builder.set_scope_tracker(&tracker, /*feed_events=*/false);
    const absl::Time start = absl::Now();
    shared->go.store(1);
    absl::Time next_report = start + absl::Seconds(1);
    while (absl::Now() - start < absl::Seconds(seconds)) {
      (*source)->WaitForEvents(absl::Milliseconds(100));
      builder.PollEvents();
      if (absl::Now() >= next_report) {
        v1::RuntimeReport r = builder.Build(16 << 20);
        ++res.reports;
        res.events += r.events_size();
        res.report_bytes = r.ByteSizeLong();
        res.scope_bytes = 0;
        for (const auto& s : r.scopes()) res.scope_bytes += s.ByteSizeLong();
        next_report += absl::Seconds(1);
      }
    }
    shared->stop.store(1);
    res.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    getrusage(RUSAGE_SELF, &after);
    res.node_cpu = CpuSeconds(after) - CpuSeconds(before);
    res.rss_growth_kib = SelfStatusKib("VmRSS:") - rss_before;
    res.steps = shared->steps.load();
    (*source)->SetObserver(nullptr);
    (*source)->Stop();
  }
  int status = 0;
  rusage child_usage{};
  wait4(child, &status, 0, &child_usage);
  res.workload_cpu = CpuSeconds(child_usage);
  munmap(shared, sizeof(Shared));
  return res;
}

void Print(const char* name, const Result& r) {
  std::printf(
      "%-22s node cpu %7.3f s (%5.2f%% of a core)  rss +%6ld KiB  reports %3zu  events sent "
      "%6zu  last report %7zu B (scopes %6zu B)  workload %8.0f steps/s, %.1f us cpu/step\n",
      name, r.node_cpu, 100 * r.node_cpu / r.seconds, r.rss_growth_kib, r.reports, r.events,
      r.report_bytes, r.scope_bytes, r.steps / r.seconds, 1e6 * r.workload_cpu / r.steps);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 8;
  int rounds = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
  }
  spdlog::set_level(spdlog::level::warn);
  char tmpl[] = "/tmp/vigil-scope-cost-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 2;
  const std::string dir = tmpl;
  std::ofstream(dir + "/token.bin") << "secret\n";
  chmod((dir + "/token.bin").c_str(), 0600);
  std::ofstream(dir + "/app.yaml") << "setting: 1\n";

  {
    const long rss = SelfStatusKib("VmRSS:");
    rusage before{}, after{};
    getrusage(RUSAGE_SELF, &before);
    DpkgDatabase dpkg;
    const bool owned = dpkg.Owner("/usr/bin/true").has_value();
    getrusage(RUSAGE_SELF, &after);
    std::printf("dpkg database load: %.3f s cpu, rss +%ld KiB, %zu paths indexed%s\n",
                CpuSeconds(after) - CpuSeconds(before), SelfStatusKib("VmRSS:") - rss,
                dpkg.indexed_paths(), owned ? "" : " (/usr/bin/true: no owner!)");
  }

  Result off, on;
  for (int round = 0; round < rounds; ++round) {
    for (bool scope : {false, true}) {
      Result r = RunPhase(scope, /*monitored=*/true, seconds, dir);
      Print(scope ? "monitored, scope on" : "monitored, scope off", r);
      Result& sum = scope ? on : off;
      sum.node_cpu += r.node_cpu;
      sum.seconds += r.seconds;
      sum.steps += r.steps;
      sum.workload_cpu += r.workload_cpu;
      sum.rss_growth_kib = std::max(sum.rss_growth_kib, r.rss_growth_kib);
    }
  }
  Result un_off = RunPhase(false, /*monitored=*/false, seconds, dir);
  Print("unmonitored, scope off", un_off);
  Result un_on = RunPhase(true, /*monitored=*/false, seconds, dir);
  Print("unmonitored, scope on", un_on);

  std::printf("\nratios on/off over %d round(s) of %.0f s:\n", rounds, seconds);
  std::printf("  node cpu per second:            %.2fx (%.3f -> %.3f s/s)\n",
              (on.node_cpu / on.seconds) / (off.node_cpu / off.seconds), off.node_cpu / off.seconds,
              on.node_cpu / on.seconds);
  std::printf("  node cpu per workload step:     %.2fx\n",
              (on.node_cpu / on.steps) / (off.node_cpu / off.steps));
  std::printf("  monitored workload steps/s:     %.3fx\n",
              (on.steps / on.seconds) / (off.steps / off.seconds));
  std::printf("  monitored workload cpu/step:    %.3fx\n",
              (on.workload_cpu / on.steps) / (off.workload_cpu / off.steps));
  std::printf("  unmonitored workload cpu/step:  %.3fx\n",
              (un_on.workload_cpu / un_on.steps) / (un_off.workload_cpu / un_off.steps));
  std::printf("  node rss growth in a phase:     off +%ld KiB, on +%ld KiB\n", off.rss_growth_kib,
              on.rss_growth_kib);
  std::filesystem::remove_all(dir);
  return 0;
}
