#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vigil::verifier {

/// Known-good measurement digests (SHA-256): the node binaries, BPF objects and program
/// tags, and policy bundles an operator accepts. A measurement-log entry whose digest is
/// not here makes evidence UNKNOWN_MEASUREMENT.
///
/// File formats (chosen by extension):
///  - `.yaml` / `.yml`: `reference_values: [{digest: <64 hex>, description: <text>}, ...]`
///    (a bare hex string is accepted as a list item too);
///  - anything else: one `<64 hex> [description]` per line; `#` starts a comment.
class ReferenceValues {
 public:
  /// Loads a reference-value file. Errors name the file and the line or key.
  static absl::StatusOr<ReferenceValues> Load(const std::string& path);

  /// Adds a digest (32 raw bytes) with a description.
  void Add(std::string digest, std::string description);
  /// Whether `digest` (raw bytes) is known.
  bool Contains(std::string_view digest) const;
  /// The description of a known digest ("" when unknown).
  std::string Describe(std::string_view digest) const;
  size_t size() const { return digests_.size(); }

 private:
  std::map<std::string, std::string, std::less<>> digests_;
};

}  // namespace vigil::verifier
