// Verdict latency: from a workload's denied ptrace to the changed verdict at a WatchVerdicts
// client, over real processes: swtpm, a throwaway PKI, vigil-verifier with a reference
// policy, vigil-node with its BPF probes, and a workload this program starts.
//
//   sudo ./bench/verdict_latency [--trials N]      (from the build directory; N >= 100)
//
// The workload is this program, copied under a distinctive name and run with --workload: it
// waits for SIGUSR1 and then attempts ptrace(PTRACE_ATTACH) on a pid that does not exist,
// which fails. The policy (written here) selects the workload by that name and grades a
// denied ptrace as a warning and has no state rules, so the workload's status goes from
// AFFIRMING to WARNING with the report that carries the attempt, and back to AFFIRMING with
// the next periodic report. Each trial waits for AFFIRMING, signals the workload, and times
// the arrival of the WARNING change on a WatchVerdicts stream opened before the node
// started. The baseline, measured in the same run, is one Fleet ListNodes round trip over
// the same mutual-TLS loopback connection. For each trial whose evidence is still the
// latest, the verdict's own timestamps split the time into: signal to syscall (kernel event
// time), syscall to report collected (node wake-up and snapshot), report to appraisal
// (seal/quote, send, appraisal) and appraisal to the watcher (durable store commit, watcher
// wake-up, delivery).

#include <signal.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/policy/bundle.h"
#include "common/policy/parser.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/temp_dir.h"
#include "vigil/v1/fleet.grpc.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace {

using vigil::testing::ChildProcess;
using vigil::testing::Fabric;

constexpr char kWorkloadName[] = "ptrace-on-command";
constexpr absl::Duration kStepBound = absl::Seconds(30);
// A pid above the kernel's pid_max limit: PTRACE_ATTACH fails with ESRCH.
constexpr pid_t kMissingPid = 0x3ffffff0;

// The workload: one denied ptrace per SIGUSR1, until SIGTERM.
int RunWorkload() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return 1;
    if (sig != SIGUSR1) return 0;
    (void)ptrace(PTRACE_ATTACH, kMissingPid, nullptr, nullptr);
  }
}

struct Change {
  vigil::v1::VerdictChange change;
  absl::Time received;
};

// Reads a WatchVerdicts stream on its own thread into a queue.
class Watcher {
 public:
  explicit Watcher(vigil::v1::Fleet::Stub& fleet) {
    reader_ = fleet.WatchVerdicts(&ctx_, vigil::v1::WatchVerdictsRequest());
    thread_ = std::thread([this] {
      vigil::v1::VerdictChange c;
      while (reader_->Read(&c)) {
        absl::Time now = absl::Now();
        absl::MutexLock lock(&mu_);
        changes_.push_back({c, now});
      }
      grpc::Status st = reader_->Finish();
      absl::MutexLock lock(&mu_);
      ended_ = true;
      end_status_ =
          st.error_message().empty() ? std::to_string(st.error_code()) : st.error_message();
    });
  }
  ~Watcher() {
    ctx_.TryCancel();
    thread_.join();
  }

  // The next change of the workload (skipping node-level ones); false on timeout or end.
  bool NextWorkloadChange(Change* out) {
    absl::MutexLock lock(&mu_);
    while (true) {
      auto ready = [this] { return ended_ || !changes_.empty(); };
      if (!mu_.AwaitWithTimeout(absl::Condition(&ready), kStepBound)) return false;
      if (changes_.empty()) return false;
      Change c = std::move(changes_.front());
      changes_.pop_front();
      skipped_.push_back(
          absl::StrCat(c.change.workload_name().empty() ? "node" : c.change.workload_name(), " ",
                       vigil::v1::TrustStatus_Name(c.change.status())));
      if (c.change.workload_name() == kWorkloadName) {
        *out = std::move(c);
        return true;
      }
    }
  }
  std::string EndStatus() {
    absl::MutexLock lock(&mu_);
    return absl::StrCat(ended_ ? end_status_ : "still open",
                        "; changes seen: ", absl::StrJoin(skipped_, ", "));
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<vigil::v1::VerdictChange>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::deque<Change> changes_;
  std::vector<std::string> skipped_;
  bool ended_ = false;
  std::string end_status_;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void PrintRow(const char* name, const std::vector<double>& ms, double baseline_ms) {
  double p50 = Percentile(ms, 0.50), p99 = Percentile(ms, 0.99), max = Percentile(ms, 1.0);
  std::printf("| %-34s | %5zu | %8.2f | %8.2f | %8.2f | %7.1fx | %7.1fx |\n", name, ms.size(), p50,
              p99, max, p50 / baseline_ms, p99 / baseline_ms);
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

int Fail(const std::string& what, Fabric* fabric) {
  std::fprintf(stderr, "verdict_latency: %s\n", what.c_str());
  if (fabric != nullptr) std::fprintf(stderr, "%s\n", fabric->Logs().c_str());
  return 1;
}

int RunBench(int trials) {
  absl::StatusOr<vigil::testing::TestTempDir> dir =
      vigil::testing::TestTempDir::Create("verdict-latency");
  if (!dir.ok()) return Fail(dir.status().ToString(), nullptr);

  // The workload: this program under a name only this run uses (its comm at exec).
  const std::string comm = vigil::testing::UniqueComm("vlat");
  const std::string workload_exe = dir->path() + "/" + comm;
  if (absl::Status st = vigil::testing::CopyProgram("/proc/self/exe", workload_exe); !st.ok()) {
    return Fail(st.ToString(), nullptr);
  }

  const std::string policy_yaml = absl::StrCat(
      "apiVersion: vigil.dev/v1\n"
      "kind: RuntimePolicy\n"
      "metadata:\n"
      "  name: latency-bench\n"
      "  revision: 1\n"
      "spec:\n"
      "  workloads:\n"
      "    - name: ",
      kWorkloadName, "\n      selectors:\n        - comm=", comm,
      "\n"
      "  rules:\n"
      "    - id: process-access-events\n"
      "      kind: events\n"
      "      events:\n"
      "        - {kind: ptrace, denied: warning, succeeded: contraindicated}\n"
      "      controls:\n"
      "        nist_800_53: [AC-6]\n");
  // The verifier stores the policy; the node reports the digest of the bundle it runs with,
  // so both get the bundle file (the verifier appraises under the bundle the node names).
  absl::StatusOr<std::vector<vigil::policy::Policy>> parsed =
      vigil::policy::ParsePoliciesOrError(policy_yaml, "latency-bench");
  if (!parsed.ok()) return Fail(parsed.status().ToString(), nullptr);
  absl::StatusOr<vigil::v1::PolicyBundle> bundle = vigil::policy::BuildBundle(*parsed);
  if (!bundle.ok()) return Fail(bundle.status().ToString(), nullptr);
  const std::string policy_path = dir->path() + "/bundle.yaml";
  std::ofstream(policy_path, std::ios::binary) << bundle->content();

  Fabric::Options options;
  options.verifier_args = {"--policy", policy_path};
  // Event-triggered reports may follow each other closely: trials come one periodic report
  // (1 s) apart.
  options.node_policy = policy_path;
  options.node_args = {"--select", absl::StrCat("comm=", comm), "--min-report-gap-ms", "100"};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  if (!fabric.ok()) return Fail(fabric.status().ToString(), nullptr);
  Fabric& f = **fabric;

  absl::StatusOr<std::unique_ptr<ChildProcess>> workload =
      ChildProcess::Spawn({workload_exe, "--workload"}, dir->path() + "/workload.log");
  if (!workload.ok()) return Fail(workload.status().ToString(), &f);

  // Baseline: a Fleet round trip on the same connection, after a warm-up.
  std::vector<double> rtt;
  for (int i = 0; i < 220; ++i) {
    grpc::ClientContext ctx;
    vigil::v1::ListNodesResponse response;
    absl::Time t0 = absl::Now();
    grpc::Status s = f.fleet().ListNodes(&ctx, vigil::v1::ListNodesRequest(), &response);
    absl::Time t1 = absl::Now();
    if (!s.ok()) return Fail(absl::StrCat("ListNodes: ", s.error_message()), &f);
    if (i >= 20) rtt.push_back(Ms(t1 - t0));
  }
  const double baseline_ms = Percentile(rtt, 0.5);

  Watcher watcher(f.fleet());
  if (absl::Status st = f.StartNode(); !st.ok()) return Fail(st.ToString(), &f);

  std::vector<double> total, to_syscall, to_report, to_appraisal, to_watcher;
  vigil::v1::TrustStatus status = vigil::v1::TRUST_STATUS_UNSPECIFIED;
  Change c;
  for (int trial = 0; trial < trials; ++trial) {
    while (status != vigil::v1::TRUST_AFFIRMING) {
      if (!watcher.NextWorkloadChange(&c)) {
        return Fail(absl::StrCat("no AFFIRMING change for the workload before trial ", trial,
                                 " (stream: ", watcher.EndStatus(), ")"),
                    &f);
      }
      status = c.change.status();
    }
    const absl::Time t0 = absl::Now();
    kill((*workload)->pid(), SIGUSR1);
    do {
      if (!watcher.NextWorkloadChange(&c)) {
        return Fail(absl::StrCat("no WARNING change in trial ", trial,
                                 " (stream: ", watcher.EndStatus(), ")"),
                    &f);
      }
      status = c.change.status();
    } while (status == vigil::v1::TRUST_AFFIRMING);
    if (status != vigil::v1::TRUST_WARNING) {
      return Fail(
          absl::StrCat("trial ", trial, ": workload became ", vigil::v1::TrustStatus_Name(status),
                       ": ", c.change.verdict().detail()),
          &f);
    }
    total.push_back(Ms(c.received - t0));

    // Where the time went, from the evidence behind the verdict (when still the latest).
    absl::StatusOr<vigil::v1::GetLatestEvidenceResponse> latest =
        f.LatestEvidence(c.change.node_id());
    if (!latest.ok()) continue;
    const std::string& payload = latest->evidence().payload();
    if (vigil::HexEncode(vigil::Sha256(payload)) != c.change.verdict().evidence_sha256()) continue;
    vigil::v1::RuntimeReport report;
    if (!report.ParseFromString(payload)) continue;
    int64_t event_ns = 0;
    for (const vigil::v1::RuntimeEvent& e : report.events()) {
      if (e.kind() == vigil::v1::EVENT_KIND_PTRACE && e.pid() == (*workload)->pid()) {
        event_ns = e.time_unix_nano();
      }
    }
    if (event_ns == 0) continue;
    const absl::Time event = absl::FromUnixNanos(event_ns);
    const absl::Time collected = absl::FromUnixNanos(report.collected_unix_nano());
    const absl::Time appraised = absl::FromUnixNanos(c.change.verdict().appraised_unix_nano());
    to_syscall.push_back(Ms(event - t0));
    to_report.push_back(Ms(collected - event));
    to_appraisal.push_back(Ms(appraised - collected));
    to_watcher.push_back(Ms(c.received - appraised));
  }

  std::printf(
      "verdict latency over %d trials (ms); baseline: Fleet ListNodes round trip p50 "
      "%.3f ms over %zu calls\n\n",
      trials, baseline_ms, rtt.size());
  std::printf("| %-34s | %5s | %8s | %8s | %8s | %8s | %8s |\n", "segment", "n", "p50", "p99",
              "max", "p50/base", "p99/base");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(36, '-').c_str(), "-------", "----------",
              "----------", "----------", "---------", "---------");
  PrintRow("ptrace -> WatchVerdicts change", total, baseline_ms);
  PrintRow("  signal -> syscall (kernel time)", to_syscall, baseline_ms);
  PrintRow("  syscall -> report collected", to_report, baseline_ms);
  PrintRow("  report -> appraised", to_appraisal, baseline_ms);
  PrintRow("  appraised -> watcher", to_watcher, baseline_ms);
  const double p99 = Percentile(total, 0.99);
  std::printf("\ntarget p99 <= 100 ms: %s (p99 %.2f ms)\n", p99 <= 100.0 ? "met" : "NOT met", p99);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--workload") == 0) return RunWorkload();
  int trials = 100;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--trials") == 0 && i + 1 < argc &&
        absl::SimpleAtoi(argv[i + 1], &trials) && trials >= 1) {
      ++i;
      continue;
    }
    std::fprintf(stderr,
                 "usage: %s [--trials N]\n"
                 "  Measures the time from a workload's denied ptrace to the changed verdict on\n"
                 "  a WatchVerdicts stream (default 100 trials). Needs root (BPF, swtpm).\n",
                 argv[0]);
    return 2;
  }
  return RunBench(trials);
}
