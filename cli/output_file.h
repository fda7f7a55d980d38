#pragma once

// Files vigilctl writes for the user (exported documents, key sets).

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace vigil::cli {

/// Writes `contents` to `path` (mode 0644) atomically: a temporary file in the same
/// directory is written, fsynced and then renamed over `path` when `replace`, or linked to
/// `path` (which fails, ALREADY_EXISTS, when `path` exists) otherwise. Readers see no file or
/// a complete one, never a torn one; on any failure the temporary file is removed.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents, bool replace);

}  // namespace vigil::cli
