#pragma once

// The simulated fleet: N nodes in one process, each with its simulated TPM, enrolled through
// the verifier's real Enrollment RPCs and then holding its own mutual-TLS Attest stream (its
// own client certificate, its own channel) driven by gRPC's callback API: no thread per node.
// A small pool of threads answers challenges when they fall due (report, quote, evidence).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bench/fleetsim/simulated_tpm.h"
#include "bench/fleetsim/workloads.h"
#include "common/pki.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil::fleetsim {

struct FleetOptions {
  /// The verifier's mutual-TLS and enrollment listeners (host:port).
  std::string attest_address;
  std::string enroll_address;
  /// PEM of the Vigil CA the verifier's certificate chains to.
  std::string ca_pem;
  /// When set, the name the verifier's certificate must carry (instead of the address's host).
  std::string tls_server_name;
  /// The simulated-TPM CA that certifies each node's EK.
  const CaMaterial* ek_ca = nullptr;
  size_t nodes = 100;
  /// Every `rsa_every`-th node has an RSA 2048 EK (0: none), the others ECC P-256.
  size_t rsa_every = 16;
  /// Benign runtime events per second per node, carried in its reports.
  double events_per_second = 1;
  uint32_t noncompliant_percent = 20;
  /// Enrollments and stream opens in flight at once.
  size_t enroll_concurrency = 8;
  size_t connect_window = 200;
  /// Threads that build, quote and send evidence.
  size_t workers = 2;
  /// Detection sentinels: the first `sentinels` nodes alternate a compliant report with one
  /// carrying a succeeded ptrace (contraindicated), so every other report of theirs changes
  /// their status; WatchChanges times each such violation to its change.
  size_t sentinels = 0;
};

/// Latency samples and counts over a window of time.
struct WindowStats {
  double seconds = 0;
  uint64_t acknowledged = 0;
  /// Milliseconds from evidence sent to its acknowledgement received.
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  std::map<std::string, uint64_t> errors;
  /// Verdict statuses (TrustStatus names) of acknowledged evidence.
  std::map<std::string, uint64_t> statuses;
  /// Acknowledged verdicts without Verdict.tpm_simulated (must stay 0).
  uint64_t not_marked_simulated = 0;
  /// Non-compliant nodes' verdicts that were affirming, compliant nodes' that were not.
  uint64_t noncompliant_affirmed = 0;
  uint64_t compliant_not_affirmed = 0;
  /// Sentinels' violating reports sent, and those whose status change reached the
  /// WatchVerdicts client; milliseconds from the report sent to the change received.
  uint64_t violations_sent = 0;
  uint64_t violations_detected = 0;
  double detect_p50_ms = 0, detect_p99_ms = 0, detect_max_ms = 0;
  double reports_per_second() const { return seconds > 0 ? acknowledged / seconds : 0; }
};

class Fleet {
 public:
  explicit Fleet(FleetOptions options);
  ~Fleet();

  /// Creates every node's TPM and enrolls it (BeginEnrollment, software ActivateCredential,
  /// CompleteEnrollment). Fails on the first node that cannot enroll.
  absl::Status Enroll();
  /// Opens every node's Attest stream; returns once each has its first challenge (or ended).
  /// Nodes hold that challenge until Release.
  absl::Status Connect();
  /// From now on each node answers its challenges every `interval` (the first at a random
  /// point of the first interval, so the fleet's reports spread evenly).
  void Release(absl::Duration interval);
  /// Changes the interval from each node's next report on.
  void SetInterval(absl::Duration interval);
  /// Starts a new measurement window; TakeWindow returns what happened since.
  void StartWindow();
  WindowStats TakeWindow();
  /// Opens a WatchVerdicts stream on the verifier at `address` with `identity` (a role that
  /// may watch) and, on a thread of its own, times each sentinel's violation to the node's
  /// change to CONTRAINDICATED arriving there. Call before Release.
  absl::Status WatchChanges(const std::string& address, const CertAndKey& identity);
  /// Waits up to `wait` for the change of every sentinel violation sent in the current window
  /// before `sent_before`; returns how many never arrived.
  uint64_t AwaitDetections(absl::Time sent_before, absl::Duration wait);
  /// Cancels every stream and waits for them to end.
  void Stop();

  size_t enrolled() const { return enrolled_.load(); }
  size_t connected() const { return connected_.load(); }
  /// Every acknowledgement since the start, and the sum of their latencies (for progress).
  uint64_t acknowledged_total() const { return acknowledged_total_.load(); }
  int64_t latency_total_ns() const { return latency_total_ns_.load(); }
  const std::vector<std::string>& node_ids() const { return node_ids_; }
  /// Errors over the whole run (enrollment, streams), by reason.
  std::map<std::string, uint64_t> AllErrors() const;

  class Node;

 private:
  friend class Node;
  // Whether Release was called, and when.
  bool Released(absl::Time* at);
  void OnConnected();
  void OnEnded(const grpc::Status& status, bool was_connected);
  void AddError(const std::string& reason);
  void RecordAck(bool compliant, absl::Duration latency, const std::string& status, bool simulated,
                 bool affirming);
  // Whether the report number `sequence` of node `index` is compliant (sentinels alternate).
  bool ReportCompliant(size_t index, uint64_t sequence) const;
  bool Sentinel(size_t index) const { return index < options_.sentinels; }
  void SentViolation(const std::string& node_id, uint64_t sequence, absl::Time at);
  void WatchLoop();
  void Schedule(absl::Time due, Node* node);
  void WorkerLoop();

  const FleetOptions options_;
  const WorkloadMix mix_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::string> node_ids_;
  std::atomic<size_t> enrolled_{0};
  std::atomic<size_t> connected_{0};
  std::atomic<size_t> ended_{0};
  std::atomic<uint64_t> acknowledged_total_{0};
  std::atomic<int64_t> latency_total_ns_{0};
  std::atomic<int64_t> interval_ns_{5'000'000'000};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  absl::Time released_at_;
  bool stopping_ = false;
  std::multimap<absl::Time, Node*> due_;
  std::vector<std::thread> workers_;
  // The current window.
  absl::Time window_start_;
  std::vector<float> latencies_ms_;
  std::vector<float> detections_ms_;
  WindowStats window_;
  // Sentinels' violating reports not yet seen as a change: (node_id, sequence) -> sent.
  std::map<std::pair<std::string, uint64_t>, absl::Time> violations_;
  std::unique_ptr<grpc::ClientContext> watch_ctx_;
  std::unique_ptr<v1::Fleet::Stub> watch_stub_;
  std::thread watcher_;
  std::map<std::string, uint64_t> all_errors_;
};

}  // namespace vigil::fleetsim
