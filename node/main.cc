// vigil-node: observes agent workloads from outside (procfs, seccomp filters, BPF probes) and
// streams TPM-bound runtime reports to a Vigil verifier over mutual TLS.

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/http/http_listener.h"
#include "common/logging.h"
#include "node/agent/config.h"
#include "node/agent/node_runner.h"
#include "node/commands/check_flags.h"
#include "node/commands/inspect_command.h"
#include "node/commands/node_flags.h"
#include "node/commands/reference_values_command.h"
#include "node/commands/watch_command.h"
#include "node/privsep/privsep.h"
#include "node/probes/kernel_fs.h"
#include "node/procfs/snapshotter.h"
#include "spdlog/spdlog.h"

namespace vigil::node {
namespace {

// What the chosen subcommand does once flags are parsed; returns the exit code.
using Action = std::function<int()>;

// Comma-separated selector keys, repeated: --select exe=/opt/agent/*,comm=agent
std::string SelectorHelp() {
  return "Monitor processes matching KEY=VAL[,KEY=VAL...] (keys: pid, exe (glob), comm, cgroup "
         "(glob), container (id prefix)); repeatable; children of a match are followed";
}

absl::StatusOr<std::vector<SensitivePath>> ParseSensitive(const std::vector<std::string>& specs) {
  std::vector<SensitivePath> out;
  for (const std::string& spec : specs) {
    std::pair<std::string, std::string> kv = absl::StrSplit(spec, absl::MaxSplits('=', 1));
    if (kv.first.empty() || (kv.second != "config" && kv.second != "secret")) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sensitive '", spec, "': expected GLOB=config or GLOB=secret"));
    }
    out.push_back({kv.first, kv.second});
  }
  return out;
}

constexpr const char* kEntryHooksHelp =
    "Also attach the syscall entry tracepoints (same events; costs every syscall on the "
    "machine more, see BENCHMARKS.md)";

void RegisterRunCommand(CLI::App& app, Action* action) {
  auto config = std::make_shared<NodeConfig>();
  auto selects = std::make_shared<std::vector<std::string>>();
  auto sensitive = std::make_shared<std::vector<std::string>>();
  auto no_probes = std::make_shared<bool>(false);
  auto single_process = std::make_shared<bool>(false);
  CLI::App* run = app.add_subcommand(
      "run", "Stream runtime reports of the selected processes to the verifier until SIGTERM");
  auto verifiers = std::make_shared<std::vector<std::string>>();
  NodeConfig& c = *config;
  run->add_option("--verifier", *verifiers,
                  "Verifier's mutual-TLS address host:port; repeatable or comma-separated: "
                  "when a stream fails or ends the node moves to the next address, round "
                  "robin, backing off after each full cycle of failures")
      ->delimiter(',')
      ->default_str(c.verifier_address);
  run->add_option("--keepalive-time-ms", c.keepalive_time_ms,
                  "Ping the verifier this often (HTTP/2 keepalive); keep it above the "
                  "verifier's --keepalive-min-ping-interval")
      ->check(CLI::Range(1000u, 3600000u))
      ->capture_default_str();
  run->add_option("--keepalive-timeout-ms", c.keepalive_timeout_ms,
                  "Give up on the connection when a ping is not answered within this long, and "
                  "move to the next verifier")
      ->check(CLI::Range(1000u, 600000u))
      ->capture_default_str();
  AddNodeIdentityFlags(*run, c)->required();
  run->add_option("--report-interval-ms", c.report_interval_ms,
                  "Report interval when the verifier names none")
      ->check(CLI::Range(100u, 3600000u))
      ->capture_default_str();
  run->add_option("--min-report-gap-ms", c.min_report_gap_ms,
                  "Shortest gap between event-triggered reports")
      ->check(CLI::Range(100u, 600000u))
      ->capture_default_str();
  run->add_option("--select", *selects, SelectorHelp())->required();
  run->add_option("--sensitive", *sensitive,
                  "Report open files matching GLOB as GLOB=config or GLOB=secret; repeatable");
  run->add_option("--syscalls", c.seccomp_syscalls,
                  "Syscalls the seccomp filters are evaluated for")
      ->delimiter(',')
      ->capture_default_str();
  run->add_option("--policy", c.policy_path,
                  "Policy bundle (YAML) the node starts with: measured and reported until the "
                  "verifier sends a bundle");
  run->add_option("--spool-dir", c.spool_dir,
                  "Where observations wait while the verifier is unreachable (default: "
                  "<state-dir>/spool); must be writable");
  run->add_option("--spool-max-bytes", c.spool_max_bytes,
                  "Size bound of the spool; when full the oldest batches are dropped and counted")
      ->check(CLI::Range(uint64_t{1} << 20, uint64_t{1} << 40))
      ->capture_default_str();
  run->add_option("--spool-batch-ms", c.spool_batch_ms,
                  "While the verifier is unreachable, one measured spool batch per this many ms")
      ->check(CLI::Range(100u, 600000u))
      ->capture_default_str();
  run->add_option("--metrics-address", c.metrics_address,
                  "Plain-HTTP listener (host:port; port 0 picks one, logged) serving Prometheus "
                  "metrics at /metrics (default: off)");
  run->add_flag("--no-probes", *no_probes, "Do not load the BPF probes (no events)");
  run->add_flag("--syscall-entry-hooks", c.syscall_entry_hooks, kEntryHooksHelp);
  run->add_flag("--single-process", *single_process,
                "For debugging: run as one process that keeps every capability it was started "
                "with, without a seccomp filter of its own (reports say so; a verifier with "
                "--require-node-self-protection refuses them). Default: split by privilege");
  run->callback([=] {
    if (!verifiers->empty()) {
      if (std::any_of(verifiers->begin(), verifiers->end(),
                      [](const std::string& a) { return a.empty(); })) {
        throw CLI::ValidationError("--verifier", "an empty address");
      }
      config->verifier_address = verifiers->front();
      config->fallback_verifier_addresses.assign(verifiers->begin() + 1, verifiers->end());
    }
    for (const std::string& text : *selects) {
      auto s = ParseSelector(text);
      if (!s.ok()) throw CLI::ValidationError("--select", std::string(s.status().message()));
      config->selectors.push_back(*s);
    }
    auto paths = ParseSensitive(*sensitive);
    if (!paths.ok())
      throw CLI::ValidationError("--sensitive", std::string(paths.status().message()));
    config->sensitive_paths = *paths;
    if (!config->metrics_address.empty()) {
      auto metrics = ParseHostPort(config->metrics_address, "metrics");
      if (!metrics.ok()) {
        throw CLI::ValidationError("--metrics-address", std::string(metrics.status().message()));
      }
    }
    config->enable_probes = !*no_probes;
    *action = [config, single_process] {
      // First, before any thread: the privileged process, then the main process locked down.
      NodeProcessHooks hooks;
      std::shared_ptr<privsep::PrivilegedClient> privileged;
      if (!*single_process) {
        auto split = privsep::SplitByPrivilege([&]() -> absl::Status {
          // Mounting needs CAP_SYS_ADMIN, which the main process is about to drop.
          if (!config->enable_probes) return absl::OkStatus();
          return EnsureKernelFilesystems().status();
        });
        if (!split.ok()) {
          std::cerr << "vigil-node: " << split.status().message() << "\n";
          return 1;
        }
        privileged = *std::move(split);
        hooks.filter_reader = [privileged](int pid) { return privileged->ReadSeccompFilters(pid); };
      }
      const pid_t privileged_pid = privileged ? privileged->server_pid() : 0;
      if (privileged_pid > 0) hooks.own_pids.push_back(privileged_pid);
      hooks.self_state = [privileged_pid] { return privsep::ReadNodeSelfState(privileged_pid); };
      // Block the stop signals before any thread starts, so only the waiter below sees them.
      sigset_t stop;
      sigemptyset(&stop);
      sigaddset(&stop, SIGTERM);
      sigaddset(&stop, SIGINT);
      pthread_sigmask(SIG_BLOCK, &stop, nullptr);
      auto runner = NodeRunner::Create(*config, std::move(hooks));
      if (!runner.ok()) {
        std::cerr << "vigil-node: " << runner.status().message() << "\n";
        return 1;
      }
      std::atomic<bool> signalled = false;
      std::thread waiter([&] {
        int sig = 0;
        sigwait(&stop, &sig);
        signalled = true;
        spdlog::info("signal {}: finishing the stream", sig);
        (*runner)->Stop();
      });
      absl::Status st = (*runner)->Run();
      // Run only returns early on an error; wake the waiter so it can be joined.
      if (!signalled) pthread_kill(waiter.native_handle(), SIGTERM);
      waiter.join();
      if (!st.ok()) {
        std::cerr << "vigil-node: " << st.message() << "\n";
        return 1;
      }
      return 0;
    };
  });
}

void RegisterInspectCommand(CLI::App& app, Action* action) {
  struct Flags {
    int pid = 0;
    bool json = false;
    std::vector<std::string> syscalls = NodeConfig().seccomp_syscalls;
    std::vector<std::string> sensitive;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* inspect = app.add_subcommand(
      "inspect", "Print one process's full snapshot and seccomp evaluation (no verifier, no TPM)");
  inspect->add_option("--pid", f->pid, "Process to inspect")
      ->required()
      ->check(CLI::Range(1, 1 << 30, "PID"));
  inspect->add_flag("--json", f->json, "Print the ProcessSnapshot as JSON");
  inspect->add_option("--syscalls", f->syscalls, "Syscalls to evaluate the seccomp filters for")
      ->delimiter(',')
      ->capture_default_str();
  inspect->add_option("--sensitive", f->sensitive,
                      "Report open files matching GLOB as GLOB=config or GLOB=secret");
  inspect->callback([=] {
    auto paths = ParseSensitive(f->sensitive);
    if (!paths.ok())
      throw CLI::ValidationError("--sensitive", std::string(paths.status().message()));
    InspectOptions options{f->pid, f->json, f->syscalls, *paths};
    *action = [options] {
      absl::Status st = RunInspect(options, std::cout, std::cerr);
      if (!st.ok()) std::cerr << "vigil-node: " << st.message() << "\n";
      return st.ok() ? 0 : 1;
    };
  });
}

// `watch`: live probe events, no verifier, no TPM (node/commands/watch_command.h).
void RegisterWatchCommand(CLI::App& app, Action* action) {
  struct Flags {
    std::vector<std::string> selects;
    bool json = false;
    bool entry_hooks = false;
    int duration = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* watch = app.add_subcommand(
      "watch", "Print BPF probe events live, then hooks and drop counters (no verifier, no TPM)");
  watch->add_option("--select", f->selects,
                    "Processes to watch, e.g. exe=/opt/agent/*,comm=agent (default: all)");
  watch->add_flag("--json", f->json, "One RuntimeEvent JSON object per line");
  watch->add_flag("--syscall-entry-hooks", f->entry_hooks, kEntryHooksHelp);
  watch
      ->add_option("--duration", f->duration,
                   "Stop after SECONDS, 1 to 31536000 (default: until Ctrl-C)")
      ->check(CLI::Range(1, 31536000));
  watch->callback([=] {
    WatchOptions opts;
    opts.json = f->json;
    opts.duration_seconds = f->duration;
    opts.syscall_entry_hooks = f->entry_hooks;
    for (const std::string& text : f->selects) {
      auto sel = ParseSelector(text);
      if (!sel.ok()) throw CLI::ValidationError("--select", std::string(sel.status().message()));
      opts.selectors.push_back(*sel);
    }
    if (absl::Status valid = ValidateWatchOptions(opts); !valid.ok()) {
      throw CLI::ValidationError("--select", std::string(valid.message()));
    }
    *action = [opts] {
      absl::Status st = RunWatch(opts, std::cout, std::cerr);
      if (!st.ok()) std::cerr << "vigil-node: watch: " << st.message() << "\n";
      return st.ok() ? 0 : 1;
    };
  });
}

// `reference-values`: the typed measurements a genuine start of this binary makes, as the
// verifier's --reference-values file.
void RegisterReferenceValuesCommand(CLI::App& app, Action* action) {
  auto config = std::make_shared<NodeConfig>();
  auto no_probes = std::make_shared<bool>(false);
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "reference-values",
      "Write the verifier's --reference-values file (YAML) for this build: each measurement a "
      "genuine start makes (node start, binary, BPF object, the kernel's program tags, policy "
      "bundle, TPM-restart epoch) with its event type and SHA-256 (loads the probes to read "
      "their tags; root)");
  cmd->add_option("--out", *out, "Write the file here (default: standard output)");
  cmd->add_option("--policy", config->policy_path, "Policy bundle (YAML) the node will run with");
  cmd->add_flag("--no-probes", *no_probes,
                "For nodes that run with --no-probes (the verifier never affirms them: their "
                "start sequence has no BPF records)");
  cmd->add_flag("--syscall-entry-hooks", config->syscall_entry_hooks,
                "For nodes that run with --syscall-entry-hooks (other programs are loaded)");
  cmd->callback([=] {
    *action = [config, no_probes, out] {
      NodeConfig c = *config;
      c.enable_probes = !*no_probes;
      absl::Status st = WriteReferenceValues(c, *out, std::cout);
      if (!st.ok()) std::cerr << "vigil-node: reference-values: " << st.message() << "\n";
      return st.ok() ? 0 : 1;
    };
  });
}

}  // namespace
}  // namespace vigil::node

int main(int argc, char** argv) {
  vigil::LogToStderr();
  CLI::App app{
      "vigil-node: observes agent workloads from outside (procfs, seccomp filters, BPF probes) "
      "and streams TPM-bound runtime reports to a Vigil verifier over mutual TLS.",
      "vigil-node"};
  app.require_subcommand(1);
  vigil::node::Action action;
  // One registration per subcommand.
  vigil::node::RegisterRunCommand(app, &action);
  vigil::node::RegisterInspectCommand(app, &action);
  vigil::node::RegisterWatchCommand(app, &action);
  vigil::node::RegisterReferenceValuesCommand(app, &action);
  vigil::node::RegisterCheckCommand(app, &action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "vigil-node: " << e.what() << "\n";
    return 2;
  }
  return action ? action() : 2;
}
