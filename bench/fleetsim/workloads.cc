#include "bench/fleetsim/workloads.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/measurement_log.h"

namespace vigil::fleetsim {
namespace {

constexpr uint64_t kCapSysAdmin = uint64_t{1} << 21;
constexpr uint64_t kCapNetBindService = uint64_t{1} << 10;

v1::ProcessSnapshot* AddProcess(v1::RuntimeReport& r, int32_t pid, const std::string& exe,
                                const std::string& cgroup) {
  v1::ProcessSnapshot* p = r.add_processes();
  p->set_pid(pid);
  p->set_ppid(1);
  p->set_comm(exe.substr(exe.rfind('/') + 1, 15));
  p->set_exe_path(exe);
  p->set_exe_sha256(HexEncode(Sha256(exe)));
  p->add_cmdline(exe);
  p->add_cmdline("--config=/etc/fleetsim/" + p->comm() + ".yaml");
  p->set_cgroup(cgroup);
  p->add_matched_by("exe=/opt/fleetsim/*");
  v1::Credentials* c = p->mutable_credentials();
  c->set_uid_real(1000);
  c->set_uid_effective(1000);
  c->set_uid_saved(1000);
  c->set_uid_fs(1000);
  c->set_gid_real(1000);
  c->set_gid_effective(1000);
  c->set_gid_saved(1000);
  c->set_gid_fs(1000);
  p->mutable_capabilities();  // read, and empty
  v1::SeccompState* s = p->mutable_seccomp();
  s->set_mode(2);
  s->set_filter_count(1);
  s->set_no_new_privs(true);
  p->set_root_read_only(true);
  for (const char* ns : {"mnt", "pid", "net", "ipc", "uts", "cgroup"}) {
    (*p->mutable_namespaces())[ns] = 4026531800u + static_cast<uint64_t>(pid % 97);
  }
  p->set_started_unix_nano(absl::ToUnixNanos(absl::Now()));
  return p;
}

v1::RuntimeReport Base() {
  v1::RuntimeReport r;
  r.set_kernel_release("6.1.0-fleetsim");
  r.set_node_version("vigil-fleetsim");
  r.set_node_started_unix_nano(absl::ToUnixNanos(absl::Now()));
  v1::ProbeStatus* probes = r.mutable_probes();
  for (const char* hook : {"sys_enter_ptrace", "sys_enter_mmap", "sys_enter_connect",
                           "sched_process_exec", "sched_process_exit"}) {
    probes->add_active_hooks(hook);
  }
  probes->set_bpf_object_sha256(HexEncode(Sha256("vigil-fleetsim bpf object")));
  return r;
}

// A web service: one unprivileged process with a seccomp filter, meeting the policy.
v1::RuntimeReport Web() {
  v1::RuntimeReport r = Base();
  AddProcess(r, 812, "/opt/fleetsim/web", "/system.slice/web.service");
  return r;
}

// A database: a server and a helper, both meeting the policy; the server may bind low ports.
v1::RuntimeReport Database() {
  v1::RuntimeReport r = Base();
  v1::ProcessSnapshot* server = AddProcess(r, 1204, "/opt/fleetsim/db", "/system.slice/db.service");
  server->mutable_capabilities()->set_permitted(kCapNetBindService);
  server->mutable_capabilities()->set_effective(kCapNetBindService);
  server->mutable_capabilities()->set_bounding(kCapNetBindService);
  server->add_children(1230);
  AddProcess(r, 1230, "/opt/fleetsim/db-checkpointer", "/system.slice/db.service")->set_ppid(1204);
  return r;
}

// A batch job that keeps CAP_SYS_ADMIN: contraindicated by the policy.
v1::RuntimeReport PrivilegedBatch() {
  v1::RuntimeReport r = Base();
  v1::ProcessSnapshot* p =
      AddProcess(r, 2201, "/opt/fleetsim/batch", "/system.slice/batch.service");
  p->mutable_capabilities()->set_permitted(kCapSysAdmin);
  p->mutable_capabilities()->set_effective(kCapSysAdmin);
  p->mutable_capabilities()->set_bounding(kCapSysAdmin);
  p->mutable_seccomp()->set_no_new_privs(false);
  return r;
}

// A debugging agent that ptraces a neighbour: contraindicated by the policy.
v1::RuntimeReport Debugger() {
  v1::RuntimeReport r = Base();
  AddProcess(r, 3302, "/opt/fleetsim/web", "/system.slice/web.service");
  v1::ProcessSnapshot* p = AddProcess(r, 3310, "/opt/fleetsim/tracer", "/system.slice/web.service");
  v1::RuntimeEvent* e = r.add_events();
  e->set_pid(p->pid());
  e->set_tid(p->pid());
  e->set_ppid(1);
  e->set_uid(1000);
  e->set_comm(p->comm());
  e->set_kind(v1::EVENT_KIND_PTRACE);
  e->set_return_value(0);
  e->add_args(16);  // PTRACE_ATTACH
  e->add_args(3302);
  e->set_target_pid(3302);
  return r;
}

}  // namespace

const std::vector<StartMeasurement>& StartSequence() {
  static const std::vector<StartMeasurement> sequence = [] {
    std::vector<StartMeasurement> s;
    // node-start's digest is a vigil-node's (node/agent/measurer.cc).
    s.push_back({kEventNodeStart, "vigil-fleetsim node start",
                 std::string(DigestBytes(Sha256("vigil-node-start")))});
    for (const char* type : {kEventNodeBinary, kEventBpfObject, kEventBpfProgramTags}) {
      s.push_back({type, absl::StrCat("vigil-fleetsim ", type),
                   std::string(DigestBytes(Sha256(absl::StrCat("vigil-fleetsim ", type))))});
    }
    return s;
  }();
  return sequence;
}

std::string ReferenceValuesYaml() {
  std::string out =
      "# The start sequence of vigil-fleetsim's simulated nodes.\nreference_values:\n";
  for (const StartMeasurement& m : StartSequence()) {
    absl::StrAppend(&out, "  - type: ", m.event_type, "\n    digest: ", HexEncode(m.digest),
                    "\n    description: \"", m.content, "\"\n");
  }
  // What a node without a policy bundle measures (node/agent/measurer.cc).
  absl::StrAppend(&out, "  - type: ", kEventNoPolicy,
                  "\n    digest: ", HexEncode(Sha256(kNoPolicyDigestInput)),
                  "\n    description: \"no policy bundle\"\n");
  return out;
}

std::string PolicyYaml() {
  return R"yaml(# vigil-fleetsim's policy for its simulated workloads.
apiVersion: vigil.dev/v1
kind: RuntimePolicy
metadata:
  name: fleetsim
  revision: 1
  description: The simulated fleet's services.
spec:
  workloads:
    - name: service
      selectors:
        - exe=/opt/fleetsim/*
  rules:
    - id: no-admin-capabilities
      kind: capabilities
      absent: [CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_PTRACE]
      controls:
        nist_800_53: [AC-6]
    - id: no-new-privs
      kind: no_new_privs
      grade: warning
      controls:
        nist_800_53: [AC-6(10)]
    - id: process-access-events
      kind: events
      events:
        - {kind: ptrace, denied: warning, succeeded: contraindicated}
      controls:
        nist_800_53: [SI-4]
)yaml";
}

WorkloadMix::WorkloadMix(uint32_t noncompliant_percent)
    : noncompliant_percent_(noncompliant_percent),
      compliant_{Web(), Database()},
      noncompliant_{PrivilegedBatch(), Debugger()},
      debugger_(Debugger()) {}

bool WorkloadMix::Compliant(size_t index) const {
  // Spread the non-compliant nodes over the fleet rather than in one block.
  return (index * 37) % 100 >= noncompliant_percent_;
}

const v1::RuntimeReport& WorkloadMix::TemplateOf(size_t index) const {
  const std::vector<v1::RuntimeReport>& pool = Compliant(index) ? compliant_ : noncompliant_;
  return pool[index % pool.size()];
}

std::string WorkloadMix::Report(size_t index, const std::string& node_id, uint64_t sequence,
                                const std::string& policy_digest, uint32_t events) const {
  return Render(TemplateOf(index), index, node_id, sequence, policy_digest, events);
}

std::string WorkloadMix::SentinelReport(size_t index, bool violating, const std::string& node_id,
                                        uint64_t sequence, const std::string& policy_digest,
                                        uint32_t events) const {
  return Render(violating ? debugger_ : compliant_[index % compliant_.size()], index, node_id,
                sequence, policy_digest, events);
}

std::string WorkloadMix::Render(const v1::RuntimeReport& tmpl, size_t index,
                                const std::string& node_id, uint64_t sequence,
                                const std::string& policy_digest, uint32_t events) const {
  v1::RuntimeReport r = tmpl;
  const int64_t now = absl::ToUnixNanos(absl::Now());
  r.set_node_id(node_id);
  r.set_sequence(sequence);
  r.set_collected_unix_nano(now);
  r.set_hostname(absl::StrCat("sim-", index));
  r.set_boot_id(node_id.substr(0, 32));
  r.set_policy_digest(policy_digest);
  const int32_t pid = r.processes(0).pid();
  for (uint32_t i = 0; i < events; ++i) {
    v1::RuntimeEvent* e = r.add_events();
    e->set_time_unix_nano(now - static_cast<int64_t>(i) * 1000);
    e->set_pid(pid);
    e->set_tid(pid);
    e->set_uid(1000);
    e->set_comm(r.processes(0).comm());
    switch (i % 3) {
      case 0:
        e->set_kind(v1::EVENT_KIND_CONNECT);
        e->set_address("10.0.0.7");
        e->set_port(5432);
        break;
      case 1:
        e->set_kind(v1::EVENT_KIND_MMAP);
        e->add_args(0);
        e->add_args(4096);
        e->add_args(3);  // PROT_READ | PROT_WRITE
        break;
      default:
        e->set_kind(v1::EVENT_KIND_PROCESS_EXEC);
        e->set_path("/usr/bin/logrotate");
        break;
    }
  }
  return r.SerializeAsString();
}

}  // namespace vigil::fleetsim
