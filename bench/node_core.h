#pragma once

// The node side of `vigil-node run` around its probes, in a benchmark's process: the BPF
// probes with file events, their consumer thread feeding the workload scope tracker, and a
// reporting thread with the Attest stream's rhythm (drain on every wake-up, build and
// serialize a report every second), without the TPM and gRPC. Root only (loads BPF).

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/self_status.h"
#include "common/selector.h"
#include "node/agent/config.h"
#include "node/agent/report_builder.h"
#include "node/probes/bpf_event_source.h"
#include "node/procfs/file_hash_cache.h"
#include "node/procfs/process_matcher.h"
#include "node/procfs/snapshotter.h"
#include "node/scope/dpkg_db.h"
#include "node/scope/scope_tracker.h"

namespace vigil::bench {

/// The payload limit of the node's default message size.
inline constexpr size_t kNodeMaxPayloadBytes = 4 << 20;

/// CPU time (user + system) of thread `tid` of this process so far.
inline double OwnThreadCpuSeconds(int tid) {
  std::string comm;
  double seconds = 0;
  ReadStatCpu(absl::StrCat("/proc/self/task/", tid, "/stat"), &comm, &seconds);
  return seconds;
}

/// CPU time (user + system) of this process so far, all its threads.
inline double ProcessCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// The ids of this process's live threads.
inline std::set<int> Tids() {
  std::set<int> out;
  for (const ThreadCpu& t : ThreadCpuTimes(getpid())) {
    out.insert(t.tid);
  }
  return out;
}

/// What `vigil-node run` wires around its probes, minus the TPM and gRPC, monitoring the
/// processes named `comm` and `pids`.
class NodeCore {
 public:
  static std::unique_ptr<NodeCore> Start(const std::string& comm, const std::vector<int>& pids,
                                         uint32_t ring_buffer_bytes) {
    std::unique_ptr<NodeCore> n(new NodeCore());
    auto selector = vigil::ParseSelector(absl::StrCat("comm=", comm));
    if (!selector.ok()) return nullptr;
    n->matcher_ =
        std::make_unique<vigil::node::ProcessMatcher>(std::vector<vigil::Selector>{*selector});
    vigil::node::SnapshotOptions snap;
    snap.seccomp_syscalls = vigil::node::NodeConfig().seccomp_syscalls;
    n->snapshotter_ = std::make_unique<vigil::node::Snapshotter>(snap, &n->hashes_);
    n->scope_ = std::make_unique<vigil::node::ScopeTracker>(vigil::node::ScopeLimits{}, &n->hashes_,
                                                            &n->dpkg_);
    vigil::node::ProbeOptions opts;
    opts.selectors = {*selector};
    opts.seed_pids = pids;
    opts.file_events = true;
    opts.ring_buffer_bytes = ring_buffer_bytes;
    const std::set<int> before = Tids();
    auto source = vigil::node::BpfEventSource::Start(opts);
    if (!source.ok()) {
      std::fprintf(stderr, "loading probes: %s\n", source.status().ToString().c_str());
      return nullptr;
    }
    n->source_ = *std::move(source);
    for (int tid : Tids()) {
      if (before.count(tid) == 0) n->consumer_tids_.push_back(tid);
    }
    n->source_->SetObserver([core = n.get()](const vigil::v1::RuntimeEvent& e) {
      core->received_.fetch_add(1, std::memory_order_relaxed);
      core->scope_->ObserveEvent(e);
    });
    auto info = vigil::node::ReadLocalNodeInfo();
    if (!info.ok()) return nullptr;
    n->builder_ = std::make_unique<vigil::node::ReportBuilder>(
        *info, n->matcher_.get(), n->snapshotter_.get(), n->source_.get());
    n->builder_->set_scope_tracker(n->scope_.get(), /*feed_events=*/false);
    n->builder_->SetEventWakeup([core = n.get()] {
      {
        std::lock_guard<std::mutex> lock(core->mu_);
        core->woken_ = true;
      }
      core->cv_.notify_one();
    });
    n->reporter_ = std::thread([core = n.get()] { core->Report(); });
    return n;
  }

  ~NodeCore() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (reporter_.joinable()) reporter_.join();
    builder_->SetEventWakeup({});
    source_->Stop();
  }

  // Drops so far by reason: the probes' own and the report queue's.
  std::map<std::string, uint64_t> Drops() const {
    std::map<std::string, uint64_t> out;
    const vigil::v1::ProbeStatus status = source_->Status();
    for (const auto& [reason, n] : status.dropped_events()) out[reason] = n;
    out["report_queue_full"] = builder_->events_dropped();
    return out;
  }
  double ConsumerCpu() const {
    double total = 0;
    for (int tid : consumer_tids_) total += OwnThreadCpuSeconds(tid);
    return total;
  }
  double ReporterCpu() const { return OwnThreadCpuSeconds(reporter_tid_.load()); }
  uint64_t received() const { return received_.load(); }
  uint64_t reports() const { return reports_.load(); }
  uint64_t last_report_bytes() const { return last_report_bytes_.load(); }

 private:
  NodeCore() = default;

  // The Attest stream's rhythm: drain on every wake-up, a report every second.
  void Report() {
    reporter_tid_ = static_cast<int>(gettid());
    absl::Time next = absl::Now() + absl::Seconds(1);
    std::string bytes;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_until(lock, absl::ToChronoTime(next), [this] { return stop_ || woken_; });
        if (stop_) return;
        woken_ = false;
      }
      builder_->PollEvents();
      if (absl::Now() < next) continue;
      vigil::v1::RuntimeReport report = builder_->Build(kNodeMaxPayloadBytes);
      report.SerializeToString(&bytes);
      last_report_bytes_ = bytes.size();
      reports_.fetch_add(1);
      next += absl::Seconds(1);
      if (next < absl::Now()) next = absl::Now() + absl::Seconds(1);
    }
  }

  vigil::node::FileHashCache hashes_;
  vigil::node::DpkgDatabase dpkg_;
  std::unique_ptr<vigil::node::ProcessMatcher> matcher_;
  std::unique_ptr<vigil::node::Snapshotter> snapshotter_;
  std::unique_ptr<vigil::node::ScopeTracker> scope_;
  std::unique_ptr<vigil::node::BpfEventSource> source_;
  std::unique_ptr<vigil::node::ReportBuilder> builder_;
  std::vector<int> consumer_tids_;
  std::atomic<int> reporter_tid_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> reports_{0};
  std::atomic<uint64_t> last_report_bytes_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stop_ = false;
  std::thread reporter_;
};

}  // namespace vigil::bench
