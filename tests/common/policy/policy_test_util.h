#pragma once

// Policies and reports built in the policy tests.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/policy/parser.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::policy::testing {

/// `s` with the first `from` replaced by `to` (a test failure when `from` is absent).
inline std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

/// A policy "t" whose one workload "agent" is exe=/opt/agent/* and whose rules are the
/// given YAML flow mappings (one per rule).
inline Policy PolicyWithRules(const std::vector<std::string>& rules) {
  std::string yaml =
      "apiVersion: vigil.dev/v1\n"
      "kind: RuntimePolicy\n"
      "metadata: {name: t, revision: 3}\n"
      "spec:\n"
      "  workloads:\n"
      "    - name: agent\n"
      "      selectors: [\"exe=/opt/agent/*\"]\n"
      "  rules:\n";
  for (const std::string& r : rules) yaml += "    - " + r + "\n";
  absl::StatusOr<std::vector<Policy>> p = ParsePoliciesOrError(yaml, "test.yaml");
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok() || p->size() != 1) return Policy{};
  return p->front();
}

/// Appends a verdict for `syscall` on each ABI.
inline void AddVerdicts(v1::SeccompState* s, const std::string& syscall) {
  const struct {
    const char* arch;
    v1::SeccompAction action;
    bool available;
  } abis[] = {{"x86_64", v1::SECCOMP_ACTION_ERRNO, true},
              {"i386", v1::SECCOMP_ACTION_KILL_PROCESS, true},
              {"x32", v1::SECCOMP_ACTION_KILL_PROCESS, false}};
  for (const auto& abi : abis) {
    v1::SyscallVerdict* v = s->add_verdicts();
    v->set_syscall(syscall);
    v->set_arch(abi.arch);
    v->set_action(abi.action);
    if (abi.action == v1::SECCOMP_ACTION_ERRNO) v->set_data(1);
    v->set_abi_available(abi.available);
  }
}

/// A process of the "agent" workload that meets every rule of strict.yaml: seccomp filter
/// denying ptrace and process_vm_* everywhere, capabilities dropped, no_new_privs, 68 KiB
/// locked with a locked r-x JIT region, read-only root.
inline v1::ProcessSnapshot CompliantProcess(int pid = 100) {
  v1::ProcessSnapshot p;
  p.set_pid(pid);
  p.set_ppid(1);
  p.set_comm("agent");
  p.set_exe_path("/opt/agent/bin/agent");
  p.set_exe_sha256(std::string(64, 'a'));
  p.set_cgroup("/system.slice/agent.service");
  p.add_matched_by("exe=/opt/agent/*");
  v1::SeccompState* s = p.mutable_seccomp();
  s->set_mode(2);
  s->set_filter_count(1);
  s->set_no_new_privs(true);
  s->set_filters_inspected(true);
  for (const char* name : {"ptrace", "process_vm_readv", "process_vm_writev"}) {
    AddVerdicts(s, name);
  }
  const uint64_t all = (uint64_t{1} << 41) - 1;
  const uint64_t dropped = (uint64_t{1} << 19) | (uint64_t{1} << 21) | (uint64_t{1} << 2);
  v1::Capabilities* c = p.mutable_capabilities();
  c->set_bounding(all & ~dropped);
  c->set_permitted(all & ~dropped);
  c->set_effective(all & ~dropped);
  p.set_vm_locked_kib(68);
  v1::MemoryRegion* jit = p.mutable_memory()->add_anonymous_executable();
  jit->set_start(0x7f0000000000);
  jit->set_end(0x7f0000001000);
  jit->set_permissions("r-xp");
  jit->set_size_kib(4);
  jit->set_locked_kib(4);
  p.set_root_read_only(true);
  return p;
}

/// A report holding CompliantProcess() and probes that ran and lost nothing.
inline v1::RuntimeReport CompliantReport() {
  v1::RuntimeReport r;
  r.set_node_id(std::string(64, '0'));
  *r.add_processes() = CompliantProcess();
  r.mutable_probes()->add_active_hooks("tracepoint/syscalls/sys_exit_ptrace");
  return r;
}

/// An event of `kind` by pid 100.
inline v1::RuntimeEvent* AddEvent(v1::RuntimeReport* r, v1::EventKind kind, int64_t ret,
                                  int pid = 100) {
  v1::RuntimeEvent* e = r->add_events();
  e->set_pid(pid);
  e->set_tid(pid);
  e->set_ppid(1);
  e->set_comm("agent");
  e->set_kind(kind);
  e->set_return_value(ret);
  return e;
}

}  // namespace vigil::policy::testing
