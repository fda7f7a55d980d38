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

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if ((u < 0x20 && c != '\t' && c != '\n' && c != '\r') || u == 0x7f || u >= 0x80) {
          // Non-ASCII bytes are escaped too: the input need not be valid UTF-8.
          absl::StrAppendFormat(&out, "\\x%02x", u);
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace vigil
