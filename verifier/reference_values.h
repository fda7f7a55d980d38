#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace vigil::verifier {

/// Whether `type` is an event type a reference value may name: node-start,
/// vigil-node-binary, bpf-object, bpf-program-tags, policy-bundle, no-policy-bundle,
/// tpm-restart. ("log-mismatch" is never a reference value: it always makes evidence
/// NODE_LOG_MISMATCH.)
bool IsReferenceEventType(std::string_view type);

/// Known-good measurements, typed: each digest (SHA-256) is accepted only for the event type
/// it is listed with, so a digest known as, say, a policy bundle does not pass as a BPF
/// object. What `vigil-node reference-values --out FILE` publishes for a build.
///
/// File format (YAML):
///   reference_values:
///     - {type: vigil-node-binary, digest: <64 hex>, description: vigil-node 0.1.0}
///     - {type: bpf-object, digest: <64 hex>, description: ...}
/// The older untyped forms (a bare digest per line, a list of bare digests, or entries
/// without `type`) are refused, with the file and line named: a digest without a type cannot
/// be given a safe meaning.
class ReferenceValues {
 public:
  /// Loads a reference-value file. Errors name the file and the line.
  static absl::StatusOr<ReferenceValues> Load(const std::string& path);
  /// Parses the YAML text of a reference-value file; `name` labels errors.
  static absl::StatusOr<ReferenceValues> Parse(const std::string& yaml, const std::string& name);

  /// Adds a digest (32 raw bytes) known for event type `type`, with a description.
  void Add(std::string type, std::string digest, std::string description);
  /// Whether `digest` (raw bytes) is known for event type `type`.
  bool Contains(std::string_view type, std::string_view digest) const;
  /// Whether `digest` is known for any event type (for a clearer refusal detail).
  std::optional<std::string> TypeOf(std::string_view digest) const;
  /// The description of a known (type, digest) ("" when unknown).
  std::string Describe(std::string_view type, std::string_view digest) const;
  size_t size() const { return digests_.size(); }

 private:
  std::map<std::pair<std::string, std::string>, std::string, std::less<>> digests_;
};

/// Operator-provided reference values for the boot PCRs (0-7), per node class: the values a
/// node of that class (same firmware, boot loader, kernel and their configuration) quotes.
/// A node's boot PCRs pass when every PCR of at least one class equals its quoted value.
///
/// File format (YAML):
///   node_classes:
///     - name: rack-a-2026-11
///       pcrs: {0: <64 hex>, 1: <64 hex>, 2: <64 hex>, ..., 7: <64 hex>}
/// Each class names at least one PCR among 0-7; a PCR a class names must be quoted.
class BootReferenceValues {
 public:
  struct NodeClass {
    std::string name;
    std::map<uint32_t, std::string> pcrs;  // index -> 32 raw bytes
  };

  /// Loads a boot reference-value file. Errors name the file and the line.
  static absl::StatusOr<BootReferenceValues> Load(const std::string& path);
  /// Parses the YAML text of such a file; `name` labels errors.
  static absl::StatusOr<BootReferenceValues> Parse(const std::string& yaml,
                                                   const std::string& name);

  void AddClass(NodeClass node_class) { classes_.push_back(std::move(node_class)); }
  bool empty() const { return classes_.empty(); }

  /// The name of the first class whose every PCR equals `quoted` (index -> 32 raw bytes), or
  /// FAILED_PRECONDITION whose message names, for the class that differs in the fewest PCRs,
  /// each differing PCR with its index, expected and quoted values (hex).
  absl::StatusOr<std::string> Match(const std::map<uint32_t, std::string>& quoted) const;

 private:
  std::vector<NodeClass> classes_;
};

}  // namespace vigil::verifier
