#pragma once

// Policy bundles (PolicyBundle in attestation.proto): the policies that apply to a node as
// one measured unit, and what the node must do to produce the evidence they appraise.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/policy/policy.h"
#include "common/selector.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::policy {

/// The bundle of `policies`: content is each policy's YAML document, in name order, each
/// opened by a "---" line, as one YAML stream; sha256 is the lowercase hex SHA-256 of the
/// content; policy_ids are "name@revision" in the same order. The same set of policies
/// always gives the same bytes, whatever order it is given in. Fails when two policies
/// share a name.
absl::StatusOr<v1::PolicyBundle> BuildBundle(const std::vector<Policy>& policies);

/// Parses a bundle back into its policies, checking that sha256 is the digest of content
/// and that policy_ids name the policies the content holds, in order.
absl::StatusOr<std::vector<Policy>> ParseBundle(const v1::PolicyBundle& bundle);

/// What a node must observe for a set of policies.
struct NodeDirectives {
  /// Every workload selector, once each, in bundle order.
  std::vector<Selector> selectors;
  /// Every syscall a seccomp rule names, sorted, once each: the syscalls the node's
  /// seccomp inspector evaluates.
  std::vector<std::string> seccomp_syscalls;
  /// Every sensitive file pattern, once each (the node reports open files that match).
  std::vector<SensitiveFile> sensitive_files;
};

/// The node directives of `policies`.
NodeDirectives DirectivesOf(const std::vector<Policy>& policies);

}  // namespace vigil::policy
