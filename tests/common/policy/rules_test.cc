// Every rule kind on snapshots and events built here: what passes, what fails, and how the
// failure is graded and attributed (pid, tid).

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "common/policy/engine.h"
#include "tests/common/policy/policy_test_util.h"

namespace vigil::policy {
namespace {

using testing::AddEvent;
using testing::CompliantReport;
using testing::PolicyWithRules;

constexpr uint64_t kCloneNewUser = 0x10000000;
constexpr uint64_t kCloneNewNs = 0x00020000;

v1::ProcessSnapshot* Proc(v1::RuntimeReport* r) { return r->mutable_processes(0); }

v1::SyscallVerdict* Verdict(v1::RuntimeReport* r, const std::string& syscall,
                            const std::string& arch) {
  for (v1::SyscallVerdict& v : *Proc(r)->mutable_seccomp()->mutable_verdicts()) {
    if (v.syscall() == syscall && v.arch() == arch) return &v;
  }
  ADD_FAILURE() << "no verdict " << syscall << "/" << arch;
  static v1::SyscallVerdict unused;
  return &unused;
}

v1::Socket* AddSocket(v1::RuntimeReport* r, const std::string& protocol, const std::string& state,
                      const std::string& local, uint32_t local_port, const std::string& remote,
                      uint32_t remote_port) {
  v1::Socket* s = Proc(r)->add_sockets();
  s->set_protocol(protocol);
  s->set_state(state);
  s->set_local_address(local);
  s->set_local_port(local_port);
  s->set_remote_address(remote);
  s->set_remote_port(remote_port);
  return s;
}

v1::RuntimeEvent* Connect(v1::RuntimeReport* r, const std::string& address, uint32_t port,
                          int64_t ret = 0) {
  v1::RuntimeEvent* e = AddEvent(r, v1::EVENT_KIND_CONNECT, ret);
  e->set_address(address);
  e->set_port(port);
  return e;
}

struct Case {
  const char* name;
  const char* rule;
  std::function<void(v1::RuntimeReport*)> mutate;
  v1::TrustStatus status;  // the workload's
  const char* text;        // in the reason or observed text of a non-affirming outcome
  int tid = 0;             // of that outcome
};

const char kSeccomp[] =
    "{id: sc, kind: seccomp, deny: [ptrace, process_vm_readv, process_vm_writev], "
    "controls: {nist_800_53: [SC-39]}}";
const char kSeccompWarning[] =
    "{id: sc, kind: seccomp, grade: warning, deny: [ptrace], controls: {nist_800_53: [SC-39]}}";
const char kCaps[] =
    "{id: caps, kind: capabilities, absent: [CAP_SYS_PTRACE, CAP_SYS_ADMIN, "
    "CAP_DAC_READ_SEARCH], ambient_empty: true, controls: {nist_800_53: [AC-6]}}";
const char kNnp[] = "{id: nnp, kind: no_new_privs, controls: {nist_800_53: [AC-6(10)]}}";
const char kRoot[] = "{id: ro, kind: read_only_root, controls: {nist_800_53: [SI-7]}}";
const char kUserNs[] = "{id: userns, kind: user_namespaces, controls: {nist_800_53: [SC-39]}}";
const char kMemory[] =
    "{id: mem, kind: memory, min_locked_bytes: 65536, forbid_writable_executable: true, "
    "allow_locked_jit: true, controls: {nist_800_53: [SI-16]}}";
const char kMemoryNoJit[] =
    "{id: mem, kind: memory, forbid_writable_executable: true, controls: {nist_800_53: [SI-16]}}";
const char kInterpreters[] =
    "{id: interp, kind: interpreters, allowed: [/usr/bin/python3*], "
    "controls: {nist_800_53: [CM-7(5)]}}";
const char kEgress[] =
    "{id: egress, kind: egress, allow: [{cidr: 10.0.0.0/8, ports: [443]}, "
    "{cidr: \"2001:db8::/32\"}], controls: {nist_800_53: [SC-7]}}";
const char kListeners[] =
    "{id: listen, kind: listeners, allow: [{cidr: 127.0.0.0/8, ports: [8080]}, "
    "{cidr: 0.0.0.0/32, ports: [9000-9100]}], controls: {nist_800_53: [SC-7]}}";
const char kEvents[] =
    "{id: ev, kind: events, events: [{kind: ptrace}, {kind: process_vm_readv}, "
    "{kind: process_vm_writev, denied: ignore, succeeded: warning}], "
    "controls: {nist_800_53: [SI-4]}}";

void Nothing(v1::RuntimeReport*) {}

const Case kCases[] = {
    // seccomp
    {"SeccompCompliant", kSeccomp, Nothing, v1::TRUST_AFFIRMING, ""},
    {"SeccompModeDisabled", kSeccomp,
     [](v1::RuntimeReport* r) { Proc(r)->mutable_seccomp()->set_mode(0); },
     v1::TRUST_CONTRAINDICATED, "seccomp mode 0"},
    {"SeccompFiltersNotInspected", kSeccomp,
     [](v1::RuntimeReport* r) {
       Proc(r)->mutable_seccomp()->set_filters_inspected(false);
       Proc(r)->mutable_seccomp()->set_inspection_error("PTRACE_SECCOMP_GET_FILTER: EPERM");
     },
     v1::TRUST_CONTRAINDICATED, "filters not inspected: PTRACE_SECCOMP_GET_FILTER"},
    {"SeccompBypassVerdict", kSeccomp,
     [](v1::RuntimeReport* r) {
       v1::SyscallVerdict* v = Verdict(r, "process_vm_readv", "i386");
       v->set_action(v1::SECCOMP_ACTION_ALLOW);
       v->set_bypass(true);
     },
     v1::TRUST_CONTRAINDICATED, "process_vm_readv on i386: ALLOW, a bypass"},
    {"SeccompBypassCountsEvenWhereAbiUnavailable", kSeccomp,
     [](v1::RuntimeReport* r) {
       v1::SyscallVerdict* v = Verdict(r, "ptrace", "x32");
       v->set_action(v1::SECCOMP_ACTION_ALLOW);
       v->set_bypass(true);
       v->set_abi_available(false);
     },
     v1::TRUST_CONTRAINDICATED, "ptrace on x32: ALLOW, a bypass"},
    {"SeccompAbiLeftOpen", kSeccomp,
     [](v1::RuntimeReport* r) { Verdict(r, "ptrace", "i386")->set_action(v1::SECCOMP_ACTION_LOG); },
     v1::TRUST_CONTRAINDICATED, "ptrace on i386: LOG, ABI left open"},
    {"SeccompAbiAvailabilityUnknown", kSeccomp,
     [](v1::RuntimeReport* r) {
       v1::SyscallVerdict* v = Verdict(r, "ptrace", "i386");
       v->set_action(v1::SECCOMP_ACTION_ALLOW);
       v->clear_abi_available();
     },
     v1::TRUST_CONTRAINDICATED, "the kernel may run this ABI (unknown)"},
    {"SeccompOpenAbiTheKernelCannotRun", kSeccomp,
     [](v1::RuntimeReport* r) {
       Verdict(r, "ptrace", "x32")->set_action(v1::SECCOMP_ACTION_ALLOW);
     },
     v1::TRUST_AFFIRMING, ""},
    {"SeccompNativeAllowed", kSeccomp,
     [](v1::RuntimeReport* r) {
       Verdict(r, "process_vm_writev", "x86_64")->set_action(v1::SECCOMP_ACTION_ALLOW);
     },
     v1::TRUST_CONTRAINDICATED, "process_vm_writev on x86_64: ALLOW"},
    {"SeccompTraceIsNotADenial", kSeccomp,
     [](v1::RuntimeReport* r) {
       Verdict(r, "ptrace", "x86_64")->set_action(v1::SECCOMP_ACTION_TRACE);
     },
     v1::TRUST_CONTRAINDICATED, "ptrace on x86_64: TRACE"},
    {"SeccompArgumentDependentDenial", kSeccomp,
     [](v1::RuntimeReport* r) { Verdict(r, "ptrace", "x86_64")->set_argument_dependent(true); },
     v1::TRUST_CONTRAINDICATED, "only for some arguments"},
    {"SeccompSyscallNotEvaluated", kSeccomp,
     [](v1::RuntimeReport* r) {
       auto* verdicts = Proc(r)->mutable_seccomp()->mutable_verdicts();
       verdicts->erase(verdicts->begin(), verdicts->begin() + 3);  // ptrace's
     },
     v1::TRUST_CONTRAINDICATED, "ptrace: not evaluated by the node"},
    {"SeccompDivergentThreadWithoutFilter", kSeccomp,
     [](v1::RuntimeReport* r) {
       v1::ThreadState* t = Proc(r)->add_divergent_threads();
       t->set_tid(101);
       t->set_comm("worker");
       t->mutable_seccomp()->set_mode(0);
     },
     v1::TRUST_CONTRAINDICATED, "thread 101 'worker' diverges from its process: seccomp mode 0",
     101},
    {"SeccompDivergentThreadFilterNotInspected", kSeccomp,
     [](v1::RuntimeReport* r) {
       v1::ThreadState* t = Proc(r)->add_divergent_threads();
       t->set_tid(102);
       t->mutable_seccomp()->set_mode(2);
       t->mutable_seccomp()->set_filter_count(2);
     },
     v1::TRUST_CONTRAINDICATED, "filters not inspected", 102},
    {"SeccompDivergentThreadSameFilters", kSeccomp,
     [](v1::RuntimeReport* r) {
       v1::ThreadState* t = Proc(r)->add_divergent_threads();
       t->set_tid(103);
       t->mutable_seccomp()->set_mode(2);
       t->mutable_seccomp()->set_filter_count(1);
       t->mutable_capabilities()->set_bounding(1);  // diverges in capabilities only
     },
     v1::TRUST_AFFIRMING, ""},
    {"SeccompFailureGradedWarning", kSeccompWarning,
     [](v1::RuntimeReport* r) { Proc(r)->mutable_seccomp()->set_mode(0); }, v1::TRUST_WARNING,
     "seccomp mode 0"},
    // capabilities
    {"CapabilitiesDropped", kCaps, Nothing, v1::TRUST_AFFIRMING, ""},
    {"CapabilityInBoundingOnly", kCaps,
     [](v1::RuntimeReport* r) {
       v1::Capabilities* c = Proc(r)->mutable_capabilities();
       c->set_bounding(c->bounding() | (uint64_t{1} << 19));
     },
     v1::TRUST_CONTRAINDICATED, "CAP_SYS_PTRACE in bounding"},
    {"CapabilityInEveryRequiredSet", kCaps,
     [](v1::RuntimeReport* r) {
       v1::Capabilities* c = Proc(r)->mutable_capabilities();
       const uint64_t admin = uint64_t{1} << 21;
       c->set_bounding(c->bounding() | admin);
       c->set_permitted(admin);
       c->set_effective(admin);
       c->set_ambient(admin);
     },
     v1::TRUST_CONTRAINDICATED, "CAP_SYS_ADMIN in bounding, permitted, effective, ambient"},
    {"AmbientNotEmpty", kCaps,
     [](v1::RuntimeReport* r) { Proc(r)->mutable_capabilities()->set_ambient(1 << 10); },
     v1::TRUST_CONTRAINDICATED, "ambient set 0x400 not empty"},
    {"CapabilityHeldByDivergentThread", kCaps,
     [](v1::RuntimeReport* r) {
       v1::ThreadState* t = Proc(r)->add_divergent_threads();
       t->set_tid(104);
       t->set_comm("helper");
       t->mutable_capabilities()->set_effective(uint64_t{1} << 2);
     },
     v1::TRUST_CONTRAINDICATED, "thread 104 'helper' holds CAP_DAC_READ_SEARCH in effective", 104},
    {"CapabilitiesNotObserved", kCaps, [](v1::RuntimeReport* r) { Proc(r)->clear_capabilities(); },
     v1::TRUST_CONTRAINDICATED, "capabilities not observed"},
    // no_new_privs
    {"NoNewPrivsSet", kNnp, Nothing, v1::TRUST_AFFIRMING, ""},
    {"NoNewPrivsUnset", kNnp,
     [](v1::RuntimeReport* r) { Proc(r)->mutable_seccomp()->set_no_new_privs(false); },
     v1::TRUST_CONTRAINDICATED, "NoNewPrivs: 0"},
    {"NoNewPrivsUnsetOnDivergentThread", kNnp,
     [](v1::RuntimeReport* r) {
       v1::ThreadState* t = Proc(r)->add_divergent_threads();
       t->set_tid(105);
       t->mutable_seccomp()->set_no_new_privs(false);
     },
     v1::TRUST_CONTRAINDICATED, "thread 105 '' does not have no_new_privs", 105},
    // read_only_root
    {"RootReadOnly", kRoot, Nothing, v1::TRUST_AFFIRMING, ""},
    {"RootWritable", kRoot, [](v1::RuntimeReport* r) { Proc(r)->set_root_read_only(false); },
     v1::TRUST_CONTRAINDICATED, "the root filesystem is writable"},
    {"RootUnknown", kRoot, [](v1::RuntimeReport* r) { Proc(r)->clear_root_read_only(); },
     v1::TRUST_CONTRAINDICATED, "unknown"},
    // user_namespaces
    {"NoUserNamespaceEvents", kUserNs, Nothing, v1::TRUST_AFFIRMING, ""},
    {"UnshareNewUserFailed", kUserNs,
     [](v1::RuntimeReport* r) { AddEvent(r, v1::EVENT_KIND_UNSHARE, -1)->add_args(kCloneNewUser); },
     v1::TRUST_CONTRAINDICATED, "unshare(CLONE_NEWUSER) by pid 100 'agent' failed (-1)"},
    {"Clone3NewUserSucceeded", kUserNs,
     [](v1::RuntimeReport* r) {
       v1::RuntimeEvent* e = AddEvent(r, v1::EVENT_KIND_CLONE3, 4242);
       e->add_args(0x7ffd0000);  // the clone_args pointer
       e->add_args(88);
       e->add_args(kCloneNewUser | kCloneNewNs);
     },
     v1::TRUST_CONTRAINDICATED, "clone3(CLONE_NEWUSER) by pid 100 'agent' succeeded (4242)"},
    {"CloneOtherNamespaceOnly", kUserNs,
     [](v1::RuntimeReport* r) { AddEvent(r, v1::EVENT_KIND_CLONE, 4243)->add_args(kCloneNewNs); },
     v1::TRUST_AFFIRMING, ""},
    {"UserNamespaceByExitedChild", kUserNs,
     [](v1::RuntimeReport* r) {
       v1::RuntimeEvent* e = AddEvent(r, v1::EVENT_KIND_UNSHARE, 0, 4300);
       e->set_ppid(100);
       e->add_args(kCloneNewUser);
     },
     v1::TRUST_CONTRAINDICATED, "unshare(CLONE_NEWUSER) by pid 4300"},
    {"UserNamespacesWithoutProbes", kUserNs, [](v1::RuntimeReport* r) { r->clear_probes(); },
     v1::TRUST_WARNING, "the node ran without probes"},
    {"UserNamespacesWithLostEvents", kUserNs,
     [](v1::RuntimeReport* r) {
       (*r->mutable_probes()->mutable_dropped_events())["ringbuf_full"] = 3;
     },
     v1::TRUST_WARNING, "the probes lost 3 events"},
    // memory
    {"MemoryLockedAndJitLocked", kMemory, Nothing, v1::TRUST_AFFIRMING, ""},
    {"MemoryTooLittleLocked", kMemory, [](v1::RuntimeReport* r) { Proc(r)->set_vm_locked_kib(60); },
     v1::TRUST_CONTRAINDICATED, "VmLck 61440 B below 65536 B"},
    {"MemoryUnlockedWritableExecutable", kMemory,
     [](v1::RuntimeReport* r) {
       v1::MemoryRegion* m = Proc(r)->mutable_memory()->mutable_anonymous_executable(0);
       m->set_permissions("rwxp");
       m->set_writable(true);
       m->set_locked_kib(0);
     },
     v1::TRUST_CONTRAINDICATED, "writable+executable rwxp region 0x7f0000000000-0x7f0000001000"},
    {"MemoryPartlyLockedJit", kMemory,
     [](v1::RuntimeReport* r) {
       v1::MemoryRegion* m = Proc(r)->mutable_memory()->mutable_anonymous_executable(0);
       m->set_permissions("rwxp");
       m->set_writable(true);
       m->set_size_kib(8);
       m->set_locked_kib(4);
     },
     v1::TRUST_CONTRAINDICATED, "(8 KiB, 4 KiB locked)"},
    {"MemoryLockedJitAllowed", kMemory,
     [](v1::RuntimeReport* r) {
       v1::MemoryRegion* m = Proc(r)->mutable_memory()->mutable_anonymous_executable(0);
       m->set_permissions("rwxp");
       m->set_writable(true);
     },
     v1::TRUST_AFFIRMING, ""},
    {"MemoryLockedJitNotAllowed", kMemoryNoJit,
     [](v1::RuntimeReport* r) {
       v1::MemoryRegion* m = Proc(r)->mutable_memory()->mutable_anonymous_executable(0);
       m->set_permissions("rwxp");
       m->set_writable(true);
     },
     v1::TRUST_CONTRAINDICATED, "writable+executable rwxp"},
    {"MemoryWritableAliasCountsAsWritable", kMemoryNoJit,
     [](v1::RuntimeReport* r) {
       v1::MemoryRegion* m = Proc(r)->mutable_memory()->mutable_anonymous_executable(0);
       m->set_writable_alias(true);
       m->set_name("/memfd:jit (deleted)");
     },
     v1::TRUST_CONTRAINDICATED, "r-xp writable-alias region"},
    {"MemoryExecutableFileWithWritableAlias", kMemoryNoJit,
     [](v1::RuntimeReport* r) {
       v1::MappedFile* f = Proc(r)->mutable_memory()->add_executable_files();
       f->set_path("/tmp/lib\x1b[31m.so");
       f->set_writable_alias(true);
     },
     v1::TRUST_CONTRAINDICATED, "executable file '/tmp/lib\\x1b[31m.so' also mapped"},
    // interpreters
    {"InterpretersOwnProgramOnly", kInterpreters, Nothing, v1::TRUST_AFFIRMING, ""},
    {"InterpreterAllowedByGlob", kInterpreters,
     [](v1::RuntimeReport* r) {
       AddEvent(r, v1::EVENT_KIND_EXECVE, 0)->set_path("/usr/bin/python3.11");
     },
     v1::TRUST_AFFIRMING, ""},
    {"InterpreterNotAllowed", kInterpreters,
     [](v1::RuntimeReport* r) {
       v1::RuntimeEvent* e = AddEvent(r, v1::EVENT_KIND_PROCESS_EXEC, 0, 4400);
       e->set_ppid(100);
       e->set_path("/bin/sh");
     },
     v1::TRUST_CONTRAINDICATED, "'/bin/sh' executed by pid 4400"},
    {"InterpreterFailedExecIsNotRun", kInterpreters,
     [](v1::RuntimeReport* r) { AddEvent(r, v1::EVENT_KIND_EXECVE, -2)->set_path("/bin/sh"); },
     v1::TRUST_AFFIRMING, ""},
    {"InterpreterInSnapshot", kInterpreters,
     [](v1::RuntimeReport* r) {
       v1::ProcessSnapshot* child = r->add_processes();
       *child = testing::CompliantProcess(101);
       child->set_ppid(100);
       child->set_exe_path("/usr/bin/node");
       child->clear_matched_by();
       child->add_matched_by("inherited:100");
     },
     v1::TRUST_CONTRAINDICATED, "'/usr/bin/node' runs as pid 101"},
    // egress
    {"EgressAllowed", kEgress, [](v1::RuntimeReport* r) { Connect(r, "10.1.2.3", 443); },
     v1::TRUST_AFFIRMING, ""},
    {"EgressWrongPort", kEgress, [](v1::RuntimeReport* r) { Connect(r, "10.1.2.3", 80); },
     v1::TRUST_CONTRAINDICATED, "'10.1.2.3' port 80 (connect by pid 100)"},
    {"EgressCidrUpperEdge", kEgress,
     [](v1::RuntimeReport* r) { Connect(r, "10.255.255.255", 443); }, v1::TRUST_AFFIRMING, ""},
    {"EgressJustOutsideCidr", kEgress, [](v1::RuntimeReport* r) { Connect(r, "11.0.0.0", 443); },
     v1::TRUST_CONTRAINDICATED, "'11.0.0.0' port 443"},
    {"EgressJustBelowCidr", kEgress, [](v1::RuntimeReport* r) { Connect(r, "9.255.255.255", 443); },
     v1::TRUST_CONTRAINDICATED, "'9.255.255.255' port 443"},
    {"EgressIpv6AnyPort", kEgress, [](v1::RuntimeReport* r) { Connect(r, "2001:db8:ffff::1", 22); },
     v1::TRUST_AFFIRMING, ""},
    {"EgressIpv6OutsidePrefix", kEgress,
     [](v1::RuntimeReport* r) { Connect(r, "2001:db9::1", 22); }, v1::TRUST_CONTRAINDICATED,
     "'2001:db9::1' port 22"},
    {"EgressIpv4MappedAddress", kEgress,
     [](v1::RuntimeReport* r) { Connect(r, "::ffff:10.0.0.1", 443); }, v1::TRUST_AFFIRMING, ""},
    {"EgressInProgressCounts", kEgress,
     [](v1::RuntimeReport* r) { Connect(r, "192.0.2.1", 443, -115); }, v1::TRUST_CONTRAINDICATED,
     "'192.0.2.1' port 443"},
    {"EgressRefusedConnectIsNotEgress", kEgress,
     [](v1::RuntimeReport* r) { Connect(r, "192.0.2.1", 443, -111); }, v1::TRUST_AFFIRMING, ""},
    {"EgressEstablishedSocket", kEgress,
     [](v1::RuntimeReport* r) {
       AddSocket(r, "udp", "established", "10.9.9.9", 40000, "8.8.8.8", 53);
     },
     v1::TRUST_CONTRAINDICATED, "'8.8.8.8' port 53 (socket of pid 100)"},
    {"EgressAcceptedConnectionIsInbound", kEgress,
     [](v1::RuntimeReport* r) {
       AddSocket(r, "tcp", "listen", "0.0.0.0", 8443, "", 0);
       AddSocket(r, "tcp", "established", "10.9.9.9", 8443, "198.51.100.7", 50000);
     },
     v1::TRUST_AFFIRMING, ""},
    {"EgressUnixSocketIgnored", kEgress,
     [](v1::RuntimeReport* r) {
       AddSocket(r, "unix", "connected", "", 0, "/run/dbus/system_bus_socket", 0);
     },
     v1::TRUST_AFFIRMING, ""},
    // listeners
    {"ListenerAllowed", kListeners,
     [](v1::RuntimeReport* r) { AddSocket(r, "tcp", "listen", "127.0.0.1", 8080, "", 0); },
     v1::TRUST_AFFIRMING, ""},
    {"ListenerOnEveryInterface", kListeners,
     [](v1::RuntimeReport* r) { AddSocket(r, "tcp", "listen", "0.0.0.0", 8080, "", 0); },
     v1::TRUST_CONTRAINDICATED, "'0.0.0.0' port 8080 (socket of pid 100)"},
    {"ListenerPortRangeLowEdge", kListeners,
     [](v1::RuntimeReport* r) {
       v1::RuntimeEvent* e = AddEvent(r, v1::EVENT_KIND_BIND, 0);
       e->set_address("0.0.0.0");
       e->set_port(9000);
     },
     v1::TRUST_AFFIRMING, ""},
    {"ListenerPortRangeHighEdge", kListeners,
     [](v1::RuntimeReport* r) { AddSocket(r, "tcp", "listen", "0.0.0.0", 9100, "", 0); },
     v1::TRUST_AFFIRMING, ""},
    {"ListenerPortJustOutsideRange", kListeners,
     [](v1::RuntimeReport* r) {
       v1::RuntimeEvent* e = AddEvent(r, v1::EVENT_KIND_BIND, 0);
       e->set_address("0.0.0.0");
       e->set_port(9101);
     },
     v1::TRUST_CONTRAINDICATED, "'0.0.0.0' port 9101 (bind by pid 100)"},
    {"ListenerIpv6WildcardNotAllowed", kListeners,
     [](v1::RuntimeReport* r) { AddSocket(r, "tcp6", "listen", "::", 8080, "", 0); },
     v1::TRUST_CONTRAINDICATED, "'::' port 8080"},
    // events
    {"NoGradedEvents", kEvents, [](v1::RuntimeReport* r) { AddEvent(r, v1::EVENT_KIND_MLOCK, 0); },
     v1::TRUST_AFFIRMING, ""},
    {"PtraceDeniedIsWarning", kEvents,
     [](v1::RuntimeReport* r) { AddEvent(r, v1::EVENT_KIND_PTRACE, -1)->set_target_pid(200); },
     v1::TRUST_WARNING, "ptrace by pid 100 tid 100 'agent' on pid 200 denied (-1)"},
    {"PtraceSucceededIsContraindicated", kEvents,
     [](v1::RuntimeReport* r) { AddEvent(r, v1::EVENT_KIND_PTRACE, 0)->set_target_pid(200); },
     v1::TRUST_CONTRAINDICATED, "ptrace by pid 100 tid 100 'agent' on pid 200 succeeded (0)"},
    {"ProcessVmReadvSucceeded", kEvents,
     [](v1::RuntimeReport* r) { AddEvent(r, v1::EVENT_KIND_PROCESS_VM_READV, 64); },
     v1::TRUST_CONTRAINDICATED, "process_vm_readv by pid 100"},
    {"ConfiguredGradeIgnoresDenied", kEvents,
     [](v1::RuntimeReport* r) { AddEvent(r, v1::EVENT_KIND_PROCESS_VM_WRITEV, -1); },
     v1::TRUST_AFFIRMING, ""},
    {"ConfiguredGradeWarnsOnSuccess", kEvents,
     [](v1::RuntimeReport* r) { AddEvent(r, v1::EVENT_KIND_PROCESS_VM_WRITEV, 8); },
     v1::TRUST_WARNING, "process_vm_writev by pid 100"},
    {"EventsOfOtherProcessesIgnored", kEvents,
     [](v1::RuntimeReport* r) {
       v1::RuntimeEvent* e = AddEvent(r, v1::EVENT_KIND_PTRACE, 0, 999);
       e->set_ppid(998);
     },
     v1::TRUST_AFFIRMING, ""},
};

class RuleKindTest : public ::testing::TestWithParam<Case> {};

TEST_P(RuleKindTest, GradesTheWorkload) {
  const Case& c = GetParam();
  const Policy policy = PolicyWithRules({c.rule});
  ASSERT_EQ(policy.rules.size(), 1u);
  v1::RuntimeReport report = CompliantReport();
  c.mutate(&report);
  const std::vector<v1::WorkloadVerdict> verdicts = Evaluate({policy}, report);
  ASSERT_EQ(verdicts.size(), 1u);
  const v1::WorkloadVerdict& w = verdicts[0];
  EXPECT_EQ(w.status(), c.status) << w.DebugString();
  ASSERT_GT(w.rules_size(), 0);
  for (const v1::RuleOutcome& o : w.rules()) {
    EXPECT_EQ(o.rule_id(), policy.rules[0].id);
    EXPECT_EQ(o.kind(), RuleKindName(policy.rules[0].kind));
    EXPECT_EQ(o.workload_id(), w.workload_id());
    EXPECT_FALSE(o.expected().empty());
    EXPECT_FALSE(o.controls().empty());
  }
  if (c.status == v1::TRUST_AFFIRMING) {
    for (const v1::RuleOutcome& o : w.rules()) EXPECT_EQ(o.status(), v1::TRUST_AFFIRMING);
    return;
  }
  bool found = false;
  for (const v1::RuleOutcome& o : w.rules()) {
    if (o.status() != c.status) continue;
    const std::string text = o.reason() + " | " + o.observed();
    if (text.find(c.text) == std::string::npos) continue;
    found = true;
    EXPECT_EQ(o.tid(), c.tid) << text;
  }
  EXPECT_TRUE(found) << "no outcome with status " << v1::TrustStatus_Name(c.status)
                     << " mentioning \"" << c.text << "\" in " << w.DebugString();
}

INSTANTIATE_TEST_SUITE_P(AllKinds, RuleKindTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

TEST(RuleEventsTest, EventStormIsCappedWithASummary) {
  const Policy policy = PolicyWithRules({kEvents});
  v1::RuntimeReport report = CompliantReport();
  for (int i = 0; i < 10; ++i) AddEvent(&report, v1::EVENT_KIND_PTRACE, -1);
  AddEvent(&report, v1::EVENT_KIND_PTRACE, 0);
  EvaluateOptions options;
  options.max_event_outcomes = 4;
  const std::vector<v1::WorkloadVerdict> verdicts = Evaluate({policy}, report, options);
  ASSERT_EQ(verdicts.size(), 1u);
  ASSERT_EQ(verdicts[0].rules_size(), 5);
  const v1::RuleOutcome& summary = verdicts[0].rules(4);
  EXPECT_EQ(summary.reason(), "7 more findings of this rule");
  // The one successful attempt is among those summed up: the summary carries its grade.
  EXPECT_EQ(summary.status(), v1::TRUST_CONTRAINDICATED);
  EXPECT_EQ(verdicts[0].status(), v1::TRUST_CONTRAINDICATED);
}

}  // namespace
}  // namespace vigil::policy
