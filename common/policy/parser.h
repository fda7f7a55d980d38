#pragma once

// Reading RuntimePolicy YAML (docs/policy.md). A policy is accepted whole or not at all:
// the parser goes on after the first problem and reports every error and lint warning with
// the file, line and column it refers to.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/policy/policy.h"

namespace vigil::policy {

/// One problem found in a policy file.
struct Diagnostic {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  std::string file;
  /// 1-based.
  int line = 0;
  int column = 0;
  std::string message;

  /// "FILE:LINE:COL: error: MESSAGE" (or "warning:").
  std::string ToString() const;
};

/// What parsing a file found.
struct ParseResult {
  /// Every policy of the file, in file order; empty when there is any error.
  std::vector<Policy> policies;
  /// Errors and warnings, in file order.
  std::vector<Diagnostic> diagnostics;

  bool HasErrors() const;
};

/// Parses every RuntimePolicy document of a YAML stream. `file` names the source in
/// diagnostics. Never throws; malformed YAML is an error like any other.
ParseResult ParsePolicies(absl::string_view text, absl::string_view file);

/// Parses a stream and fails with every error, one per line, when there is any. Two
/// policies of the same name are an error too.
absl::StatusOr<std::vector<Policy>> ParsePoliciesOrError(absl::string_view text,
                                                         absl::string_view file);

/// Parses exactly one RuntimePolicy document (the form PutPolicy stores); warnings go to
/// `*warnings` when it is not null, as Diagnostic::ToString() lines.
absl::StatusOr<Policy> ParseSinglePolicy(absl::string_view text, absl::string_view file,
                                         std::vector<std::string>* warnings = nullptr);

/// The capability number of a name like "CAP_SYS_PTRACE"; -1 when unknown.
int CapabilityNumber(absl::string_view name);

/// The name of capability `number` ("CAP_SYS_PTRACE"), or "CAP_<number>" when unknown.
std::string CapabilityName(int number);

}  // namespace vigil::policy
