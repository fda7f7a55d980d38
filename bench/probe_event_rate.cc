// The event rate the node's probes sustain before the first ring-buffer drop, and the node's
// CPU and memory at that load.
//
//   sudo ./bench/probe_event_rate [--workers W] [--step-seconds S] [--kind K]
//
// W worker processes (default 2), named alike and monitored, make hooked syscalls that each
// emit one event, paced to a target total rate: K = mix (default: in turn a denied
// ptrace(PTRACE_ATTACH), an mprotect of anonymous memory to PROT_READ|PROT_EXEC, a UDP
// connect to 127.0.0.1, an open for writing of a file in a temporary directory), or one of
// ptrace, mprotect, connect, open. The node side is the code `vigil-node run` runs, in this
// process: the BPF probes with file events, their consumer thread feeding the workload scope
// tracker (the probes' observer), and a reporting thread that drains the events on every
// wake-up and builds and serializes a report (snapshots of the workers, scopes, events) every
// second, as the Attest stream does (no TPM quote, no gRPC). Baseline, same run: the
// workers' own rate, unpaced, before the probes are loaded. Then a ramp (x2 per step, then
// bisection to 15%) finds the highest target rate with no ring-buffer drop (ProbeStatus
// dropped_events ringbuf_full, plus stash_full and monitor_full). Each step prints the rate
// reached, the drops by reason (including the node's own queues), the CPU of the consumer
// thread, of the reporting thread and of the whole node process, and its VmRSS.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/node_core.h"
#include "bench/rate_search.h"
#include "bench/self_status.h"

namespace {

using vigil::bench::NodeCore;
using vigil::bench::ProcessCpu;
using vigil::bench::RateSearch;
using vigil::bench::SelfStatusKib;

constexpr int kMaxWorkers = 64;
constexpr uint64_t kUnpaced = ~uint64_t{0};
// A pid above the kernel's pid_max limit: PTRACE_ATTACH fails with ESRCH.
constexpr pid_t kMissingPid = 0x3ffffff0;

// Shared with the workers (MAP_SHARED).
struct Control {
  std::atomic<uint64_t> per_worker_rate{0};  // syscalls/s per worker; 0 idle; kUnpaced
  std::atomic<uint64_t> generation{0};       // bumped at every rate change
  std::atomic<int> stop{0};
  std::atomic<uint64_t> done[kMaxWorkers];  // syscalls made so far, per worker
};

enum class Kind { kMix, kPtrace, kMprotect, kConnect, kOpen };

struct Worker {
  void* page = nullptr;
  int udp = -1;
  sockaddr_in peer{};
  std::string file;
  unsigned turn = 0;

  // One hooked syscall that emits one event.
  void Op(Kind kind) {
    Kind k = kind;
    if (k == Kind::kMix) k = static_cast<Kind>(1 + (turn++ % 4));
    switch (k) {
      case Kind::kPtrace:
        (void)ptrace(PTRACE_ATTACH, kMissingPid, nullptr, nullptr);
        break;
      case Kind::kMprotect:
        (void)mprotect(page, 4096, PROT_READ | PROT_EXEC);
        break;
      case Kind::kConnect:
        (void)connect(udp, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer));
        break;
      case Kind::kOpen: {
        int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) close(fd);
        break;
      }
      case Kind::kMix:
        break;
    }
  }
};

[[noreturn]] void RunWorker(Control* ctl, int index, Kind kind, const std::string& comm,
                            const std::string& dir) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  prctl(PR_SET_NAME, comm.c_str());
  Worker w;
  w.page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  w.udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  w.peer.sin_family = AF_INET;
  w.peer.sin_port = htons(9);  // discard; a UDP connect only sets the peer
  w.peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  w.file = absl::StrCat(dir, "/worker-", index, ".db");
  uint64_t gen = ~uint64_t{0}, rate = 0, made_in_step = 0, unpublished = 0;
  absl::Time start;
  while (ctl->stop.load(std::memory_order_relaxed) == 0) {
    if (const uint64_t g = ctl->generation.load(std::memory_order_acquire); g != gen) {
      gen = g;
      rate = ctl->per_worker_rate.load(std::memory_order_relaxed);
      start = absl::Now();
      made_in_step = 0;
    }
    uint64_t due = 64;
    if (rate != kUnpaced) {
      const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
      const auto target = static_cast<uint64_t>(elapsed * static_cast<double>(rate));
      due = target > made_in_step ? std::min<uint64_t>(target - made_in_step, 4096) : 0;
    }
    for (uint64_t i = 0; i < due; ++i) w.Op(kind);
    made_in_step += due;
    unpublished += due;
    if (unpublished > 0) {
      ctl->done[index].fetch_add(unpublished, std::memory_order_relaxed);
      unpublished = 0;
    }
    if (rate != kUnpaced) usleep(rate == 0 ? 10000 : 500);
  }
  _exit(0);
}

uint64_t Done(const Control& ctl, int workers) {
  uint64_t total = 0;
  for (int i = 0; i < workers; ++i) total += ctl.done[i].load(std::memory_order_relaxed);
  return total;
}

void SetRate(Control* ctl, uint64_t per_worker) {
  ctl->per_worker_rate.store(per_worker, std::memory_order_relaxed);
  ctl->generation.fetch_add(1, std::memory_order_release);
}

struct StepResult {
  double target = 0;    // events/s asked of the workers (0: unpaced)
  double achieved = 0;  // events/s made
  double received = 0;  // events/s the consumer decoded
  std::map<std::string, uint64_t> drops;
  double consumer_cpu = 0, reporter_cpu = 0, process_cpu = 0;  // fraction of one core
  double worker_us_per_syscall = 0;  // the workers' own CPU per syscall made
  long rss_kib = 0;
  uint64_t report_bytes = 0;

  uint64_t RingDrops() const {
    uint64_t n = 0;
    for (const char* r : {"ringbuf_full", "stash_full", "monitor_full"}) {
      auto it = drops.find(r);
      if (it != drops.end()) n += it->second;
    }
    return n;
  }
  uint64_t NodeDrops() const {
    uint64_t n = 0;
    for (const char* r : {"queue_full", "report_queue_full"}) {
      auto it = drops.find(r);
      if (it != drops.end()) n += it->second;
    }
    return n;
  }
};

std::map<std::string, uint64_t> Minus(std::map<std::string, uint64_t> a,
                                      const std::map<std::string, uint64_t>& b) {
  for (auto& [k, v] : a) {
    auto it = b.find(k);
    if (it != b.end()) v -= it->second;
  }
  return a;
}

// Runs the workers at `total_rate` (kUnpaced: as fast as they go) for `seconds` after a
// short warm-up; the node (may be null) is measured over the same window and then given
// a moment to drain what is still in flight.
StepResult RunStep(Control* ctl, const std::vector<int>& pids, uint64_t total_rate, double seconds,
                   NodeCore* node) {
  const int workers = static_cast<int>(pids.size());
  StepResult r;
  r.target = total_rate == kUnpaced ? 0 : static_cast<double>(total_rate);
  const std::map<std::string, uint64_t> drops0 =
      node ? node->Drops() : std::map<std::string, uint64_t>();
  SetRate(ctl, total_rate == kUnpaced ? kUnpaced : std::max<uint64_t>(1, total_rate / workers));
  absl::SleepFor(absl::Milliseconds(300));
  const uint64_t done0 = Done(*ctl, workers);
  const uint64_t recv0 = node ? node->received() : 0;
  const double c0 = node ? node->ConsumerCpu() : 0, rep0 = node ? node->ReporterCpu() : 0;
  const double p0 = ProcessCpu();
  double w0 = 0;
  for (int pid : pids) w0 += vigil::bench::ProcessCpuSeconds(pid);
  const absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  const uint64_t made = Done(*ctl, workers) - done0;
  double w1 = 0;
  for (int pid : pids) w1 += vigil::bench::ProcessCpuSeconds(pid);
  r.achieved = static_cast<double>(made) / wall;
  r.worker_us_per_syscall = made > 0 ? 1e6 * (w1 - w0) / static_cast<double>(made) : 0;
  r.process_cpu = (ProcessCpu() - p0) / wall;
  if (node != nullptr) {
    r.received = static_cast<double>(node->received() - recv0) / wall;
    r.consumer_cpu = (node->ConsumerCpu() - c0) / wall;
    r.reporter_cpu = (node->ReporterCpu() - rep0) / wall;
    r.rss_kib = SelfStatusKib("VmRSS:");
    r.report_bytes = node->last_report_bytes();
  }
  SetRate(ctl, 0);
  absl::SleepFor(absl::Milliseconds(500));  // the consumer's poll period is 100 ms
  if (node != nullptr) r.drops = Minus(node->Drops(), drops0);
  return r;
}

void PrintStep(const char* label, const StepResult& r) {
  std::string drops;
  for (const auto& [reason, n] : r.drops) {
    if (n > 0) absl::StrAppend(&drops, drops.empty() ? "" : ",", reason, "=", n);
  }
  std::printf(
      "| %-9s | %9.0f | %9.0f | %7.2f | %9.0f | %-28s | %7.1f%% | %7.1f%% | %7.1f%% | %7.1f | "
      "%9llu |\n",
      label, r.target, r.achieved, r.worker_us_per_syscall, r.received,
      drops.empty() ? "0" : drops.c_str(), 100 * r.consumer_cpu, 100 * r.reporter_cpu,
      100 * r.process_cpu, r.rss_kib / 1024.0, static_cast<unsigned long long>(r.report_bytes));
  std::fflush(stdout);
}

Kind ParseKind(const std::string& s, bool* ok) {
  *ok = true;
  if (s == "mix") return Kind::kMix;
  if (s == "ptrace") return Kind::kPtrace;
  if (s == "mprotect") return Kind::kMprotect;
  if (s == "connect") return Kind::kConnect;
  if (s == "open") return Kind::kOpen;
  *ok = false;
  return Kind::kMix;
}

}  // namespace

int main(int argc, char** argv) {
  int workers = 2;
  double step_seconds = 3;
  std::string kind_name = "mix";
  int ring_kib = 1024;  // the node's default
  bool ok = true;
  for (int i = 1; i < argc && ok; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) {
      ok = false;
    } else if (arg == "--workers") {
      ok = absl::SimpleAtoi(argv[++i], &workers) && workers >= 1 && workers <= kMaxWorkers;
    } else if (arg == "--step-seconds") {
      ok = absl::SimpleAtod(argv[++i], &step_seconds) && step_seconds > 0;
    } else if (arg == "--ring-buffer-kib") {
      ok = absl::SimpleAtoi(argv[++i], &ring_kib) && ring_kib >= 4 &&
           (ring_kib & (ring_kib - 1)) == 0;
    } else if (arg == "--kind") {
      kind_name = argv[++i];
      ParseKind(kind_name, &ok);
    } else {
      ok = false;
    }
  }
  if (!ok) {
    std::fprintf(stderr,
                 "usage: %s [--workers W] [--step-seconds S] [--kind mix|ptrace|mprotect|"
                 "connect|open] [--ring-buffer-kib N]\n"
                 "  Ramps the event rate of W monitored workers (default 2) and finds the\n"
                 "  highest with no ring-buffer drop; prints the node's CPU and RSS per step\n"
                 "  (default 3 s per step). The ring buffer is the node's 1024 KiB unless\n"
                 "  --ring-buffer-kib (a power of two) says otherwise. Needs root (BPF).\n",
                 argv[0]);
    return 2;
  }
  const Kind kind = ParseKind(kind_name, &ok);

  char dir_template[] = "/tmp/vigil-event-rate-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return 1;
  const std::string dir = dir_template;
  absl::BitGen gen;
  const std::string comm = absl::StrCat("vrate", absl::Uniform<uint32_t>(gen, 1000000, 9999999));

  void* shared =
      mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) return 1;
  auto* ctl = new (shared) Control();
  std::vector<int> pids;
  for (int i = 0; i < workers; ++i) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) RunWorker(ctl, i, kind, comm, dir);
    pids.push_back(pid);
  }

  std::printf(
      "probe_event_rate: %d workers (comm %s), syscalls: %s, %.1f s per step, ring buffer %d "
      "KiB\n\n",
      workers, comm.c_str(), kind_name.c_str(), step_seconds, ring_kib);
  const long rss_start = SelfStatusKib("VmRSS:");
  // Baseline: the workers unpaced, probes not loaded.
  const StepResult baseline = RunStep(ctl, pids, kUnpaced, step_seconds, nullptr);
  std::printf(
      "baseline, probes not loaded: %.0f syscalls/s unpaced, %.2f us of worker CPU per "
      "syscall\n",
      baseline.achieved, baseline.worker_us_per_syscall);

  std::unique_ptr<NodeCore> node =
      NodeCore::Start(comm, pids, static_cast<uint32_t>(ring_kib) * 1024);
  if (node == nullptr) return 1;
  const long rss_loaded = SelfStatusKib("VmRSS:");
  std::printf("node VmRSS: %ld KiB before loading the probes, %ld KiB after\n\n", rss_start,
              rss_loaded);
  std::printf("| %-9s | %9s | %9s | %7s | %9s | %-28s | %8s | %8s | %8s | %7s | %9s |\n", "step",
              "target/s", "made/s", "us/call", "decoded/s", "drops", "consumer", "reporter",
              "process", "RSS MiB", "report B");
  std::printf(
      "|-----------|-----------|-----------|---------|-----------|------------------------------|"
      "----------|----------|----------|---------|-----------|\n");

  RateSearch search(1000, 2, baseline.achieved, 1.15);
  StepResult best;
  StepResult first_lossy;
  bool workload_bound = false;
  while (!search.done()) {
    const double rate = search.next();
    StepResult r = RunStep(ctl, pids, static_cast<uint64_t>(rate), step_seconds, node.get());
    PrintStep("ramp", r);
    const bool clean = r.RingDrops() == 0;
    search.Record(rate, clean);
    if (clean && r.target >= best.target) best = r;
    if (!clean && (first_lossy.target == 0 || r.target < first_lossy.target)) first_lossy = r;
    if (clean && r.achieved < 0.9 * r.target) {
      workload_bound = true;  // the workers cannot go faster with the probes loaded
      break;
    }
  }
  const StepResult unpaced = RunStep(ctl, pids, kUnpaced, step_seconds, node.get());
  PrintStep("unpaced", unpaced);

  std::printf("\nhighest target rate with no ring-buffer drop: %.0f events/s (made %.0f/s)",
              best.target, best.achieved);
  if (first_lossy.target > 0) {
    std::printf("; first drops at %.0f events/s (made %.0f/s, %llu dropped)", first_lossy.target,
                first_lossy.achieved, static_cast<unsigned long long>(first_lossy.RingDrops()));
  } else if (workload_bound) {
    std::printf("; the workers could not go faster (no drop up to their own limit)");
  } else {
    std::printf("; no drop up to the workers' probe-less rate");
  }
  std::printf(
      "\nat that load: consumer thread %.1f%% of a core, reporting thread %.1f%%, node "
      "process %.1f%%, VmRSS %.1f MiB, node-side losses (queue_full, "
      "report_queue_full) %llu\n",
      100 * best.consumer_cpu, 100 * best.reporter_cpu, 100 * best.process_cpu,
      best.rss_kib / 1024.0, static_cast<unsigned long long>(best.NodeDrops()));
  std::printf(
      "unpaced with probes: %.0f syscalls/s (%.2fx the probe-less baseline), %.2f us of worker "
      "CPU per syscall (%.2fx), ring-buffer drops %llu; node VmHWM %ld KiB\n",
      unpaced.achieved, unpaced.achieved / std::max(baseline.achieved, 1.0),
      unpaced.worker_us_per_syscall,
      unpaced.worker_us_per_syscall / std::max(baseline.worker_us_per_syscall, 1e-9),
      static_cast<unsigned long long>(unpaced.RingDrops()), SelfStatusKib("VmHWM:"));

  node.reset();
  ctl->stop.store(1);
  for (int pid : pids) waitpid(pid, nullptr, 0);
  for (int i = 0; i < workers; ++i) unlink(absl::StrCat(dir, "/worker-", i, ".db").c_str());
  rmdir(dir.c_str());
  return 0;
}
