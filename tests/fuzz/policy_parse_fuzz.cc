// libFuzzer harness for policy parsing: arbitrary bytes as a RuntimePolicy YAML stream. Must
// never crash, hang or trip a sanitizer; every diagnostic must carry a position inside the
// input; and every accepted stream must survive the bundle round trip byte for byte and be
// evaluable against a report.
//
// Input: the YAML text, as is (seeds are policy files; see docs/policy.md).

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/policy/bundle.h"
#include "common/policy/engine.h"
#include "common/policy/parser.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

vigil::v1::RuntimeReport SomeReport() {
  vigil::v1::RuntimeReport r;
  r.mutable_probes();
  for (const char* exe : {"/opt/agent/bin/agent", "/usr/bin/python3", "/bin/sh"}) {
    vigil::v1::ProcessSnapshot* p = r.add_processes();
    p->set_pid(r.processes_size() * 10);
    p->set_ppid(p->pid() - 10);
    p->set_exe_path(exe);
    p->set_comm("agent");
    p->set_cgroup("/system.slice/agent.service");
    if (p->ppid() > 0) p->add_matched_by("inherited:" + std::to_string(p->ppid()));
    p->mutable_seccomp()->set_mode(2);
    p->mutable_memory()->add_anonymous_executable()->set_permissions("rwxp");
    vigil::v1::Socket* s = p->add_sockets();
    s->set_protocol("tcp");
    s->set_state("listen");
    s->set_local_address("0.0.0.0");
    s->set_local_port(8080);
  }
  for (int kind = 1; kind <= 31; ++kind) {
    vigil::v1::RuntimeEvent* e = r.add_events();
    e->set_pid(10);
    e->set_kind(static_cast<vigil::v1::EventKind>(kind));
    e->set_return_value(kind % 2 == 0 ? -1 : 0);
    e->add_args(0x10000000);
    e->set_address("10.0.0.1");
    e->set_port(443);
  }
  // Observed scopes: one whose root runs (pid 10), one whose root exited.
  for (int root_pid : {10, 0}) {
    vigil::v1::WorkloadScope* scope = r.add_scopes();
    scope->set_root_exe_path(root_pid != 0 ? "/opt/agent/bin/agent" : "/opt/agent/bin/old");
    scope->set_root_pid(root_pid);
    scope->set_cgroup("/system.slice/agent.service");
    scope->add_executables()->set_path("/usr/bin/curl");
    scope->add_interpreters()->set_kind("sh");
    scope->add_libraries()->set_path("/usr/lib/x86_64-linux-gnu/libc.so.6");
    vigil::v1::ScopeStorage* st = scope->add_storage();
    st->set_directory("/var/lib/agent");
    st->add_files("a.db-wal");
    vigil::v1::ScopeEndpoint* e = scope->add_endpoints();
    e->set_direction("outbound");
    e->set_protocol("tcp");
    e->set_address("10.0.0.1");
    e->set_port(443);
    vigil::v1::ScopeFileRead* f = scope->add_files_read();
    f->set_path("/run/secrets/token");
    f->set_classification("secret");
    (*scope->mutable_truncated())["libraries"] = 1;
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  vigil::policy::ParseResult result = vigil::policy::ParsePolicies(text, "fuzz.yaml");
  int lines = 1;
  for (char c : text) lines += c == '\n';
  for (const vigil::policy::Diagnostic& d : result.diagnostics) {
    Check(d.line >= 1 && d.line <= lines + 1 && d.column >= 1 && !d.message.empty());
  }
  if (result.HasErrors()) {
    Check(result.policies.empty());  // refused whole
    return 0;
  }

  absl::StatusOr<vigil::v1::PolicyBundle> bundle = vigil::policy::BuildBundle(result.policies);
  if (!bundle.ok()) return 0;  // two policies of one name
  absl::StatusOr<std::vector<vigil::policy::Policy>> back = vigil::policy::ParseBundle(*bundle);
  Check(back.ok());
  absl::StatusOr<vigil::v1::PolicyBundle> again = vigil::policy::BuildBundle(*back);
  Check(again.ok() && again->SerializeAsString() == bundle->SerializeAsString());

  const std::vector<vigil::v1::WorkloadVerdict> verdicts =
      vigil::policy::Evaluate(result.policies, SomeReport());
  for (const vigil::v1::WorkloadVerdict& v : verdicts) {
    Check(v.workload_id().size() == 64);
    for (const vigil::v1::RuleOutcome& o : v.rules()) {
      Check(o.status() >= vigil::v1::TRUST_AFFIRMING &&
            o.status() <= vigil::v1::TRUST_CONTRAINDICATED);
    }
  }
  vigil::policy::DirectivesOf(result.policies);
  return 0;
}
