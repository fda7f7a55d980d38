#pragma once

// The kernel's IMA measurement list in its ASCII form
// (/sys/kernel/security/ima/ascii_runtime_measurements), one entry per line:
//   <pcr> <template hash hex> <template name> <template data...>
// For the templates "ima-ng" and "ima-sig" the data is "<alg>:<file hash hex> <path>"
// ("ima-sig" may add " <signature hex>"); for the legacy "ima" template it is
// "<sha1 file hash hex> <path>".

#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace vigil {

/// One line of the IMA ASCII measurement list.
struct ImaEntry {
  uint32_t pcr = 0;
  std::string template_hash;        // hex, as listed
  std::string template_name;        // "ima-ng", "ima-sig", "ima", ...
  std::string file_hash_algorithm;  // "sha256", "sha1", ...; "sha1" for the "ima" template
  std::string file_hash;            // raw bytes
  std::string path;
  std::string line;  // the line as listed, without its newline

  friend bool operator==(const ImaEntry&, const ImaEntry&) = default;
};

/// Parses one line. InvalidArgument when it is not an entry of a known template.
absl::StatusOr<ImaEntry> ParseImaLine(absl::string_view line);

/// Parses the whole list; the error names the (1-based) line.
absl::StatusOr<std::vector<ImaEntry>> ParseImaAsciiLog(absl::string_view text);

/// The last entry for `path` (a file measured again after a change appears again), if any.
std::optional<ImaEntry> LastImaEntryFor(const std::vector<ImaEntry>& entries,
                                        absl::string_view path);

}  // namespace vigil
