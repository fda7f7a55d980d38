#include "cli/audit_manifests.h"

#include <algorithm>
#include <iterator>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/policy/controls.h"

namespace vigil::cli {
namespace {

constexpr char kSeccomp[] = "seccomp";
constexpr char kDropAll[] = "capabilities-drop-all";
constexpr char kAdded[] = "capabilities-added";
constexpr char kEscalation[] = "privilege-escalation";
constexpr char kReadOnlyRoot[] = "read-only-root-filesystem";
constexpr char kPrivileged[] = "privileged";
constexpr char kHostNamespaces[] = "host-namespaces";
constexpr char kProcMount[] = "proc-mount";

// The rule kind (docs/policy.md) whose controls a check evidences, and the control ids the
// shipped policies give that kind.
struct CheckMapping {
  const char* check;
  const char* kind;
  std::vector<const char*> nist, iso, soc2;
};

const std::vector<CheckMapping>& Mappings() {
  static const auto* mappings = new std::vector<CheckMapping>{
      {kSeccomp, "seccomp", {"AC-6", "SC-39", "CM-7"}, {"A.8.2", "A.8.9"}, {"CC6.1", "CC6.8"}},
      {kDropAll,
       "capabilities",
       {"AC-6", "AC-6(10)", "CM-7"},
       {"A.8.2", "A.8.18"},
       {"CC6.1", "CC6.3"}},
      {kAdded,
       "capabilities",
       {"AC-6", "AC-6(10)", "CM-7"},
       {"A.8.2", "A.8.18"},
       {"CC6.1", "CC6.3"}},
      {kEscalation, "no_new_privs", {"AC-6(10)"}, {"A.8.2"}, {"CC6.1"}},
      {kReadOnlyRoot, "read_only_root", {"SI-7", "CM-5"}, {"A.8.9"}, {"CC6.8"}},
      {kPrivileged,
       "capabilities",
       {"AC-6", "AC-6(10)", "CM-7"},
       {"A.8.2", "A.8.18"},
       {"CC6.1", "CC6.3"}},
      // Namespace isolation: the controls of the user_namespaces kind.
      {kHostNamespaces, "user_namespaces", {"SC-39", "AC-6"}, {"A.8.2"}, {"CC6.1"}},
      {kProcMount, "user_namespaces", {"SC-39", "AC-6"}, {"A.8.2"}, {"CC6.1"}},
  };
  return *mappings;
}

std::vector<std::string> DefaultControls(const CheckMapping& m) {
  // The ids are constants checked by the tests; the library writes them in RuleOutcome form
  // (with the ISO/IEC 27001:2013 numbers each 2022 control replaces).
  std::vector<std::string> out;
  for (const char* id : m.nist) {
    if (auto c = policy::NistControl(id); c.ok()) out.push_back(*c);
  }
  for (const char* id : m.iso) {
    if (auto c = policy::IsoControls(id); c.ok()) out.insert(out.end(), c->begin(), c->end());
  }
  for (const char* id : m.soc2) {
    if (auto c = policy::Soc2Control(id); c.ok()) out.push_back(*c);
  }
  return out;
}

class ContainerAudit {
 public:
  ContainerAudit(const DeclaredContainer& c, const PolicyExpectations& expectations)
      : c_(c), expectations_(expectations) {}

  std::vector<Finding> Run() {
    Seccomp();
    Capabilities();
    if (c_.allow_privilege_escalation.value != false) {
      Add(kEscalation, "privilege-escalation-allowed", Severity::kMedium,
          c_.allow_privilege_escalation.line,
          c_.allow_privilege_escalation.value.has_value()
              ? "allowPrivilegeEscalation is true: setuid programs and file capabilities can "
                "raise the process's privileges (no_new_privs stays off)"
              : "allowPrivilegeEscalation is not set to false: no_new_privs stays off");
    }
    if (c_.read_only_root_filesystem.value != true) {
      Add(kReadOnlyRoot, "root-filesystem-writable", Severity::kMedium,
          c_.read_only_root_filesystem.line,
          "readOnlyRootFilesystem is not true: the container can change its own programs and "
          "libraries");
    }
    if (c_.privileged.value == true) {
      Add(kPrivileged, "privileged-container", Severity::kHigh, c_.privileged.line,
          "privileged: true gives every capability, all devices and no seccomp or AppArmor "
          "confinement");
    }
    HostNamespace(c_.host_pid, "host-pid", "hostPID: true shares the node's process namespace");
    HostNamespace(c_.host_ipc, "host-ipc", "hostIPC: true shares the node's IPC namespace");
    HostNamespace(c_.host_network, "host-network",
                  "hostNetwork: true shares the node's network namespace");
    if (c_.proc_mount.value == "Unmasked") {
      Add(kProcMount, "proc-mount-unmasked", Severity::kHigh, c_.proc_mount.line,
          "procMount: Unmasked leaves /proc's sensitive paths unmasked and writable");
    }
    return std::move(findings_);
  }

 private:
  void Seccomp() {
    const Declared<std::string>& s = c_.seccomp_type;
    const std::string from = c_.seccomp_from_pod ? " (from the pod's securityContext)" : "";
    if (!s.value.has_value()) {
      Add(kSeccomp, "seccomp-profile-missing", Severity::kMedium, 0,
          "no seccompProfile at pod or container level: the container runs Unconfined unless "
          "the kubelet's SeccompDefault is on");
    } else if (*s.value == "Unconfined") {
      Add(kSeccomp, "seccomp-unconfined", Severity::kHigh, s.line,
          absl::StrCat("seccompProfile type Unconfined", from, ": no syscall is filtered"));
    } else if (*s.value == "RuntimeDefault") {
      std::vector<std::string> missed;
      const auto& denied = RuntimeDefaultDeniedSyscalls();
      for (const std::string& sc : expectations_.denied_syscalls) {
        if (!std::binary_search(denied.begin(), denied.end(), sc)) missed.push_back(sc);
      }
      if (!missed.empty()) {
        Add(kSeccomp, "seccomp-runtime-default-insufficient", Severity::kMedium, s.line,
            absl::StrCat(
                "seccompProfile type RuntimeDefault", from,
                " allows syscalls the policy requires denied: ", absl::StrJoin(missed, ", "),
                "; use a Localhost profile that denies them"));
      }
    } else if (*s.value != "Localhost") {
      Add(kSeccomp, "seccomp-profile-unknown", Severity::kMedium, s.line,
          absl::StrCat("seccompProfile type \"", *s.value,
                       "\" is not RuntimeDefault, Localhost or Unconfined"));
    }
  }

  void Capabilities() {
    if (c_.drops_all.value != true) {
      Add(kDropAll, "capabilities-drop-all-missing", Severity::kMedium, c_.drops_all.line,
          "capabilities.drop does not hold ALL: the runtime's default capabilities stay");
    }
    const auto& forbidden = expectations_.forbidden_capabilities;
    for (const auto& [cap, line] : c_.added_capabilities) {
      const bool is_forbidden = std::binary_search(forbidden.begin(), forbidden.end(), cap) ||
                                (cap == "ALL" && !forbidden.empty());
      if (is_forbidden) {
        Add(kAdded, "capability-added-forbidden", Severity::kHigh, line,
            absl::StrCat("capabilities.add holds ", cap, ", which the policy requires absent"));
      } else {
        Add(kAdded, "capability-added", Severity::kMedium, line,
            absl::StrCat("capabilities.add holds ", cap));
      }
    }
  }

  void HostNamespace(const Declared<bool>& d, const char* rule, const char* message) {
    if (d.value == true) Add(kHostNamespaces, rule, Severity::kHigh, d.line, message);
  }

  // A finding at `line`, or at the container's entry when the key is missing (0).
  void Add(const char* check, const char* rule, Severity severity, int line, std::string message) {
    Finding f;
    f.file = c_.file;
    f.line = line != 0 ? line : c_.line;
    f.object = c_.ObjectName();
    f.container = c_.container;
    f.check = check;
    f.rule = rule;
    f.severity = severity;
    f.message = std::move(message);
    f.controls = CheckControls(check, expectations_);
    findings_.push_back(std::move(f));
  }

  const DeclaredContainer& c_;
  const PolicyExpectations& expectations_;
  std::vector<Finding> findings_;
};

}  // namespace

const char* SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kLow:
      return "low";
    case Severity::kMedium:
      return "medium";
    case Severity::kHigh:
      return "high";
  }
  return "medium";
}

const std::vector<std::string>& ManifestChecks() {
  static const auto* checks = [] {
    auto* out = new std::vector<std::string>;
    for (const CheckMapping& m : Mappings()) out->push_back(m.check);
    return out;
  }();
  return *checks;
}

PolicyExpectations ExpectationsOf(const std::vector<policy::Policy>& policies) {
  PolicyExpectations out;
  std::set<std::string> syscalls, caps;
  for (const policy::Policy& p : policies) {
    for (const policy::Rule& r : p.rules) {
      const std::string kind = policy::RuleKindName(r.kind);
      if (r.kind == policy::RuleKind::kSeccomp) {
        syscalls.insert(r.seccomp.deny.begin(), r.seccomp.deny.end());
      }
      if (r.kind == policy::RuleKind::kCapabilities) {
        for (const std::string& name : r.capabilities.absent_names) {
          caps.insert(NormalizeCapability(name));
        }
      }
      auto it = std::find_if(out.controls_by_kind.begin(), out.controls_by_kind.end(),
                             [&](const auto& e) { return e.first == kind; });
      if (it == out.controls_by_kind.end()) {
        out.controls_by_kind.emplace_back(kind, std::vector<std::string>{});
        it = std::prev(out.controls_by_kind.end());
      }
      for (const std::string& c : r.controls) {
        if (std::find(it->second.begin(), it->second.end(), c) == it->second.end()) {
          it->second.push_back(c);
        }
      }
    }
  }
  out.denied_syscalls.assign(syscalls.begin(), syscalls.end());
  out.forbidden_capabilities.assign(caps.begin(), caps.end());
  return out;
}

const std::vector<std::string>& RuntimeDefaultDeniedSyscalls() {
  // Sorted. The default profiles of moby (Docker), containerd and CRI-O deny these to a
  // container that does not hold the capability they are conditioned on (CAP_SYS_ADMIN,
  // CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_SYS_TIME, ...). ptrace, process_vm_readv and
  // process_vm_writev are not among them: those profiles allow them on kernels 4.8 and later.
  static const auto* denied = new std::vector<std::string>{
      "acct",
      "add_key",
      "bpf",
      "clock_settime",
      "create_module",
      "delete_module",
      "finit_module",
      "fsconfig",
      "fsmount",
      "fsopen",
      "fspick",
      "get_kernel_syms",
      "init_module",
      "ioperm",
      "iopl",
      "kexec_file_load",
      "kexec_load",
      "keyctl",
      "lookup_dcookie",
      "mount",
      "mount_setattr",
      "move_mount",
      "name_to_handle_at",
      "nfsservctl",
      "open_by_handle_at",
      "open_tree",
      "perf_event_open",
      "pivot_root",
      "query_module",
      "quotactl",
      "reboot",
      "request_key",
      "setns",
      "settimeofday",
      "stime",
      "swapoff",
      "swapon",
      "syslog",
      "umount",
      "umount2",
      "unshare",
      "uselib",
      "userfaultfd",
      "ustat",
      "vm86",
      "vm86old",
  };
  return *denied;
}

std::vector<std::string> CheckControls(const std::string& check,
                                       const PolicyExpectations& expectations) {
  for (const CheckMapping& m : Mappings()) {
    if (check != m.check) continue;
    for (const auto& [kind, controls] : expectations.controls_by_kind) {
      if (kind == m.kind && !controls.empty()) return controls;
    }
    return DefaultControls(m);
  }
  return {};
}

std::vector<Finding> AuditContainer(const DeclaredContainer& container,
                                    const PolicyExpectations& expectations) {
  return ContainerAudit(container, expectations).Run();
}

}  // namespace vigil::cli
