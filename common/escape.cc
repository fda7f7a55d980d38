#include "common/escape.h"

#include "absl/strings/str_format.h"

namespace vigil {

std::string EscapeUntrusted(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += absl::StrFormat("\\x%02x", c);
    }
  }
  return out;
}

std::string EscapeUntrusted(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return EscapeUntrusted(s);
  return EscapeUntrusted(s.substr(0, max_bytes)) + "...";
}

}  // namespace vigil
