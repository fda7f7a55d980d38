#pragma once

// Invariant checks shared by the fuzz harnesses: a broken invariant aborts, which libFuzzer
// reports as a crash and the corpus replay test as a failure.

#include <cstdlib>
#include <string_view>

namespace vigil::fuzz {

inline void Check(bool ok) {
  if (!ok) std::abort();
}

/// Whether `s` holds printable ASCII only (what EscapeUntrusted and Printable produce).
inline bool PrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace vigil::fuzz
