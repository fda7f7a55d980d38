#pragma once

// `vigilctl audit manifests`: a static audit of the security settings Kubernetes manifests
// declare for their containers (seccomp profile, capabilities, privilege escalation, root
// filesystem, privileged mode, host namespaces, /proc masking), with each finding mapped to
// the controls the runtime rules evidence. docs/vigilctl.md lists the checks.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/policy/policy.h"

namespace vigil::cli {

/// A value a manifest sets, and the 1-based line of its key (0 when the key is absent).
template <typename T>
struct Declared {
  std::optional<T> value;
  int line = 0;
};

/// One container a manifest declares, with the settings that apply to it (container-level
/// settings, and the pod-level ones it inherits).
struct DeclaredContainer {
  std::string file;
  /// The object's kind and metadata.name ("Deployment", "web"); its metadata.namespace ("" when
  /// the manifest leaves it to the apply context).
  std::string kind;
  std::string name;
  std::string namespace_name;
  /// metadata.uid of a Pod exported from a cluster ("" otherwise).
  std::string pod_uid;
  /// The container's name, and "containers", "initContainers" or "ephemeralContainers".
  std::string container;
  std::string container_list;
  /// status.containerStatuses[].containerID of an exported Pod, without the "runtime://"
  /// prefix ("" otherwise).
  std::string container_id;
  /// Line of the container's entry.
  int line = 0;
  /// The seccompProfile.type that applies (the container's, else the pod's) and whether it
  /// came from the pod.
  Declared<std::string> seccomp_type;
  bool seccomp_from_pod = false;
  /// capabilities.drop holds ALL (line of `drop`, or of `capabilities` when it is missing).
  Declared<bool> drops_all;
  /// capabilities.add, normalised to "CAP_SYS_PTRACE", each with its line.
  std::vector<std::pair<std::string, int>> added_capabilities;
  Declared<bool> allow_privilege_escalation;
  Declared<bool> read_only_root_filesystem;
  Declared<bool> privileged;
  Declared<std::string> proc_mount;
  Declared<bool> host_pid;
  Declared<bool> host_ipc;
  Declared<bool> host_network;

  /// "KIND/NAME", with "NAMESPACE/" first when the manifest names one.
  std::string ObjectName() const;
};

/// An object the audit did not look into: its kind is not one that holds a pod template.
struct SkippedObject {
  std::string file;
  int line = 0;
  std::string kind;
};

/// What the manifests declare.
struct ManifestSet {
  std::vector<DeclaredContainer> containers;
  /// The files read, in the order read.
  std::vector<std::string> files;
  /// Objects with a pod template (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
  /// CronJob), Lists counted by their items.
  int objects = 0;
  std::vector<SkippedObject> skipped;
};

/// Reads FILEs and DIRectories (walked recursively for *.yaml and *.yml, in sorted path
/// order). Fails, naming FILE:LINE:COL, on a missing file, a YAML syntax error, or a
/// workload whose pod template is malformed (a field of the wrong type).
absl::StatusOr<ManifestSet> LoadManifests(const std::vector<std::string>& paths);

/// "CAP_SYS_PTRACE" for "SYS_PTRACE", "sys_ptrace" or "CAP_SYS_PTRACE" (ALL stays "ALL").
std::string NormalizeCapability(const std::string& name);

enum class Severity { kLow, kMedium, kHigh };
const char* SeverityName(Severity severity);

/// One finding about one container.
struct Finding {
  std::string file;
  int line = 0;
  std::string object;
  std::string container;
  /// The check (one JUnit testcase per container and check) and the rule that broke it.
  std::string check;
  std::string rule;
  Severity severity = Severity::kMedium;
  std::string message;
  /// As RuleOutcome.controls writes them ("NIST-800-53r5:AC-6", ...).
  std::vector<std::string> controls;
};

/// The checks every container goes through, in report order.
const std::vector<std::string>& ManifestChecks();

/// What the policies passed with --policy ask for, as far as a manifest can show it.
struct PolicyExpectations {
  /// Syscalls a seccomp rule denies, sorted.
  std::vector<std::string> denied_syscalls;
  /// Capabilities a capabilities rule requires absent, normalised ("CAP_SYS_PTRACE").
  std::vector<std::string> forbidden_capabilities;
  /// Controls of the policies' rules by rule kind name ("seccomp", ...): findings of a check
  /// that evidences that kind carry them instead of the defaults.
  std::vector<std::pair<std::string, std::vector<std::string>>> controls_by_kind;
};
PolicyExpectations ExpectationsOf(const std::vector<policy::Policy>& policies);

/// Syscalls the container runtimes' default seccomp profile (RuntimeDefault) denies to a
/// container without CAP_SYS_ADMIN (and the other capabilities moby, containerd and CRI-O
/// condition them on). Any other syscall is taken to be allowed by RuntimeDefault.
const std::vector<std::string>& RuntimeDefaultDeniedSyscalls();

/// The controls a check's findings carry: the policies' controls for the rule kind the check
/// evidences, else Vigil's defaults for it (those of the shipped policies, docs/policy.md).
std::vector<std::string> CheckControls(const std::string& check,
                                       const PolicyExpectations& expectations);

/// Runs every check on `container`; findings in ManifestChecks() order.
std::vector<Finding> AuditContainer(const DeclaredContainer& container,
                                    const PolicyExpectations& expectations);

}  // namespace vigil::cli
