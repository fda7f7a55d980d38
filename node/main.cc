// vigil-node: observes agent workloads from outside (procfs, seccomp filters, BPF probes) and
// streams TPM-bound runtime reports to a Vigil verifier over mutual TLS.

#include <google/protobuf/util/json_util.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "node/agent/config.h"
#include "node/agent/node_runner.h"
#include "node/commands/check_flags.h"
#include "node/commands/node_flags.h"
#include "node/commands/watch_command.h"
#include "node/procfs/snapshotter.h"
#include "spdlog/spdlog.h"

namespace vigil::node {
namespace {

// What the chosen subcommand does once flags are parsed; returns the exit code.
using Action = std::function<int()>;

constexpr const char* kCapNames[] = {"chown",
                                     "dac_override",
                                     "dac_read_search",
                                     "fowner",
                                     "fsetid",
                                     "kill",
                                     "setgid",
                                     "setuid",
                                     "setpcap",
                                     "linux_immutable",
                                     "net_bind_service",
                                     "net_broadcast",
                                     "net_admin",
                                     "net_raw",
                                     "ipc_lock",
                                     "ipc_owner",
                                     "sys_module",
                                     "sys_rawio",
                                     "sys_chroot",
                                     "sys_ptrace",
                                     "sys_pacct",
                                     "sys_admin",
                                     "sys_boot",
                                     "sys_nice",
                                     "sys_resource",
                                     "sys_time",
                                     "sys_tty_config",
                                     "mknod",
                                     "lease",
                                     "audit_write",
                                     "audit_control",
                                     "setfcap",
                                     "mac_override",
                                     "mac_admin",
                                     "syslog",
                                     "wake_alarm",
                                     "block_suspend",
                                     "audit_read",
                                     "perfmon",
                                     "bpf",
                                     "checkpoint_restore"};
constexpr int kCapCount = sizeof(kCapNames) / sizeof(kCapNames[0]);

// "none", the set's names, or for mostly-full sets "all but x, y".
std::string CapSet(uint64_t mask) {
  std::vector<std::string> in, out;
  for (int i = 0; i < kCapCount; ++i) {
    ((mask >> i) & 1 ? in : out).push_back(kCapNames[i]);
  }
  std::string hex = absl::StrCat("0x", absl::Hex(mask, absl::kZeroPad16));
  if (in.empty()) return absl::StrCat(hex, " (none)");
  if (out.empty()) return absl::StrCat(hex, " (all)");
  if (in.size() > out.size()) return absl::StrCat(hex, " (all but ", absl::StrJoin(out, ", "), ")");
  return absl::StrCat(hex, " (", absl::StrJoin(in, ", "), ")");
}

std::string Verdict(const v1::SyscallVerdict& v) {
  std::string a = v1::SeccompAction_Name(v.action()).substr(sizeof("SECCOMP_ACTION_") - 1);
  if (v.action() == v1::SECCOMP_ACTION_ERRNO || v.action() == v1::SECCOMP_ACTION_TRAP ||
      v.action() == v1::SECCOMP_ACTION_TRACE) {
    absl::StrAppend(&a, "(", v.data(), ")");
  }
  if (v.argument_dependent()) absl::StrAppend(&a, " (depends on arguments)");
  return a;
}

// Whether this kernel runs the verdict's ABI, as a short note ("" when it does).
std::string AbiNote(const v1::SyscallVerdict& v) {
  if (!v.has_abi_available()) return "kernel support unknown";
  return v.abi_available() ? "" : "not on this kernel";
}

// The verdicts, one line per syscall with its ABIs side by side and the ABIs that bypass
// the native verdict named at the end, after a line saying which ABIs this kernel runs and
// before a summary of every bypass. For example:
//   abis        x86_64 runs, i386 runs, x32 not on this kernel
//   ptrace      x86_64 ERRNO(1)  i386 ALLOW  x32 KILL_PROCESS  <- bypass via i386
void PrintSeccompVerdicts(const v1::SeccompState& sec) {
  const auto& all = sec.verdicts();
  if (all.empty()) return;
  size_t width = 14;
  std::vector<std::string> abis;  // "i386 runs", once per ABI in order of appearance
  std::vector<std::string> seen;
  for (const auto& v : all) {
    width = std::max(width, v.syscall().size() + 4);
    if (std::find(seen.begin(), seen.end(), v.arch()) != seen.end()) continue;
    seen.push_back(v.arch());
    const std::string note = AbiNote(v);
    abis.push_back(absl::StrCat(v.arch(), " ", note.empty() ? "runs" : note));
  }
  auto print = [width](const std::string& key, const std::string& value) {
    std::string text = absl::StrCat("  ", key);
    text.resize(std::max(width, text.size() + 1), ' ');
    std::cout << text << value << "\n";
  };
  print("abis", absl::StrJoin(abis, ", "));
  std::vector<std::string> summary;
  for (int i = 0; i < all.size();) {
    const std::string& name = all[i].syscall();
    std::vector<std::string> verdicts, bypass;
    for (; i < all.size() && all[i].syscall() == name; ++i) {
      verdicts.push_back(absl::StrCat(all[i].arch(), " ", Verdict(all[i])));
      if (!all[i].bypass()) continue;
      const std::string note = AbiNote(all[i]);
      bypass.push_back(note.empty() ? all[i].arch() : absl::StrCat(all[i].arch(), " (", note, ")"));
    }
    std::string text = absl::StrJoin(verdicts, "  ");
    if (!bypass.empty()) {
      absl::StrAppend(&text, "  <- bypass via ", absl::StrJoin(bypass, ", "));
      summary.push_back(name);
    }
    print(name, text);
  }
  if (!summary.empty()) {
    print("bypass", absl::StrCat(absl::StrJoin(summary, ", "),
                                 " (denied natively, allowed through another ABI)"));
  }
}

void PrintSnapshot(const v1::ProcessSnapshot& s, const std::vector<std::string>& gaps) {
  auto line = [](const std::string& k, const std::string& v) {
    std::cout << absl::StrCat(k, std::string(k.size() < 14 ? 14 - k.size() : 1, ' '), v, "\n");
  };
  line("pid", absl::StrCat(s.pid(), " (", s.comm(), "), parent ", s.ppid(),
                           s.main_thread_exited() ? "; main thread exited, read through "
                                                    "another thread"
                                                  : ""));
  line("started",
       absl::FormatTime(absl::FromUnixNanos(s.started_unix_nano()), absl::UTCTimeZone()));
  line("exe", absl::StrCat(s.exe_path(), "  sha256 ", s.exe_sha256()));
  line("cmdline", absl::StrJoin(s.cmdline(), " "));
  line("cgroup", s.cgroup().empty() ? "-" : s.cgroup());
  line("container", s.container_id().empty() ? "-" : s.container_id());
  const auto& c = s.credentials();
  line("uid", absl::StrCat("real ", c.uid_real(), ", effective ", c.uid_effective(), ", saved ",
                           c.uid_saved(), ", fs ", c.uid_fs()));
  line("gid", absl::StrCat("real ", c.gid_real(), ", effective ", c.gid_effective(), ", saved ",
                           c.gid_saved(), ", fs ", c.gid_fs(), "; groups ",
                           absl::StrJoin(c.supplementary_gids(), ",")));
  for (const auto& m : c.uid_map())
    line("uid_map", absl::StrCat(m.inside(), " ", m.outside(), " ", m.count()));
  for (const auto& m : c.gid_map())
    line("gid_map", absl::StrCat(m.inside(), " ", m.outside(), " ", m.count()));
  std::vector<std::string> ns;
  for (const char* n : {"mnt", "pid", "user", "net", "ipc", "uts", "cgroup", "time"}) {
    if (s.namespaces().contains(n)) ns.push_back(absl::StrCat(n, ":", s.namespaces().at(n)));
  }
  line("namespaces", absl::StrJoin(ns, " "));
  line("root", !s.has_root_read_only() ? "unknown" : s.root_read_only() ? "read-only" : "writable");
  const auto& sec = s.seccomp();
  static constexpr const char* kModes[] = {"disabled", "strict", "filter"};
  line("seccomp", absl::StrCat(sec.mode() < 3 ? kModes[sec.mode()] : "?", ", ", sec.filter_count(),
                               " filter(s), no_new_privs ", sec.no_new_privs() ? "yes" : "no"));
  if (!sec.inspection_error().empty()) line("  not inspected", sec.inspection_error());
  PrintSeccompVerdicts(sec);
  const auto& caps = s.capabilities();
  line("cap effective", CapSet(caps.effective()));
  line("cap permitted", CapSet(caps.permitted()));
  line("cap inherit", CapSet(caps.inheritable()));
  line("cap bounding", CapSet(caps.bounding()));
  line("cap ambient", CapSet(caps.ambient()));
  line("locked", absl::StrCat(s.vm_locked_kib(), " KiB (VmLck)"));
  for (const auto& r : s.memory().anonymous_executable()) {
    line(r.writable() ? "anon rwx" : "anon exec",
         absl::StrCat("0x", absl::Hex(r.start()), "-0x", absl::Hex(r.end()), " ", r.permissions(),
                      " ", r.size_kib(), " KiB, locked ", r.locked_kib(), " KiB ", r.name(),
                      r.writable_alias() ? " (also writable through another mapping or fd)" : ""));
  }
  for (const auto& f : s.memory().executable_files()) {
    line("mapped exec",
         absl::StrCat(f.path(), "  sha256 ",
                      f.sha256().empty() ? "-" : absl::StrCat(f.sha256().substr(0, 16), "..."),
                      f.writable_alias() ? " (also writable through another mapping or fd)" : ""));
  }
  for (const auto& k : s.sockets()) {
    std::string remote = k.remote_address().empty() || k.state() == "listen"
                             ? ""
                             : absl::StrCat(" -> ", k.remote_address(), ":", k.remote_port());
    std::string local = k.protocol() == "unix"
                            ? (k.local_address().empty() ? "(unnamed)" : k.local_address())
                            : absl::StrCat(k.local_address(), ":", k.local_port());
    line("socket", absl::StrCat(k.protocol(), " ", k.state(), " ", local, remote));
  }
  for (const auto& f : s.sensitive_files()) {
    line(absl::StrCat("open ", f.classification()),
         absl::StrCat("fd ", f.fd(), " ", f.path(), " flags 0", absl::StrFormat("%o", f.flags())));
  }
  // Threads whose security state differs from the main thread's (the fields above).
  for (const auto& t : s.divergent_threads()) {
    const auto& ts = t.seccomp();
    std::vector<std::string> ns;
    for (const auto& [name, inode] : t.namespaces()) {
      auto own = s.namespaces().find(name);
      if (own == s.namespaces().end() || own->second != inode) {
        ns.push_back(absl::StrCat(name, ":", inode, " (own)"));
      }
    }
    std::sort(ns.begin(), ns.end());
    line("thread",
         absl::StrCat(t.tid(), " (", t.comm(), "): uid ", t.credentials().uid_effective(),
                      ", seccomp ", ts.mode() < 3 ? kModes[ts.mode()] : "?", " ", ts.filter_count(),
                      " filter(s), no_new_privs ", ts.no_new_privs() ? "yes" : "no",
                      ", cap effective ", CapSet(t.capabilities().effective()),
                      ns.empty() ? "" : absl::StrCat(", ", absl::StrJoin(ns, " "))));
    for (const auto& v : ts.verdicts()) {
      if (v.arch() == "x86_64") line("  verdict", absl::StrCat(v.syscall(), " ", Verdict(v)));
    }
  }
  line("children", s.children().empty() ? "-" : absl::StrJoin(s.children(), " "));
  for (const auto& g : gaps) line("gap", g);
}

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
  CLI::App* run = app.add_subcommand(
      "run", "Stream runtime reports of the selected processes to the verifier until SIGTERM");
  NodeConfig& c = *config;
  run->add_option("--verifier", c.verifier_address, "Verifier's mutual-TLS address host:port")
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
  run->add_flag("--no-probes", *no_probes, "Do not load the BPF probes (no events)");
  run->add_flag("--syscall-entry-hooks", c.syscall_entry_hooks, kEntryHooksHelp);
  run->callback([=] {
    for (const std::string& text : *selects) {
      auto s = ParseSelector(text);
      if (!s.ok()) throw CLI::ValidationError("--select", std::string(s.status().message()));
      config->selectors.push_back(*s);
    }
    auto paths = ParseSensitive(*sensitive);
    if (!paths.ok())
      throw CLI::ValidationError("--sensitive", std::string(paths.status().message()));
    config->sensitive_paths = *paths;
    config->enable_probes = !*no_probes;
    *action = [config] {
      // Block the stop signals before any thread starts, so only the waiter below sees them.
      sigset_t stop;
      sigemptyset(&stop);
      sigaddset(&stop, SIGTERM);
      sigaddset(&stop, SIGINT);
      pthread_sigmask(SIG_BLOCK, &stop, nullptr);
      auto runner = NodeRunner::Create(*config);
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
    *action = [f, paths = *paths] {
      FileHashCache hashes;
      SnapshotOptions opts;
      opts.seccomp_syscalls = f->syscalls;
      opts.sensitive_paths = paths;
      Snapshotter snapshotter(opts, &hashes);
      std::vector<std::string> gaps;
      auto snap = snapshotter.Snapshot(f->pid, &gaps);
      if (!snap.ok()) {
        std::cerr << "vigil-node: pid " << f->pid << ": " << snap.status().message() << "\n";
        return 1;
      }
      if (!f->json) {
        PrintSnapshot(*snap, gaps);
        return 0;
      }
      google::protobuf::util::JsonPrintOptions o;
      o.add_whitespace = true;
      o.preserve_proto_field_names = true;
      o.always_print_primitive_fields = true;  // uid 0 and an empty ambient set are findings
      std::string json;
      auto st = google::protobuf::util::MessageToJsonString(*snap, &json, o);
      if (!st.ok()) {
        std::cerr << "vigil-node: " << st.ToString() << "\n";
        return 1;
      }
      std::cout << json;
      for (const std::string& g : gaps) std::cerr << "vigil-node: gap: " << g << "\n";
      return 0;
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
      auto values = ComputeReferenceValues(c);
      if (!values.ok()) {
        std::cerr << "vigil-node: reference-values: " << values.status().message() << "\n";
        return 1;
      }
      const std::string text = RenderReferenceValues(*values);
      if (out->empty()) {
        std::cout << text;
        return std::cout.flush() ? 0 : 1;
      }
      std::ofstream file(*out, std::ios::binary | std::ios::trunc);
      file << text;
      file.close();
      if (!file) {
        std::cerr << "vigil-node: reference-values: cannot write " << *out << "\n";
        return 1;
      }
      return 0;
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
