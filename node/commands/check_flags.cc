#include "node/commands/check_flags.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "node/commands/check_command.h"
#include "node/commands/node_flags.h"

namespace vigil::node {

void RegisterCheckCommand(CLI::App& app, std::function<int()>* action) {
  auto o = std::make_shared<CheckOptions>();
  auto selects = std::make_shared<std::vector<std::string>>();
  auto node = std::make_shared<NodeConfig>();
  node->verifier_address.clear();
  CLI::App* check = app.add_subcommand(
      "check",
      "CI gate: evaluate a policy's rules on a workload observed from outside (procfs, seccomp "
      "filters, BPF probes) with the verifier's rule engine; with --verifier, also send the "
      "TPM-quoted report to the verifier so the result is on record. Exit 0 every rule passed "
      "(and the verifier affirmed), 1 a rule failed, warned or was not observed (or the "
      "verifier refused or did not affirm), 2 usage error (or a vigil-node run holds the "
      "state directory), 3 the check could not run (or the verifier or TPM could not be "
      "used), 4 every rule passed but the command failed (docs/check.md)");
  check->add_option("--policy", o->policy_path, "RuntimePolicy file (YAML) to check against")
      ->required();
  check->add_option("--pid", o->pid, "Check this running process and its descendants")
      ->check(CLI::Range(1, 1 << 30, "PID"));
  check->add_option("--select", *selects,
                    "Check the running processes matching KEY=VAL[,KEY=VAL...] (keys: pid, exe "
                    "(glob), comm, cgroup (glob), container (id prefix)) and their descendants; "
                    "repeatable");
  check
      ->add_option("--duration", o->duration_seconds,
                   "Observe for SECONDS, or until the command (or, with --pid/--select, every "
                   "observed process) exits if sooner; a command still running then gets "
                   "SIGTERM, and SIGKILL 5 s later; 0: until the command exits")
      ->check(CLI::Range(0, 31536000))
      ->capture_default_str();
  check->add_flag("--json", o->json, "Print the report as JSON instead of the table");
  check->add_option("--junit", o->junit_path, "Also write the report as JUnit XML to FILE");
  check->add_flag("--syscall-entry-hooks", o->syscall_entry_hooks,
                  "Also attach the syscall entry tracepoints (same events; costs every syscall on "
                  "the machine more, see BENCHMARKS.md)");
  check->add_option("--verifier", node->verifier_address,
                    "Also put the check on record: act as this machine's node (identity flags as "
                    "`vigil-node run` takes them; enrolls when --state-dir holds no identity), "
                    "quote the observed report with the TPM and send it to the verifier at "
                    "host:port; its verdict is printed after the local result");
  AddNodeIdentityFlags(*check, *node);
  check->add_option("command", o->command,
                    "After --: the command to start and check, monitored from its first syscall "
                    "(its stdout and stderr go to vigil-node's stderr, stdin is /dev/null)");
  check->callback([=] {
    for (const std::string& text : *selects) {
      auto sel = ParseSelector(text);
      if (!sel.ok()) throw CLI::ValidationError("--select", std::string(sel.status().message()));
      o->selectors.push_back(*sel);
    }
    for (const char* name : kNodeIdentityFlags) {
      if (node->verifier_address.empty() && check->get_option(name)->count() > 0) {
        throw CLI::ValidationError(name, "is for --verifier (the node the check acts as)");
      }
    }
    if (!node->verifier_address.empty()) {
      o->node = *node;
      o->node->enable_probes = true;
      o->node->syscall_entry_hooks = o->syscall_entry_hooks;
    }
    if (absl::Status valid = ValidateCheckOptions(*o); !valid.ok()) {
      throw CLI::ValidationError("check", std::string(valid.message()));
    }
    *action = [o] { return RunCheck(*o, std::cout, std::cerr); };
  });
}

}  // namespace vigil::node
