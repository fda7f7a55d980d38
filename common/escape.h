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

/// Text for XML character data and attribute values (JUnit reports): the five markup
/// characters become entities, and bytes XML 1.0 cannot carry or that need not be UTF-8
/// (control characters other than tab, newline and carriage return; DEL; non-ASCII) become
/// "\xNN", so the document is well formed whatever the input.
std::string XmlEscape(absl::string_view text);

}  // namespace vigil
