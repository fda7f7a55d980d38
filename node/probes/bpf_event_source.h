#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/selector.h"
#include "node/probes/event_source.h"

namespace vigil::node {

/// How to start the probes.
struct ProbeOptions {
  /// Matched in the kernel at every exec (comm, exe glob, cgroup glob, container id); pid
  /// fields are not matched at exec: put those pids in `seed_pids`.
  std::vector<Selector> selectors;
  /// Processes monitored from the start (what the node's process matcher found already
  /// running). Their children are followed from then on.
  std::vector<int> seed_pids;
  /// Monitor every process except the node (debugging with `watch` and no selectors).
  bool monitor_all = false;
  /// Ring buffer size in bytes: a power of two and a multiple of the page size.
  uint32_t ring_buffer_bytes = 1u << 20;
  /// Decoded events held for Drain(); when full, further events are counted as
  /// dropped_events["queue_full"].
  size_t queue_capacity = 65536;
  /// The node's own process, never monitored; 0 means getpid().
  int node_tgid = 0;
  /// Also attach the `sys_enter_*` tracepoints. Off by default: the exit programs read the
  /// arguments from the saved registers, so every event carries the same fields either way,
  /// while registering any `sys_enter_*` tracepoint adds a call to every syscall of every
  /// process on the machine and a second program run to every watched syscall (measured
  /// by bench/probe_overhead; see BENCHMARKS.md). On: the entry programs also stash the
  /// arguments (and an exec's path) at entry.
  bool syscall_entry_hooks = false;
  /// Also attach the file tracepoints (open, openat, openat2, creat, rename*, unlink*,
  /// mkdir*) that feed the workload scope (`vigil-node run` turns them on). Off: neither
  /// loaded nor reported.
  bool file_events = false;
  /// Where cgroup v2 is mounted (for cgroup and container selectors); on a hybrid host
  /// where this is not cgroup2, its "unified" subdirectory is used.
  std::string cgroup_root = "/sys/fs/cgroup";
};

/// The BPF implementation of EventSource: mounts tracefs/bpffs when missing, detects which
/// hook kinds the kernel refuses, disables tracepoints this kernel lacks, loads and attaches
/// bpf/vigil_probes.bpf.c, and runs a consumer thread that moves ring-buffer records into a
/// bounded queue. Every lost event is counted by reason (see Status()).
class BpfEventSource final : public EventSource {
 public:
  /// Loads and attaches the probes. Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN).
  static absl::StatusOr<std::unique_ptr<BpfEventSource>> Start(const ProbeOptions& options);
  ~BpfEventSource() override;

  void Drain(std::vector<v1::RuntimeEvent>* out) override;
  v1::ProbeStatus Status() const override;
  std::vector<int> MonitoredPids() const override;
  /// Called by the consumer thread after each ring-buffer batch that queued an event worth
  /// a report.
  void SetWakeup(std::function<void()> wake) override;

  /// Has the consumer thread call `observer` with every decoded event before it is queued
  /// (also when the queue is full), while the process it names most likely still runs: the
  /// workload scope reads /proc/<pid> there. It must be quick and thread-safe with respect
  /// to its own state; empty: none.
  void SetObserver(std::function<void(const v1::RuntimeEvent&)> observer);

  /// Replaces the kernel-side selectors (at most 16) and recomputes the cgroup ids that
  /// cgroup/container selectors match. Processes already monitored stay monitored.
  absl::Status UpdateSelectors(const std::vector<Selector>& selectors);

  /// Stops the consumer thread after it has moved every record already in the ring buffer
  /// into the queue, so a final Drain() returns everything emitted up to now. Events
  /// emitted afterwards are not read. Idempotent; the destructor calls it.
  void Stop();

  /// Starts monitoring the running process `pid` (and, from now on, what it forks). The
  /// node's own pid is accepted and ignored: the node never monitors itself.
  absl::Status Monitor(int pid);

  /// The file descriptor of the loaded program `name` (e.g. "exit_mprotect"), owned by this
  /// source; for reading the kernel's statistics of it (bench/probe_overhead). NotFound when
  /// no program of that name was loaded.
  absl::StatusOr<int> ProgramFd(const std::string& name) const;

  /// Waits until at least one event is queued or `timeout` passes; true if events wait.
  bool WaitForEvents(absl::Duration timeout) const;

  struct State;

 private:
  explicit BpfEventSource(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace vigil::node
