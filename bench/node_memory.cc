// vigil-node's memory and CPU with 1,000 monitored processes, measured on the real thing:
// swtpm, a throwaway PKI, vigil-verifier (the integration tests' fixture) and the
// `vigil-node run` binary with its BPF probes, reporting every second (the verifier's
// interval), each report snapshotted from procfs, scoped, serialized, quoted and streamed.
//
//   sudo ./bench/node_memory [--processes N] [--intervals K]     (from the build directory)
//
// The monitored workload is this program, copied under a name only this run uses and run
// with --spawner: on SIGUSR1 it forks N children that each run a copy of sleep(1) under the
// same name (the probes follow them through fork inheritance; sleep maps 3 files, this
// program about 80 libraries). The node selects them all by that name. The program
// reads the node's processes (the main process and its privileged helper) from /proc:
// VmRSS before the children exist (the node reporting on the spawner alone), after K report
// intervals with all N + 1 monitored, and VmHWM (the peak); the size of the latest report as
// the verifier stored it (the payload, and the whole Evidence with quote and log entries, and
// its compressed size and compression time in the store's form); and the node's CPU per
// report over those K intervals, by thread; then the verifier's CPU per report over a window
// the program does not poll in. Budget: RSS < 64 MiB.

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/self_status.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/temp_dir.h"
#include "verifier/store/store_internal.h"
#include "vigil/v1/fleet.grpc.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace {

using vigil::bench::ProcessCpuSeconds;
using vigil::bench::ProcessStatusKib;
using vigil::bench::ThreadCpuTimes;
using vigil::testing::ChildProcess;
using vigil::testing::Fabric;

// The CPU time the calling thread spends in `work`.
template <typename Work>
absl::Duration CallingThreadCpu(Work work) {
  timespec start{};
  timespec end{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  work();
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
  return absl::DurationFromTimespec(end) - absl::DurationFromTimespec(start);
}

// The spawner: waits for SIGUSR1, forks `children` that run `sleeper` (sleep(1)), waits for
// SIGTERM. The sleepers die with it (PR_SET_PDEATHSIG).
int RunSpawner(int children, const char* sleeper) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  if (sigwait(&set, &sig) != 0 || sig != SIGUSR1) return 0;
  for (int i = 0; i < children; ++i) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      sigprocmask(SIG_UNBLOCK, &set, nullptr);
      execl(sleeper, sleeper, "infinity", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  sigwait(&set, &sig);
  return 0;
}

// The node's processes: `vigil-node run` and the children it forked (its privileged helper).
std::vector<int> NodeProcesses(int node_pid) {
  std::vector<int> pids = {node_pid};
  std::ifstream in(absl::StrCat("/proc/", node_pid, "/task/", node_pid, "/children"));
  int child = 0;
  while (in >> child) pids.push_back(child);
  return pids;
}

struct Memory {
  long rss_kib = 0;
  long hwm_kib = 0;
};

// Summed over the node's processes, with one line per process.
Memory ReadMemory(int node_pid, const char* label) {
  Memory total;
  for (int pid : NodeProcesses(node_pid)) {
    long rss = ProcessStatusKib(std::to_string(pid), "VmRSS:");
    long hwm = ProcessStatusKib(std::to_string(pid), "VmHWM:");
    std::printf("  %-34s pid %-7d VmRSS %7ld KiB  VmHWM %7ld KiB\n", label, pid, rss, hwm);
    total.rss_kib += std::max(rss, 0L);
    total.hwm_kib += std::max(hwm, 0L);
  }
  return total;
}

double CpuOf(const std::vector<int>& pids) {
  double total = 0;
  for (int pid : pids) total += std::max(ProcessCpuSeconds(pid), 0.0);
  return total;
}

// CPU per thread name ("main" for the process's first thread) of the node's processes.
std::map<std::string, double> CpuByThread(int node_pid) {
  std::map<std::string, double> out;
  for (int pid : NodeProcesses(node_pid)) {
    for (const vigil::bench::ThreadCpu& t : ThreadCpuTimes(pid)) {
      std::string name = pid == node_pid ? "" : "helper ";
      name += t.tid == pid ? "main thread" : t.comm;
      out[name] += t.cpu_seconds;
    }
  }
  return out;
}

int Fail(const std::string& what, Fabric* fabric) {
  std::fprintf(stderr, "node_memory: %s\n", what.c_str());
  if (fabric != nullptr) std::fprintf(stderr, "%s\n", fabric->Logs().c_str());
  return 1;
}

// The verifier's latest evidence from the node; waits (up to `bound`) until its report holds
// at least `processes` snapshots.
absl::StatusOr<vigil::v1::GetLatestEvidenceResponse> AwaitReport(Fabric& f,
                                                                 const std::string& node_id,
                                                                 int processes,
                                                                 absl::Duration bound,
                                                                 uint64_t after_sequence = 0) {
  const absl::Time deadline = absl::Now() + bound;
  std::string last = "none";
  while (absl::Now() < deadline) {
    absl::StatusOr<vigil::v1::GetLatestEvidenceResponse> latest = f.LatestEvidence(node_id);
    vigil::v1::RuntimeReport report;
    if (latest.ok() && report.ParseFromString(latest->evidence().payload())) {
      last =
          absl::StrCat("sequence ", report.sequence(), ", ", report.processes_size(), " processes");
      if (report.processes_size() >= processes && report.sequence() > after_sequence) {
        return latest;
      }
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::DeadlineExceededError(absl::StrCat("no report with ", processes,
                                                  " processes after sequence ", after_sequence,
                                                  "; latest: ", last));
}

int RunBench(int processes, int intervals) {
  absl::StatusOr<vigil::testing::TestTempDir> dir =
      vigil::testing::TestTempDir::Create("node-memory");
  if (!dir.ok()) return Fail(dir.status().ToString(), nullptr);
  const std::string comm = vigil::testing::UniqueComm("vmem");
  const std::string spawner_exe = dir->path() + "/" + comm;
  const std::string sleeper_exe = dir->path() + "/sleeper/" + comm;
  std::filesystem::create_directory(dir->path() + "/sleeper");
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"/proc/self/exe", spawner_exe},
                                 {"/usr/bin/sleep", sleeper_exe}}) {
    if (absl::Status st = vigil::testing::CopyProgram(from, to); !st.ok()) {
      return Fail(st.ToString(), nullptr);
    }
  }

  Fabric::Options options;
  options.node_args = {"--select", absl::StrCat("comm=", comm)};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  if (!fabric.ok()) return Fail(fabric.status().ToString(), nullptr);
  Fabric& f = **fabric;
  absl::StatusOr<std::unique_ptr<ChildProcess>> spawner =
      ChildProcess::Spawn({spawner_exe, "--spawner", std::to_string(processes), sleeper_exe},
                          dir->path() + "/spawner.log");
  if (!spawner.ok()) return Fail(spawner.status().ToString(), &f);
  if (absl::Status st = f.StartNode(); !st.ok()) return Fail(st.ToString(), &f);
  absl::StatusOr<std::string> node_id = f.AwaitVerdict(vigil::v1::TRUST_AFFIRMING);
  if (!node_id.ok()) return Fail(node_id.status().ToString(), &f);
  const int node = f.node_pid();

  // The fixture's own workload and the spawner: 2 processes before the children exist.
  absl::StatusOr<vigil::v1::GetLatestEvidenceResponse> first =
      AwaitReport(f, *node_id, 2, absl::Seconds(60));
  if (!first.ok()) return Fail(first.status().ToString(), &f);
  vigil::v1::RuntimeReport first_report;
  first_report.ParseFromString(first->evidence().payload());
  // A few intervals at this size, so the "before" figure is the steady state.
  first = AwaitReport(f, *node_id, 2, absl::Seconds(60), first_report.sequence() + 3);
  if (!first.ok()) return Fail(first.status().ToString(), &f);
  first_report.ParseFromString(first->evidence().payload());

  std::printf(
      "node_memory: vigil-node run (pid %d) selecting comm=%s, verifier's report interval 1 s\n\n",
      node, comm.c_str());
  std::printf("before: %d monitored processes, report %zu bytes\n", first_report.processes_size(),
              first->evidence().payload().size());
  const Memory before = ReadMemory(node, "node");

  const absl::Time forked = absl::Now();
  kill((*spawner)->pid(), SIGUSR1);
  const int want = processes + 2;
  absl::StatusOr<vigil::v1::GetLatestEvidenceResponse> full =
      AwaitReport(f, *node_id, want, absl::Minutes(5));
  if (!full.ok()) return Fail(full.status().ToString(), &f);
  const double ramp_seconds = absl::ToDoubleSeconds(absl::Now() - forked);
  vigil::v1::RuntimeReport full_report;
  full_report.ParseFromString(full->evidence().payload());

  // K intervals with every process monitored: CPU per report.
  const std::vector<int> node_pids = NodeProcesses(node);
  const double cpu0 = CpuOf(node_pids);
  const std::map<std::string, double> threads0 = CpuByThread(node);
  const absl::Time t0 = absl::Now();
  const uint64_t seq0 = full_report.sequence();
  absl::StatusOr<vigil::v1::GetLatestEvidenceResponse> last =
      AwaitReport(f, *node_id, want, absl::Seconds(30 + 10 * intervals), seq0 + intervals - 1);
  if (!last.ok()) return Fail(last.status().ToString(), &f);
  const double cpu1 = CpuOf(node_pids);
  const std::map<std::string, double> threads1 = CpuByThread(node);
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  vigil::v1::RuntimeReport report;
  report.ParseFromString(last->evidence().payload());
  const uint64_t reports = report.sequence() - seq0;

  std::printf("\nafter: %d monitored processes (all %d seen %.1f s after the fork), %d gaps\n",
              report.processes_size(), want, ramp_seconds, report.observation_gaps_size());
  const Memory after = ReadMemory(node, "node");
  uint64_t drops = 0;
  for (const auto& [reason, n] : report.probes().dropped_events()) drops += n;

  std::printf(
      "\nreport with %d processes: payload %zu bytes (%.1f KiB, %.0f bytes/process), "
      "Evidence %zu bytes; %d scopes, %d events, probe drops %llu\n",
      report.processes_size(), last->evidence().payload().size(),
      last->evidence().payload().size() / 1024.0,
      static_cast<double>(last->evidence().payload().size()) / std::max(report.processes_size(), 1),
      last->evidence().ByteSizeLong(), report.scopes_size(), report.events_size(),
      static_cast<unsigned long long>(drops));
  // What the verifier's store keeps of it (nodes.evidence: LZ4 when shorter), and what
  // compressing it costs the appraising thread once per report.
  const std::string stored =
      vigil::verifier::store_internal::EncodeStoredEvidence(last->evidence());
  constexpr int kCompressions = 20;
  const absl::Duration compress_cpu = CallingThreadCpu([&] {
    for (int i = 0; i < kCompressions; ++i) {
      vigil::verifier::store_internal::EncodeStoredEvidence(last->evidence());
    }
  });
  std::printf("stored by the verifier: %zu bytes (%.2fx smaller), %.2f ms CPU to compress\n",
              stored.size(),
              static_cast<double>(last->evidence().ByteSizeLong()) /
                  static_cast<double>(std::max<size_t>(stored.size(), 1)),
              absl::ToDoubleMilliseconds(compress_cpu) / kCompressions);
  std::printf(
      "node CPU over %llu reports in %.1f s (one per %.2f s): %.1f ms per report "
      "(%.1f%% of a core)\n",
      static_cast<unsigned long long>(reports), wall,
      wall / static_cast<double>(std::max<uint64_t>(reports, 1)),
      1000.0 * (cpu1 - cpu0) / std::max<uint64_t>(reports, 1), 100.0 * (cpu1 - cpu0) / wall);
  for (const auto& [name, seconds] : threads1) {
    auto it = threads0.find(name);
    const double delta = seconds - (it == threads0.end() ? 0 : it->second);
    if (delta <= 0) continue;
    std::printf("  %-24s %8.1f ms per report\n", name.c_str(),
                1000.0 * delta / std::max<uint64_t>(reports, 1));
  }

  // The verifier's CPU per report (appraisal, verdict, store), over a window this program
  // does not poll in: each poll reads and sends the whole evidence, which would be counted
  // with it. The reports are counted by sequence around the window (within one).
  constexpr absl::Duration kQuietWindow = absl::Seconds(15);
  const std::vector<int> verifier_pids = {static_cast<int>(f.verifier_pid())};
  const double verifier_cpu0 = CpuOf(verifier_pids);
  absl::SleepFor(kQuietWindow);
  const double verifier_cpu1 = CpuOf(verifier_pids);
  absl::StatusOr<vigil::v1::GetLatestEvidenceResponse> after_window =
      AwaitReport(f, *node_id, want, absl::Seconds(30), report.sequence());
  vigil::v1::RuntimeReport window_report;
  if (after_window.ok() && window_report.ParseFromString(after_window->evidence().payload())) {
    const uint64_t window_reports = window_report.sequence() - report.sequence();
    std::printf(
        "verifier CPU over %llu reports in %.0f s: %.1f ms per report (appraisal, verdict, "
        "store)\n",
        static_cast<unsigned long long>(window_reports), absl::ToDoubleSeconds(kQuietWindow),
        1000.0 * (verifier_cpu1 - verifier_cpu0) / std::max<uint64_t>(window_reports, 1));
  }

  std::printf("\n| measure | value |\n|---|---|\n");
  std::printf("| monitored processes in the report | %d (%d before) |\n", report.processes_size(),
              first_report.processes_size());
  std::printf("| node VmRSS before (2 monitored) | %ld KiB |\n", before.rss_kib);
  std::printf("| node VmRSS after (%d monitored, %llu reports) | %ld KiB (%.1f MiB) |\n",
              report.processes_size(), static_cast<unsigned long long>(report.sequence()),
              after.rss_kib, after.rss_kib / 1024.0);
  std::printf("| node VmHWM (peak) | %ld KiB (%.1f MiB) |\n", after.hwm_kib,
              after.hwm_kib / 1024.0);
  std::printf("| report payload | %zu bytes |\n", last->evidence().payload().size());
  std::printf("| Evidence as the verifier stores it | %zu bytes (of %zu) |\n", stored.size(),
              last->evidence().ByteSizeLong());
  std::printf("| node CPU per report | %.1f ms |\n",
              1000.0 * (cpu1 - cpu0) / std::max<uint64_t>(reports, 1));
  const bool met = after.hwm_kib < 64 * 1024;
  std::printf("\nbudget node RSS < 64 MiB with %d monitored processes: %s (peak %.1f MiB)\n",
              processes, met ? "met" : "NOT met", after.hwm_kib / 1024.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--spawner") == 0) {
    return RunSpawner(std::atoi(argv[2]), argv[3]);
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int processes = 1000, intervals = 10;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && std::strcmp(argv[i], "--processes") == 0 &&
        absl::SimpleAtoi(argv[i + 1], &processes) && processes >= 1) {
      ++i;
      continue;
    }
    if (i + 1 < argc && std::strcmp(argv[i], "--intervals") == 0 &&
        absl::SimpleAtoi(argv[i + 1], &intervals) && intervals >= 1) {
      ++i;
      continue;
    }
    std::fprintf(stderr,
                 "usage: %s [--processes N] [--intervals K]\n"
                 "  Runs vigil-node against a verifier on swtpm, monitoring N sleeping\n"
                 "  processes (default 1000), and prints the node's memory, its report size\n"
                 "  and its CPU per report over K report intervals (default 10). Needs root.\n",
                 argv[0]);
    return 2;
  }
  return RunBench(processes, intervals);
}
