// Resident memory of the probe loader and its ring-buffer consumer with 1,000 monitored
// processes. A monitored spawner forks N sleeping children (followed in the kernel through
// fork inheritance); once MonitoredPids() holds them all and their fork events are drained,
// the program prints its own VmRSS/VmHWM and the kernel memory of the BPF maps (fdinfo
// "memlock", which is not part of any process's RSS). Budget: RSS < 64 MiB.
//
// Usage: node_memory [--processes N]   (root: loads BPF)
#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "bench/self_status.h"
#include "node/probes/bpf_event_source.h"

namespace {

using vigil::bench::SelfStatusKib;

// Sum of "memlock:" over this process's BPF map fds (kernel memory charged to the maps).
long long BpfMapMemlockBytes() {
  long long total = 0;
  DIR* d = opendir("/proc/self/fdinfo");
  if (d == nullptr) return -1;
  while (dirent* ent = readdir(d)) {
    std::ifstream in(std::string("/proc/self/fdinfo/") + ent->d_name);
    std::string line;
    bool is_map = false;
    long long memlock = 0;
    while (std::getline(in, line)) {
      if (line.rfind("map_type:", 0) == 0) is_map = true;
      if (line.rfind("memlock:", 0) == 0) memlock = std::atoll(line.c_str() + 8);
    }
    if (is_map) total += memlock;
  }
  closedir(d);
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  int processes = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--processes") == 0) processes = std::atoi(argv[i + 1]);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 1);  // the sleepers are reaped here, not by init
  long rss_before = SelfStatusKib("VmRSS:");
  auto source = vigil::node::BpfEventSource::Start(vigil::node::ProbeOptions{});
  if (!source.ok()) {
    std::fprintf(stderr, "loading probes: %s\n", source.status().ToString().c_str());
    return 1;
  }
  long rss_loaded = SelfStatusKib("VmRSS:");

  int go[2];
  if (pipe(go) != 0) return 1;
  pid_t spawner = fork();
  if (spawner == 0) {
    setpgid(0, 0);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(1);
    for (int i = 0; i < processes; ++i) {
      if (fork() == 0) {
        pause();
        _exit(0);
      }
    }
    pause();
    _exit(0);
  }
  setpgid(spawner, spawner);
  if (!(*source)->Monitor(spawner).ok()) return 1;
  if (write(go[1], "g", 1) != 1) return 1;

  std::vector<vigil::v1::RuntimeEvent> events;
  size_t monitored = 0;
  const absl::Time give_up = absl::Now() + absl::Minutes(3);  // forking 1,000 can be slow
  while (absl::Now() < give_up && monitored < static_cast<size_t>(processes) + 1) {
    (*source)->WaitForEvents(absl::Milliseconds(100));
    (*source)->Drain(&events);
    monitored = (*source)->MonitoredPids().size();
  }
  (*source)->Drain(&events);
  long rss = SelfStatusKib("VmRSS:");
  long hwm = SelfStatusKib("VmHWM:");
  long long memlock = BpfMapMemlockBytes();
  auto status = (*source)->Status();
  uint64_t drops = 0;
  for (const auto& [reason, n] : status.dropped_events()) drops += n;

  std::printf("node_memory: %d sleeping children of one monitored spawner\n", processes);
  std::printf("monitored processes (kernel map): %zu\n", monitored);
  std::printf("events drained: %zu, dropped: %llu\n", events.size(),
              static_cast<unsigned long long>(drops));
  std::printf("VmRSS before loading probes: %ld KiB\n", rss_before);
  std::printf("VmRSS after loading probes:  %ld KiB\n", rss_loaded);
  std::printf("VmRSS with %zu monitored:     %ld KiB (%.1f MiB), VmHWM %ld KiB\n", monitored, rss,
              rss / 1024.0, hwm);
  std::printf("BPF map kernel memory (memlock, not in RSS): %lld KiB\n", memlock / 1024);
  std::printf("budget RSS < 64 MiB: %s\n", rss < 64 * 1024 ? "met" : "NOT met");

  kill(-spawner, SIGKILL);
  while (waitpid(-1, nullptr, 0) > 0) {
  }
  return 0;
}
