#include "cli/audit_compare.h"

#include <algorithm>
#include <iostream>
#include <iterator>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/audit_output.h"
#include "cli/fleet_client.h"
#include "cli/output_file.h"
#include "cli/table.h"
#include "common/digest.h"
#include "common/escape.h"
#include "common/policy/parser.h"
#include "verifier/results/oscal_export.h"

namespace vigil::cli {
namespace {

// The syscalls a seccomp profile must refuse for a container to be isolated from its
// neighbours' memory (DESIGN.md section 1).
constexpr const char* kProcessAccessSyscalls[] = {"ptrace", "process_vm_readv",
                                                  "process_vm_writev"};
// Capabilities named when a bounding set holds more than the spec allows.
constexpr const char* kNotableCapabilities[] = {
    "CAP_SYS_PTRACE", "CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH", "CAP_SYS_MODULE",
    "CAP_NET_ADMIN",  "CAP_NET_RAW",   "CAP_DAC_OVERRIDE",    "CAP_SETUID",
    "CAP_SETGID",     "CAP_CHOWN",     "CAP_FOWNER",          "CAP_KILL"};
// A privileged container's bounding set holds every capability the kernel knows; every
// kernel Vigil supports knows CAP_CHOWN (0) to CAP_AUDIT_READ (37). The default set of the
// container runtimes holds 14 of them.
constexpr int kLastUniversalCapability = 37;

// The node's hostname is the node's to choose: escaped.
std::string Pid(const ObservedProcess& p) {
  return absl::StrCat("pid ", p.snapshot.pid(), " on ",
                      p.hostname.empty() ? p.node_id : EscapeUntrusted(p.hostname, 64));
}

// One process's result for a check.
struct ProcessResult {
  Agreement agreement = Agreement::kAgree;
  std::string observed;
  std::string message;
};

bool LetsThrough(v1::SeccompAction a) {
  return a == v1::SECCOMP_ACTION_ALLOW || a == v1::SECCOMP_ACTION_LOG ||
         a == v1::SECCOMP_ACTION_TRACE || a == v1::SECCOMP_ACTION_USER_NOTIF ||
         a == v1::SECCOMP_ACTION_UNSPECIFIED;
}

ProcessResult SeccompOf(const ObservedProcess& p) {
  const v1::SeccompState& s = p.snapshot.seccomp();
  if (s.mode() != 2) {
    return {Agreement::kDisagree, absl::StrCat("mode ", s.mode()),
            absl::StrCat(Pid(p), " runs without a seccomp filter (mode ", s.mode(), ")")};
  }
  if (!s.filters_inspected()) {
    return {Agreement::kUnknown, "filters not inspected",
            absl::StrCat(Pid(p), ": the node did not inspect its filters (",
                         EscapeUntrusted(s.inspection_error(), 200), ")")};
  }
  std::vector<std::string> allowed, missing;
  for (const char* name : kProcessAccessSyscalls) {
    auto v = std::find_if(s.verdicts().begin(), s.verdicts().end(), [&](const auto& v) {
      return v.syscall() == name && v.arch() == "x86_64";
    });
    if (v == s.verdicts().end()) {
      missing.push_back(name);
    } else if (LetsThrough(v->action())) {
      allowed.push_back(name);
    }
  }
  if (!allowed.empty()) {
    return {Agreement::kDisagree, absl::StrCat(absl::StrJoin(allowed, ", "), " allowed"),
            absl::StrCat(Pid(p), "'s filter allows ", absl::StrJoin(allowed, ", "))};
  }
  if (missing.size() == std::size(kProcessAccessSyscalls)) {
    return {Agreement::kUnknown, "not evaluated",
            absl::StrCat(Pid(p),
                         ": the node evaluated none of ptrace, process_vm_readv, "
                         "process_vm_writev (no policy seccomp rule names them)")};
  }
  return {Agreement::kAgree, "filter denies process access", ""};
}

std::string CapabilityText(uint64_t mask) {
  std::vector<std::string> named;
  int count = 0;
  for (int bit = 0; bit < 64; ++bit) count += (mask >> bit) & 1;
  for (const char* name : kNotableCapabilities) {
    const int n = policy::CapabilityNumber(name);
    if (n >= 0 && ((mask >> n) & 1)) named.push_back(name);
  }
  std::string out = absl::StrFormat("%d capabilities (0x%016x)", count, mask);
  if (!named.empty()) absl::StrAppend(&out, ", among them ", absl::StrJoin(named, ", "));
  return out;
}

ProcessResult CapabilitiesOf(const DeclaredContainer& d, const ObservedProcess& p) {
  uint64_t allowed = 0;
  for (const auto& [name, line] : d.added_capabilities) {
    if (name == "ALL") allowed = ~uint64_t{0};
    const int n = policy::CapabilityNumber(name);
    if (n >= 0) allowed |= uint64_t{1} << n;
  }
  const uint64_t extra = p.snapshot.capabilities().bounding() & ~allowed;
  if (extra == 0) return {Agreement::kAgree, "bounding set within the added capabilities", ""};
  return {Agreement::kDisagree,
          absl::StrFormat("bounding 0x%016x", p.snapshot.capabilities().bounding()),
          absl::StrCat(Pid(p), "'s bounding set still holds ", CapabilityText(extra),
                       " the spec does not add")};
}

bool LooksPrivileged(const v1::ProcessSnapshot& s) {
  const uint64_t all = (uint64_t{1} << (kLastUniversalCapability + 1)) - 1;
  return (s.capabilities().bounding() & all) == all;
}

ProcessResult HostNamespacesOf(const DeclaredContainer& d, const ObservedProcess& p) {
  if (!p.snapshot.has_node_namespaces()) {
    return {Agreement::kUnknown, "not reported",
            absl::StrCat(Pid(p),
                         ": the node did not report which namespaces it shares with "
                         "the node")};
  }
  const auto& shared = p.snapshot.node_namespaces().shared();
  std::vector<std::string> differ;
  std::vector<std::string> observed;
  for (const auto& [ns, declared] :
       std::vector<std::pair<std::string, bool>>{{"pid", d.host_pid.value == true},
                                                 {"ipc", d.host_ipc.value == true},
                                                 {"net", d.host_network.value == true}}) {
    const bool is_shared = std::find(shared.begin(), shared.end(), ns) != shared.end();
    if (is_shared) observed.push_back(ns);
    if (is_shared != declared) {
      differ.push_back(absl::StrCat(ns, is_shared ? " shared with the node" : " not shared"));
    }
  }
  const std::string text =
      observed.empty() ? "none shared" : absl::StrCat("shares ", absl::StrJoin(observed, ", "));
  if (differ.empty()) return {Agreement::kAgree, text, ""};
  return {Agreement::kDisagree, text, absl::StrCat(Pid(p), ": ", absl::StrJoin(differ, "; "))};
}

// Folds the per-process results of one check: a disagreeing process decides, then an
// unknown one.
ComparisonCheck Fold(const std::string& check, const std::string& kind, const std::string& declared,
                     const std::vector<ProcessResult>& results) {
  ComparisonCheck out;
  out.check = check;
  out.kind = kind;
  out.declared = declared;
  out.agreement = Agreement::kAgree;
  for (Agreement wanted : {Agreement::kDisagree, Agreement::kUnknown}) {
    for (const ProcessResult& r : results) {
      if (r.agreement != wanted) continue;
      out.agreement = wanted;
      out.observed = r.observed;
      out.message = r.message;
      return out;
    }
  }
  if (!results.empty()) out.observed = results.front().observed;
  return out;
}

ComparisonCheck NotDeclared(const std::string& check, const std::string& kind,
                            const std::string& declared) {
  ComparisonCheck out;
  out.check = check;
  out.kind = kind;
  out.declared = declared;
  out.agreement = Agreement::kNotDeclared;
  out.message = "the spec does not declare it";
  return out;
}

template <typename Fn>
std::vector<ProcessResult> Each(const Pairing& pairing, Fn fn) {
  std::vector<ProcessResult> out;
  for (const ObservedProcess* p : pairing.processes) out.push_back(fn(*p));
  return out;
}

std::vector<ComparisonCheck> CompareOne(const Pairing& pairing) {
  const DeclaredContainer& d = *pairing.declared;
  const PolicyExpectations defaults;
  std::vector<ComparisonCheck> out;

  if (d.drops_all.value == true) {
    std::vector<std::string> added;
    for (const auto& [name, line] : d.added_capabilities) added.push_back(name);
    out.push_back(
        Fold("capabilities", "capabilities",
             added.empty() ? "drop ALL" : absl::StrCat("drop ALL, add ", absl::StrJoin(added, ",")),
             Each(pairing, [&](const ObservedProcess& p) { return CapabilitiesOf(d, p); })));
  } else {
    out.push_back(NotDeclared("capabilities", "capabilities", "no drop ALL"));
  }
  out.back().controls = CheckControls("capabilities-drop-all", defaults);

  const std::string seccomp = d.seccomp_type.value.value_or("");
  if (seccomp == "RuntimeDefault" || seccomp == "Localhost") {
    out.push_back(Fold("seccomp", "seccomp", seccomp, Each(pairing, SeccompOf)));
  } else {
    out.push_back(NotDeclared("seccomp", "seccomp", seccomp.empty() ? "no profile" : seccomp));
  }
  out.back().controls = CheckControls("seccomp", defaults);

  if (d.read_only_root_filesystem.value == true) {
    out.push_back(Fold("read-only-root", "read_only_root", "readOnlyRootFilesystem: true",
                       Each(pairing, [](const ObservedProcess& p) -> ProcessResult {
                         if (!p.snapshot.has_root_read_only()) {
                           return {Agreement::kUnknown, "unknown",
                                   absl::StrCat(Pid(p),
                                                ": the node could not tell whether its "
                                                "root is read-only")};
                         }
                         if (p.snapshot.root_read_only())
                           return {Agreement::kAgree, "read-only", ""};
                         return {Agreement::kDisagree, "writable",
                                 absl::StrCat(Pid(p), "'s root filesystem is writable")};
                       })));
  } else {
    out.push_back(NotDeclared("read-only-root", "read_only_root", "not read-only"));
  }
  out.back().controls = CheckControls("read-only-root-filesystem", defaults);

  if (d.allow_privilege_escalation.value == false) {
    out.push_back(Fold("no-new-privs", "no_new_privs", "allowPrivilegeEscalation: false",
                       Each(pairing, [](const ObservedProcess& p) -> ProcessResult {
                         if (p.snapshot.seccomp().no_new_privs())
                           return {Agreement::kAgree, "set", ""};
                         return {Agreement::kDisagree, "not set",
                                 absl::StrCat(Pid(p), " runs without no_new_privs")};
                       })));
  } else {
    out.push_back(NotDeclared("no-new-privs", "no_new_privs", "escalation allowed"));
  }
  out.back().controls = CheckControls("privilege-escalation", defaults);

  const bool privileged = d.privileged.value == true;
  out.push_back(
      Fold("privileged", "capabilities", privileged ? "privileged" : "not privileged",
           Each(pairing, [&](const ObservedProcess& p) -> ProcessResult {
             const bool looks = LooksPrivileged(p.snapshot);
             const std::string text = looks ? "full bounding set" : "restricted bounding set";
             if (looks == privileged) return {Agreement::kAgree, text, ""};
             return {Agreement::kDisagree, text,
                     absl::StrCat(Pid(p), looks ? " holds every capability as a privileged "
                                                  "container does"
                                                : " does not hold every capability")};
           })));
  out.back().controls = CheckControls("privileged", defaults);

  std::vector<std::string> host;
  if (d.host_pid.value == true) host.push_back("hostPID");
  if (d.host_ipc.value == true) host.push_back("hostIPC");
  if (d.host_network.value == true) host.push_back("hostNetwork");
  out.push_back(
      Fold("host-namespaces", "user_namespaces", host.empty() ? "none" : absl::StrJoin(host, ","),
           Each(pairing, [&](const ObservedProcess& p) { return HostNamespacesOf(d, p); })));
  out.back().controls = CheckControls("host-namespaces", defaults);
  return out;
}

v1::TrustStatus OutcomeStatus(Agreement a) {
  switch (a) {
    case Agreement::kAgree:
      return v1::TRUST_AFFIRMING;
    case Agreement::kDisagree:
      return v1::TRUST_CONTRAINDICATED;
    default:
      return v1::TRUST_NONE;
  }
}

}  // namespace

const char* AgreementName(Agreement a) {
  switch (a) {
    case Agreement::kAgree:
      return "agree";
    case Agreement::kDisagree:
      return "disagree";
    case Agreement::kUnknown:
      return "unknown";
    case Agreement::kNotDeclared:
      return "not-declared";
  }
  return "unknown";
}

std::vector<Comparison> CompareAll(const std::vector<Pairing>& pairings) {
  std::vector<Comparison> out;
  for (const Pairing& p : pairings) {
    Comparison c;
    c.pairing = p;
    if (!p.processes.empty()) c.checks = CompareOne(p);
    out.push_back(std::move(c));
  }
  return out;
}

nlohmann::json ComparisonOscal(const std::vector<Comparison>& comparisons,
                               const std::vector<ObservedNode>& nodes, absl::Time now) {
  std::map<std::string, verifier::StoredVerdict> by_node;
  for (const ObservedNode& n : nodes) {
    verifier::StoredVerdict& s = by_node[n.node_id];
    s.hostname = n.hostname;
    s.verdict.set_node_id(n.node_id);
    s.verdict.set_evidence_sha256(n.evidence_sha256);
    s.verdict.set_policy_digest(n.policy_digest);
    s.verdict.set_report_sequence(n.report_sequence);
    s.verdict.set_appraised_unix_nano(absl::ToUnixNanos(now));
    s.verdict.set_status(v1::TRUST_AFFIRMING);
    s.verdict.set_detail("Declared Kubernetes security settings compared with the runtime.");
  }
  for (const Comparison& c : comparisons) {
    if (c.pairing.processes.empty()) continue;
    const ObservedProcess& first = *c.pairing.processes.front();
    auto node = by_node.find(first.node_id);
    if (node == by_node.end()) continue;
    v1::Verdict& v = node->second.verdict;
    const DeclaredContainer& d = *c.pairing.declared;
    v1::WorkloadVerdict* w = v.add_workloads();
    w->mutable_identity()->set_name(absl::StrCat(d.ObjectName(), ":", d.container));
    w->mutable_identity()->set_exe_path(first.snapshot.exe_path());
    w->mutable_identity()->set_cgroup(first.snapshot.cgroup());
    w->mutable_identity()->set_container_id(first.snapshot.container_id());
    w->set_workload_id(HexEncode(Sha256(absl::StrCat(d.file, "\n", w->identity().name()))));
    w->set_policy_id(absl::StrCat("manifest:", d.file));
    w->set_status(v1::TRUST_AFFIRMING);
    for (const ObservedProcess* p : c.pairing.processes) {
      if (p->node_id == first.node_id) w->add_pids(p->snapshot.pid());
    }
    for (const ComparisonCheck& check : c.checks) {
      if (check.agreement == Agreement::kNotDeclared) continue;
      v1::RuleOutcome* r = w->add_rules();
      r->set_rule_id(absl::StrCat("spec-", check.check));
      r->set_kind(check.kind);
      r->set_status(OutcomeStatus(check.agreement));
      r->set_reason(check.message.empty() ? "the runtime matches the spec" : check.message);
      r->set_expected(check.declared);
      r->set_observed(check.observed);
      for (const std::string& control : check.controls) r->add_controls(control);
      r->set_workload_id(w->workload_id());
      if (r->status() == v1::TRUST_CONTRAINDICATED) {
        w->set_status(v1::TRUST_CONTRAINDICATED);
        v.set_status(v1::TRUST_CONTRAINDICATED);
      }
    }
  }
  std::vector<verifier::StoredVerdict> verdicts;
  for (auto& [id, s] : by_node) {
    if (s.verdict.workloads_size() > 0) verdicts.push_back(std::move(s));
  }
  verifier::OscalExportOptions options;
  options.since = now;
  options.until = now + absl::Nanoseconds(1);
  options.generated_at = now;
  options.title = "Vigil comparison of declared Kubernetes security settings with the runtime";
  return verifier::ExportAssessmentResults(verdicts, options);
}

}  // namespace vigil::cli
