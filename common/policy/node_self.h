#pragma once

// The built-in rule on vigil-node's own security state (RuntimeReport.node_self): what the
// node's processes may hold once it runs split by privilege (docs/node.md, "Privilege
// separation"). Shared by the node, which drops to these sets, and the verifier, which
// checks them.

#include <cstdint>
#include <string>

#include "vigil/v1/attestation.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::policy {

/// The bit of capability `number` in a /proc/<pid>/status capability mask.
constexpr uint64_t CapabilityBit(int number) { return uint64_t{1} << number; }

/// The main process (probes, procfs snapshots, TPM, network, reports) keeps exactly these:
/// CAP_BPF and CAP_PERFMON load and attach the tracepoint probes; CAP_SYS_PTRACE and
/// CAP_DAC_READ_SEARCH let it read /proc/<pid>/{maps,smaps,fd,exe,environ,root} of
/// processes of other users or with more capabilities. ptrace(2) itself is refused by its
/// own seccomp filter.
inline constexpr uint64_t kNodeMainCapabilities =
    CapabilityBit(2) /* CAP_DAC_READ_SEARCH */ | CapabilityBit(19) /* CAP_SYS_PTRACE */ |
    CapabilityBit(38) /* CAP_PERFMON */ | CapabilityBit(39) /* CAP_BPF */;

/// The privileged process only reads seccomp filters: PTRACE_SECCOMP_GET_FILTER needs
/// CAP_SYS_ADMIN, seizing a process of another user or with more capabilities needs
/// CAP_SYS_PTRACE.
inline constexpr uint64_t kNodePrivilegedCapabilities =
    CapabilityBit(19) /* CAP_SYS_PTRACE */ | CapabilityBit(21) /* CAP_SYS_ADMIN */;

/// The rule's id in RuleOutcome.rule_id, and its kind.
inline constexpr char kNodeSelfRuleId[] = "vigil.node.self";
inline constexpr char kNodeSelfRuleKind[] = "node_self";

/// "CAP_BPF,CAP_PERFMON" for a capability mask, lowest bit first; "none" for 0.
std::string CapabilityNames(uint64_t mask);

/// Appraises `report.node_self`: the node runs split; the main process's effective,
/// permitted and bounding sets hold nothing outside kNodeMainCapabilities, it has no_new_privs
/// and a seccomp filter (mode 2, at least one filter); the privileged process's hold nothing
/// outside kNodePrivilegedCapabilities and it has no_new_privs; neither holds anything in its
/// inheritable or ambient set. The outcome is TRUST_AFFIRMING when every part holds and
/// `failure_status` otherwise (also when the report has no node_self), with the parts that fail as
/// its reason.
v1::RuleOutcome EvaluateNodeSelf(const v1::RuntimeReport& report, v1::TrustStatus failure_status);

}  // namespace vigil::policy
