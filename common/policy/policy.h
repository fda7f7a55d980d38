#pragma once

// The reference policy model: a RuntimePolicy document (docs/policy.md) once parsed and
// checked. Produced only by ParsePolicies (common/policy/parser.h), so every value here has
// been validated: selectors parse, CIDRs are well formed, capability and event names exist.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/policy/net.h"
#include "common/policy/scope_model.h"
#include "common/selector.h"
#include "vigil/v1/attestation.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::policy {

/// Where something was written in a policy file (1-based, as editors count).
struct SourcePosition {
  int line = 0;
  int column = 0;
};

/// A grade for a failed rule or an observed event.
enum class Grade { kIgnore, kWarning, kContraindicated };

/// The TrustStatus a failure of this grade gives (AFFIRMING for kIgnore).
v1::TrustStatus GradeStatus(Grade grade);

/// A named group of processes: those any of its selectors matches, and their descendants.
struct Workload {
  std::string name;
  std::vector<Selector> selectors;
  /// Position of each selector, for lint.
  std::vector<SourcePosition> selector_positions;
  /// What the system security plan declares the workload uses (`scope:`), when it says.
  std::optional<DeclaredScope> scope;
};

/// A file the node reports when a workload holds it open (ProcessSnapshot.sensitive_files).
struct SensitiveFile {
  /// fnmatch(3) pattern on the resolved path.
  std::string glob;
  /// "config" or "secret".
  std::string classification;
};

/// seccomp: the filter mode is on and every syscall in `deny` is denied for every ABI the
/// kernel runs.
struct SeccompRule {
  std::vector<std::string> deny;
};

/// capabilities: none of `absent` is in the bounding, permitted, effective or ambient set;
/// with `ambient_empty`, the ambient set holds nothing at all.
struct CapabilitiesRule {
  /// Capability numbers, with the names as written.
  std::vector<int> absent;
  std::vector<std::string> absent_names;
  bool ambient_empty = false;
};

/// memory: VmLck is at least `min_locked_bytes`; with `forbid_writable_executable`, no
/// anonymous region is writable and executable (a writable alias counts), except, with
/// `allow_locked_jit`, regions that are entirely locked.
struct MemoryRule {
  uint64_t min_locked_bytes = 0;
  bool forbid_writable_executable = false;
  bool allow_locked_jit = false;
};

/// interpreters: every program the workload runs (snapshot executables and successful
/// exec events) is one its selectors match or one of `allowed` (fnmatch(3) patterns).
struct InterpretersRule {
  std::vector<std::string> allowed;
};

/// One allowed network endpoint: an address range and ports (empty: any port).
struct Endpoint {
  Cidr cidr;
  std::string text;
  /// Inclusive port ranges.
  std::vector<std::pair<uint32_t, uint32_t>> ports;
};

/// egress and listeners: every remote endpoint the workload connects to (egress) or every
/// local address it listens on (listeners) is in `allow`.
struct NetworkRule {
  std::vector<Endpoint> allow;
};

/// How one event kind is graded.
struct EventGrade {
  v1::EventKind kind = v1::EVENT_KIND_UNSPECIFIED;
  /// The syscall failed (negative return value).
  Grade denied = Grade::kWarning;
  /// The syscall succeeded (or the event is not a syscall).
  Grade succeeded = Grade::kContraindicated;
};

/// events: each observed event of a listed kind is an outcome of its grade.
struct EventsRule {
  std::vector<EventGrade> grades;
};

/// The rule kinds, as RuleOutcome.kind names them.
enum class RuleKind {
  kSeccomp,
  kCapabilities,
  kNoNewPrivs,
  kReadOnlyRoot,
  kUserNamespaces,
  kMemory,
  kInterpreters,
  kEgress,
  kListeners,
  kEvents,
  /// The observed scope (RuntimeReport.scopes) against the workload's declared scope.
  kScope,
};

/// "seccomp", "capabilities", ... (RuleOutcome.kind).
const char* RuleKindName(RuleKind kind);

/// One rule of a policy. Only the member of its kind is meaningful.
struct Rule {
  std::string id;
  RuleKind kind = RuleKind::kSeccomp;
  /// The grade of a failure (events rules grade per event instead).
  Grade grade = Grade::kContraindicated;
  /// Names of the workloads the rule applies to; empty: every workload of the policy.
  std::vector<std::string> workloads;
  /// As emitted in RuleOutcome.controls ("NIST-800-53r5:AC-6", "ISO27001:2022:A.8.2", ...).
  std::vector<std::string> controls;
  SeccompRule seccomp;
  CapabilitiesRule capabilities;
  MemoryRule memory;
  InterpretersRule interpreters;
  NetworkRule network;
  EventsRule events;
  SourcePosition position;
};

/// One RuntimePolicy document.
struct Policy {
  std::string name;
  uint64_t revision = 0;
  std::string description;
  std::vector<Workload> workloads;
  std::vector<SensitiveFile> sensitive_files;
  std::vector<Rule> rules;
  /// The document exactly as written (one YAML document, without "---" markers).
  std::string yaml;
  /// The file the policy was read from, for messages.
  std::string source;

  /// "name@revision".
  std::string Id() const;
};

}  // namespace vigil::policy
