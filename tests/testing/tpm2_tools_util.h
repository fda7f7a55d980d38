#pragma once

// Test helpers for driving tpm2-tools (the independent peer) against a swtpm fixture.

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace vigil::testing {

/// Runs `command` through /bin/sh with TPM2TOOLS_TCTI=`tcti`; returns its combined output,
/// or an error carrying that output when it exits non-zero.
inline absl::StatusOr<std::string> RunTpm2Tool(const std::string& tcti,
                                               const std::string& command) {
  std::string full = absl::StrCat("export TPM2TOOLS_TCTI='", tcti, "'; { ", command, "; } 2>&1");
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("popen failed");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) out.append(buf, n);
  int status = pclose(pipe);
  if (status != 0) {
    return absl::InternalError(absl::StrCat("`", command, "` failed (", status, "): ", out));
  }
  return out;
}

/// A whole file's bytes ("" when it cannot be read).
inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Writes `bytes` to `path`, replacing it.
inline bool WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  return static_cast<bool>(out);
}

}  // namespace vigil::testing
