#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace vigil {

/// Escapes text an attacker may control (a process's comm or path, a measurement-log event
/// type or detail, anything a node sent) before it reaches a verdict detail, a log line or a
/// proto3 string field: every byte that is not printable ASCII becomes \xNN and a backslash
/// becomes two, so the result is valid UTF-8, holds no control characters (no forged log
/// lines, no terminal escapes) and maps back to the original bytes unambiguously.
std::string EscapeUntrusted(absl::string_view s);

/// EscapeUntrusted of at most the first `max_bytes` of `s`, with "..." appended when `s` was
/// longer: for one line of a log or a verdict detail.
std::string EscapeUntrusted(absl::string_view s, size_t max_bytes);

}  // namespace vigil
