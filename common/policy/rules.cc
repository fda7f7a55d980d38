#include "common/policy/rules.h"

#include <fnmatch.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/policy/scope.h"

namespace vigil::policy {
namespace {

constexpr uint64_t kCloneNewUser = 0x10000000;  // CLONE_NEWUSER
constexpr int64_t kEinprogress = 115;

// Attacker-controlled text (paths, comm) as it may appear in a reason.
std::string Quoted(absl::string_view s) { return absl::StrCat("'", absl::CHexEscape(s), "'"); }

std::string EventKindName(v1::EventKind kind) {
  std::string name = v1::EventKind_Name(kind);
  absl::string_view rest = name;
  if (absl::StartsWith(rest, "EVENT_KIND_")) rest.remove_prefix(11);
  return absl::AsciiStrToLower(rest);
}

// Builds outcomes of one rule.
class Outcomes {
 public:
  Outcomes(const Rule& rule, std::vector<v1::RuleOutcome>* out) : rule_(rule), out_(out) {}

  v1::RuleOutcome& Add(v1::TrustStatus status, int pid, int tid, std::string reason,
                       std::string observed, std::string expected) {
    v1::RuleOutcome& o = out_->emplace_back();
    o.set_rule_id(rule_.id);
    o.set_kind(RuleKindName(rule_.kind));
    o.set_pid(pid);
    o.set_tid(tid);
    o.set_status(status);
    o.set_reason(std::move(reason));
    o.set_observed(std::move(observed));
    o.set_expected(std::move(expected));
    o.mutable_controls()->Reserve(static_cast<int>(rule_.controls.size()));
    for (const std::string& c : rule_.controls) o.add_controls(c);
    return o;
  }
  void Pass(int pid, std::string reason, std::string observed, std::string expected) {
    Add(v1::TRUST_AFFIRMING, pid, 0, std::move(reason), std::move(observed), std::move(expected));
  }
  void Fail(int pid, int tid, std::string reason, std::string observed, std::string expected) {
    Add(GradeStatus(rule_.grade), pid, tid, std::move(reason), std::move(observed),
        std::move(expected));
  }
  size_t size() const { return out_->size(); }

 private:
  const Rule& rule_;
  std::vector<v1::RuleOutcome>* out_;
};

// For rules that rest on events: the absence of an event proves nothing when the probes did
// not run or lost events. Says so with a WARNING outcome; true when coverage is complete.
bool EventCoverage(const WorkloadEvidence& ev, const std::string& expected, Outcomes* out) {
  if (!ev.probes_ran) {
    out->Add(v1::TRUST_WARNING, 0, 0, "the node ran without probes: events were not observed",
             "no probe status in the report", expected);
    return false;
  }
  if (ev.events_lost > 0) {
    out->Add(
        v1::TRUST_WARNING, 0, 0,
        absl::StrCat("the probes lost ", ev.events_lost, " events: their absence is not evidence"),
        absl::StrCat(ev.events_lost, " events lost"), expected);
    return false;
  }
  return true;
}

// Outcomes for event findings, at most `max` of them and one summary of the rest.
struct Finding {
  v1::TrustStatus status;
  int pid;
  std::string reason;
  std::string observed;
};
void AddFindings(const std::vector<Finding>& findings, size_t max, const std::string& expected,
                 Outcomes* out) {
  v1::TrustStatus rest = v1::TRUST_NONE;
  for (size_t i = 0; i < findings.size(); ++i) {
    const Finding& f = findings[i];
    if (i < max) {
      out->Add(f.status, f.pid, 0, f.reason, f.observed, expected);
    } else {
      rest = WorseStatus(rest, f.status);
    }
  }
  if (findings.size() > max) {
    out->Add(rest, 0, 0, absl::StrCat(findings.size() - max, " more findings of this rule"),
             absl::StrCat(findings.size(), " findings in all"), expected);
  }
}

bool Allows(v1::SeccompAction action) {
  switch (action) {
    case v1::SECCOMP_ACTION_ERRNO:
    case v1::SECCOMP_ACTION_KILL_THREAD:
    case v1::SECCOMP_ACTION_KILL_PROCESS:
    case v1::SECCOMP_ACTION_TRAP:
      return false;
    default:
      // ALLOW and LOG run the syscall; TRACE and USER_NOTIF leave it to another process.
      return true;
  }
}

std::string ActionName(const v1::SyscallVerdict& v) {
  std::string name = v1::SeccompAction_Name(v.action());
  absl::string_view rest = name;
  if (absl::StartsWith(rest, "SECCOMP_ACTION_")) rest.remove_prefix(15);
  if (v.action() == v1::SECCOMP_ACTION_ERRNO) return absl::StrCat(rest, "(", v.data(), ")");
  return std::string(rest);
}

// What is wrong with one seccomp state (empty when it complies).
std::vector<std::string> SeccompProblems(const v1::SeccompState& sec,
                                         const std::vector<std::string>& deny) {
  std::vector<std::string> problems;
  if (sec.mode() != 2) {
    problems.push_back(absl::StrCat("seccomp mode ", sec.mode(), ", not filter (2)"));
    return problems;
  }
  if (!sec.filters_inspected()) {
    problems.push_back(
        absl::StrCat("filters not inspected: ", sec.inspection_error().empty()
                                                    ? "no reason given"
                                                    : absl::CHexEscape(sec.inspection_error())));
    return problems;
  }
  for (const std::string& name : deny) {
    bool native = false;
    for (const v1::SyscallVerdict& v : sec.verdicts()) {
      if (v.syscall() != name) continue;
      const std::string where = absl::StrCat(name, " on ", absl::CHexEscape(v.arch()));
      if (v.arch() == "x86_64") native = true;
      if (v.bypass()) {
        problems.push_back(
            absl::StrCat(where, ": ", ActionName(v), ", a bypass of the native verdict"));
      } else if (Allows(v.action())) {
        if (v.arch() == "x86_64") {
          problems.push_back(absl::StrCat(where, ": ", ActionName(v)));
        } else if (!v.has_abi_available()) {
          problems.push_back(absl::StrCat(where, ": ", ActionName(v),
                                          " and the kernel may run this ABI (unknown)"));
        } else if (v.abi_available()) {
          problems.push_back(absl::StrCat(where, ": ", ActionName(v), ", ABI left open"));
        }
      } else if (v.argument_dependent()) {
        problems.push_back(absl::StrCat(where, ": ", ActionName(v), " only for some arguments"));
      }
    }
    if (!native) problems.push_back(absl::StrCat(name, ": not evaluated by the node"));
  }
  return problems;
}

void EvaluateSeccomp(const Rule& rule, const WorkloadEvidence& ev, Outcomes* out) {
  const std::string expected =
      rule.seccomp.deny.empty()
          ? "seccomp filter mode"
          : absl::StrCat("seccomp filter mode; ", absl::StrJoin(rule.seccomp.deny, ", "),
                         " denied on every ABI the kernel runs");
  for (const v1::ProcessSnapshot* p : ev.processes) {
    if (!p->has_seccomp()) {
      out->Fail(p->pid(), 0, "seccomp state not observed", "unknown", expected);
      continue;
    }
    std::vector<std::string> problems = SeccompProblems(p->seccomp(), rule.seccomp.deny);
    if (problems.empty()) {
      out->Pass(p->pid(), "seccomp filter denies the named syscalls",
                absl::StrCat("filter mode, ", p->seccomp().filter_count(), " filter(s); ",
                             p->seccomp().verdicts_size(), " verdicts deny"),
                expected);
    } else {
      out->Fail(p->pid(), 0, absl::StrCat("seccomp does not deny as required: ", problems[0]),
                absl::StrJoin(problems, "; "), expected);
    }
    for (const v1::ThreadState& t : p->divergent_threads()) {
      if (!t.has_seccomp()) continue;
      const v1::SeccompState& ts = t.seccomp();
      const bool own_filters = ts.filters_inspected() || ts.verdicts_size() > 0;
      if (!own_filters && ts.mode() == p->seccomp().mode() &&
          ts.filter_count() == p->seccomp().filter_count()) {
        continue;  // the same filters as the process
      }
      std::vector<std::string> tp = SeccompProblems(ts, rule.seccomp.deny);
      if (!tp.empty()) {
        out->Fail(p->pid(), t.tid(),
                  absl::StrCat("thread ", t.tid(), " ", Quoted(t.comm()),
                               " diverges from its process: ", tp[0]),
                  absl::StrJoin(tp, "; "), expected);
      }
    }
  }
}

std::vector<std::string> CapabilityProblems(const v1::Capabilities& caps,
                                            const CapabilitiesRule& rule) {
  std::vector<std::string> problems;
  for (size_t i = 0; i < rule.absent.size(); ++i) {
    const uint64_t bit = uint64_t{1} << rule.absent[i];
    std::vector<std::string> sets;
    if (caps.bounding() & bit) sets.push_back("bounding");
    if (caps.permitted() & bit) sets.push_back("permitted");
    if (caps.effective() & bit) sets.push_back("effective");
    if (caps.ambient() & bit) sets.push_back("ambient");
    if (!sets.empty()) {
      problems.push_back(absl::StrCat(rule.absent_names[i], " in ", absl::StrJoin(sets, ", ")));
    }
  }
  if (rule.ambient_empty && caps.ambient() != 0) {
    problems.push_back(absl::StrFormat("ambient set 0x%x not empty", caps.ambient()));
  }
  return problems;
}

void EvaluateCapabilities(const Rule& rule, const WorkloadEvidence& ev, Outcomes* out) {
  std::string expected;
  if (!rule.capabilities.absent.empty()) {
    expected = absl::StrCat(absl::StrJoin(rule.capabilities.absent_names, ", "),
                            " absent from the bounding, permitted, effective and ambient sets");
  }
  if (rule.capabilities.ambient_empty) {
    absl::StrAppend(&expected, expected.empty() ? "" : "; ", "empty ambient set");
  }
  for (const v1::ProcessSnapshot* p : ev.processes) {
    if (!p->has_capabilities()) {
      out->Fail(p->pid(), 0, "capabilities not observed", "unknown", expected);
      continue;
    }
    const v1::Capabilities& c = p->capabilities();
    std::vector<std::string> problems = CapabilityProblems(c, rule.capabilities);
    const std::string sets = absl::StrFormat("bnd=0x%x prm=0x%x eff=0x%x amb=0x%x", c.bounding(),
                                             c.permitted(), c.effective(), c.ambient());
    if (problems.empty()) {
      out->Pass(p->pid(), "the capabilities are dropped", sets, expected);
    } else {
      out->Fail(p->pid(), 0, absl::StrCat("process holds ", problems[0]),
                absl::StrCat(absl::StrJoin(problems, "; "), " (", sets, ")"), expected);
    }
    for (const v1::ThreadState& t : p->divergent_threads()) {
      if (!t.has_capabilities()) continue;
      std::vector<std::string> tp = CapabilityProblems(t.capabilities(), rule.capabilities);
      if (!tp.empty()) {
        out->Fail(p->pid(), t.tid(),
                  absl::StrCat("thread ", t.tid(), " ", Quoted(t.comm()), " holds ", tp[0]),
                  absl::StrJoin(tp, "; "), expected);
      }
    }
  }
}

void EvaluateNoNewPrivs(const WorkloadEvidence& ev, Outcomes* out) {
  const std::string expected = "no_new_privs set on every thread";
  for (const v1::ProcessSnapshot* p : ev.processes) {
    if (!p->has_seccomp()) {
      out->Fail(p->pid(), 0, "no_new_privs not observed", "unknown", expected);
      continue;
    }
    if (p->seccomp().no_new_privs()) {
      out->Pass(p->pid(), "no_new_privs is set", "NoNewPrivs: 1", expected);
    } else {
      out->Fail(p->pid(), 0, "no_new_privs is not set: exec can gain privileges", "NoNewPrivs: 0",
                expected);
    }
    for (const v1::ThreadState& t : p->divergent_threads()) {
      if (t.has_seccomp() && !t.seccomp().no_new_privs()) {
        out->Fail(
            p->pid(), t.tid(),
            absl::StrCat("thread ", t.tid(), " ", Quoted(t.comm()), " does not have no_new_privs"),
            "NoNewPrivs: 0", expected);
      }
    }
  }
}

void EvaluateReadOnlyRoot(const WorkloadEvidence& ev, Outcomes* out) {
  const std::string expected = "root directory on a read-only mount";
  for (const v1::ProcessSnapshot* p : ev.processes) {
    if (!p->has_root_read_only()) {
      out->Fail(p->pid(), 0, "whether the root is read-only is unknown", "unknown", expected);
    } else if (p->root_read_only()) {
      out->Pass(p->pid(), "the root filesystem is read-only", "read-only", expected);
    } else {
      out->Fail(p->pid(), 0, "the root filesystem is writable", "read-write", expected);
    }
  }
}

void EvaluateMemory(const Rule& rule, const WorkloadEvidence& ev, Outcomes* out) {
  const MemoryRule& m = rule.memory;
  std::vector<std::string> parts;
  if (m.min_locked_bytes > 0) parts.push_back(absl::StrCat("VmLck >= ", m.min_locked_bytes, " B"));
  if (m.forbid_writable_executable) {
    parts.push_back(m.allow_locked_jit ? "no writable+executable memory unless entirely locked"
                                       : "no writable+executable memory");
  }
  const std::string expected = absl::StrJoin(parts, "; ");
  for (const v1::ProcessSnapshot* p : ev.processes) {
    std::vector<std::string> problems;
    std::vector<std::string> seen;
    const uint64_t locked = p->vm_locked_kib() * 1024;
    seen.push_back(absl::StrCat("VmLck ", locked, " B"));
    if (m.min_locked_bytes > 0 && locked < m.min_locked_bytes) {
      problems.push_back(absl::StrCat("VmLck ", locked, " B below ", m.min_locked_bytes, " B"));
    }
    if (m.forbid_writable_executable) {
      if (!p->has_memory()) problems.push_back("memory map not observed");
      int jit = 0;
      for (const v1::MemoryRegion& r : p->memory().anonymous_executable()) {
        const bool wx =
            r.writable() || r.writable_alias() || r.permissions().find('w') != std::string::npos;
        if (!wx) continue;
        const bool locked_whole = r.size_kib() > 0 && r.locked_kib() >= r.size_kib();
        const std::string region = absl::StrFormat(
            "%s%s region 0x%x-0x%x %s (%u KiB, %u KiB locked)", absl::CHexEscape(r.permissions()),
            r.writable_alias() ? " writable-alias" : "", r.start(), r.end(), Quoted(r.name()),
            r.size_kib(), r.locked_kib());
        if (m.allow_locked_jit && locked_whole) {
          ++jit;
        } else {
          problems.push_back(absl::StrCat("writable+executable ", region));
        }
      }
      for (const v1::MappedFile& f : p->memory().executable_files()) {
        if (f.writable_alias()) {
          problems.push_back(
              absl::StrCat("executable file ", Quoted(f.path()), " also mapped or open writable"));
        }
      }
      if (jit > 0) seen.push_back(absl::StrCat(jit, " locked JIT region(s)"));
    }
    if (problems.empty()) {
      out->Pass(p->pid(), "memory complies", absl::StrJoin(seen, "; "), expected);
    } else {
      out->Fail(p->pid(), 0, problems[0], absl::StrJoin(problems, "; "), expected);
    }
  }
}

void EvaluateUserNamespaces(const Rule& rule, const WorkloadEvidence& ev,
                            const EvaluateOptions& options, Outcomes* out) {
  const std::string expected = "no clone, clone3 or unshare with CLONE_NEWUSER";
  const size_t before = out->size();
  EventCoverage(ev, expected, out);
  std::vector<Finding> findings;
  for (const v1::RuntimeEvent* e : ev.events) {
    uint64_t flags = 0;
    if (e->kind() == v1::EVENT_KIND_CLONE || e->kind() == v1::EVENT_KIND_UNSHARE) {
      flags = e->args_size() > 0 ? e->args(0) : 0;
    } else if (e->kind() == v1::EVENT_KIND_CLONE3) {
      flags = e->args_size() > 2 ? e->args(2) : 0;  // the probe puts clone_args.flags there
    } else {
      continue;
    }
    if ((flags & kCloneNewUser) == 0) continue;
    const std::string what = absl::StrCat(
        EventKindName(e->kind()), "(CLONE_NEWUSER) by pid ", e->pid(), " ", Quoted(e->comm()),
        e->return_value() < 0 ? " failed (" : " succeeded (", e->return_value(), ")");
    findings.push_back({GradeStatus(rule.grade), e->pid(),
                        absl::StrCat("the workload tried to create a user namespace: ", what),
                        what});
  }
  AddFindings(findings, options.max_event_outcomes, expected, out);
  if (out->size() == before) {
    out->Pass(0, "no user namespace creation observed",
              absl::StrCat(ev.events.size(), " events, none with CLONE_NEWUSER"), expected);
  }
}

bool AnyGlob(const std::vector<std::string>& globs, const std::string& path) {
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) {
    return fnmatch(g.c_str(), path.c_str(), 0) == 0;
  });
}

void EvaluateInterpreters(const Rule& rule, const WorkloadEvidence& ev,
                          const EvaluateOptions& options, Outcomes* out) {
  std::vector<std::string> allowed = rule.interpreters.allowed;
  for (const Selector& s : ev.workload->selectors) {
    if (!s.exe_glob.empty()) allowed.push_back(s.exe_glob);
  }
  const std::string expected = absl::StrCat("only the workload's own programs and: ",
                                            rule.interpreters.allowed.empty()
                                                ? "nothing else"
                                                : absl::StrJoin(rule.interpreters.allowed, ", "));
  const size_t before = out->size();
  EventCoverage(ev, expected, out);
  std::set<std::string> reported;
  std::set<std::string> ran;
  std::vector<Finding> findings;
  auto check = [&](const std::string& path, int pid, const char* how) {
    if (path.empty()) return;
    ran.insert(path);
    if (AnyGlob(allowed, path) || !reported.insert(path).second) return;
    const std::string what = absl::StrCat(Quoted(path), " ", how, " pid ", pid);
    findings.push_back(
        {GradeStatus(rule.grade), pid,
         absl::StrCat("the workload runs a program the policy does not allow: ", what), what});
  };
  for (const v1::ProcessSnapshot* p : ev.processes) check(p->exe_path(), p->pid(), "runs as");
  for (const v1::RuntimeEvent* e : ev.events) {
    const bool exec = e->kind() == v1::EVENT_KIND_EXECVE || e->kind() == v1::EVENT_KIND_EXECVEAT ||
                      e->kind() == v1::EVENT_KIND_PROCESS_EXEC;
    if (exec && e->return_value() == 0) check(e->path(), e->pid(), "executed by");
  }
  AddFindings(findings, options.max_event_outcomes, expected, out);
  if (out->size() == before) {
    std::vector<std::string> shown;
    for (const std::string& r : ran) {
      if (shown.size() == 8) break;
      shown.push_back(Quoted(r));
    }
    out->Pass(0, "every program the workload runs is allowed",
              absl::StrCat(ran.size(), " program(s): ", absl::StrJoin(shown, ", ")), expected);
  }
}

bool EndpointAllowed(const NetworkRule& rule, const IpAddress& address, uint32_t port) {
  for (const Endpoint& e : rule.allow) {
    if (!e.cidr.Contains(address)) continue;
    if (e.ports.empty()) return true;
    for (const auto& [lo, hi] : e.ports) {
      if (port >= lo && port <= hi) return true;
    }
  }
  return false;
}

bool InetProtocol(const std::string& protocol) {
  return protocol == "tcp" || protocol == "tcp6" || protocol == "udp" || protocol == "udp6" ||
         protocol == "udplite" || protocol == "udplite6";
}

void EvaluateNetwork(const Rule& rule, const WorkloadEvidence& ev, const EvaluateOptions& options,
                     Outcomes* out) {
  const bool egress = rule.kind == RuleKind::kEgress;
  std::vector<std::string> allowed;
  for (const Endpoint& e : rule.network.allow) {
    std::vector<std::string> ports;
    for (const auto& [lo, hi] : e.ports) {
      ports.push_back(lo == hi ? absl::StrCat(lo) : absl::StrCat(lo, "-", hi));
    }
    allowed.push_back(
        absl::StrCat(e.text, ports.empty() ? " any port" : " port ", absl::StrJoin(ports, ",")));
  }
  const std::string expected =
      absl::StrCat(egress ? "connections only to: " : "listening only on: ",
                   allowed.empty() ? "nothing" : absl::StrJoin(allowed, "; "));
  const size_t before = out->size();
  EventCoverage(ev, expected, out);
  std::set<std::pair<std::string, uint32_t>> reported;
  size_t seen = 0;
  std::vector<Finding> findings;
  auto check = [&](const std::string& address, uint32_t port, int pid, const char* how) {
    std::optional<IpAddress> ip = ParseIpAddress(address);
    if (!ip) return;  // unix sockets and other families are not network endpoints
    ++seen;
    if (EndpointAllowed(rule.network, *ip, port) || !reported.insert({address, port}).second) {
      return;
    }
    const std::string what =
        absl::StrCat(Quoted(address), " port ", port, " (", how, " pid ", pid, ")");
    findings.push_back({GradeStatus(rule.grade), pid,
                        absl::StrCat(egress ? "the workload connects to an endpoint the policy "
                                              "does not allow: "
                                            : "the workload listens where the policy does not "
                                              "allow: ",
                                     what),
                        what});
  };
  for (const v1::ProcessSnapshot* p : ev.processes) {
    std::set<uint32_t> listening;
    for (const v1::Socket& s : p->sockets()) {
      if (InetProtocol(s.protocol()) && s.state() == "listen") listening.insert(s.local_port());
    }
    for (const v1::Socket& s : p->sockets()) {
      if (!InetProtocol(s.protocol())) continue;
      if (egress) {
        // An accepted connection (its local port is one the process listens on) is inbound.
        if (s.state() == "established" && listening.count(s.local_port()) == 0) {
          check(s.remote_address(), s.remote_port(), p->pid(), "socket of");
        }
      } else if (s.state() == "listen") {
        check(s.local_address(), s.local_port(), p->pid(), "socket of");
      }
    }
  }
  for (const v1::RuntimeEvent* e : ev.events) {
    if (egress && e->kind() == v1::EVENT_KIND_CONNECT &&
        (e->return_value() == 0 || e->return_value() == -kEinprogress)) {
      check(e->address(), e->port(), e->pid(), "connect by");
    } else if (!egress && e->kind() == v1::EVENT_KIND_BIND && e->return_value() == 0 &&
               e->port() != 0) {
      check(e->address(), e->port(), e->pid(), "bind by");
    }
  }
  AddFindings(findings, options.max_event_outcomes, expected, out);
  if (out->size() == before) {
    out->Pass(0,
              egress ? "every connection goes to an allowed endpoint"
                     : "every listener is on an allowed address",
              absl::StrCat(seen, egress ? " connection(s)" : " listener(s)", ", all allowed"),
              expected);
  }
}

void EvaluateEvents(const Rule& rule, const WorkloadEvidence& ev, const EvaluateOptions& options,
                    Outcomes* out) {
  std::vector<std::string> graded;
  auto grade_name = [](Grade g) {
    return g == Grade::kIgnore ? "ignored" : g == Grade::kWarning ? "warning" : "contraindicated";
  };
  for (const EventGrade& g : rule.events.grades) {
    graded.push_back(absl::StrCat(EventKindName(g.kind), ": denied ", grade_name(g.denied),
                                  ", succeeded ", grade_name(g.succeeded)));
  }
  const std::string expected = absl::StrJoin(graded, "; ");
  const size_t before = out->size();
  EventCoverage(ev, expected, out);
  std::vector<Finding> findings;
  for (const v1::RuntimeEvent* e : ev.events) {
    auto g = std::find_if(rule.events.grades.begin(), rule.events.grades.end(),
                          [&](const EventGrade& eg) { return eg.kind == e->kind(); });
    if (g == rule.events.grades.end()) continue;
    const bool denied = e->return_value() < 0;
    const Grade grade = denied ? g->denied : g->succeeded;
    if (grade == Grade::kIgnore) continue;
    std::string what = absl::StrCat(EventKindName(e->kind()), " by pid ", e->pid(), " tid ",
                                    e->tid(), " ", Quoted(e->comm()));
    if (e->target_pid() != 0) absl::StrAppend(&what, " on pid ", e->target_pid());
    absl::StrAppend(&what, denied ? " denied (" : " succeeded (", e->return_value(), ")");
    findings.push_back(
        {GradeStatus(grade), e->pid(),
         absl::StrCat(denied ? "an attempt was denied: " : "an attempt succeeded: ", what), what});
  }
  AddFindings(findings, options.max_event_outcomes, expected, out);
  if (out->size() == before) {
    out->Pass(0, "no graded event observed",
              absl::StrCat(ev.events.size(), " events, none of the graded kinds"), expected);
  }
}

}  // namespace

void EvaluateRule(const Rule& rule, const WorkloadEvidence& evidence,
                  const EvaluateOptions& options, std::vector<v1::RuleOutcome>* out) {
  Outcomes outcomes(rule, out);
  switch (rule.kind) {
    case RuleKind::kSeccomp:
      EvaluateSeccomp(rule, evidence, &outcomes);
      break;
    case RuleKind::kCapabilities:
      EvaluateCapabilities(rule, evidence, &outcomes);
      break;
    case RuleKind::kNoNewPrivs:
      EvaluateNoNewPrivs(evidence, &outcomes);
      break;
    case RuleKind::kReadOnlyRoot:
      EvaluateReadOnlyRoot(evidence, &outcomes);
      break;
    case RuleKind::kUserNamespaces:
      EvaluateUserNamespaces(rule, evidence, options, &outcomes);
      break;
    case RuleKind::kMemory:
      EvaluateMemory(rule, evidence, &outcomes);
      break;
    case RuleKind::kInterpreters:
      EvaluateInterpreters(rule, evidence, options, &outcomes);
      break;
    case RuleKind::kEgress:
    case RuleKind::kListeners:
      EvaluateNetwork(rule, evidence, options, &outcomes);
      break;
    case RuleKind::kEvents:
      EvaluateEvents(rule, evidence, options, &outcomes);
      break;
    case RuleKind::kScope:
      EvaluateScopeRule(rule, evidence, options.max_event_outcomes, out);
      break;
  }
}

}  // namespace vigil::policy
