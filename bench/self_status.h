#pragma once

// This process's /proc/self/status, for the benchmarks that print their own memory.

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace vigil::bench {

/// A "Key:   123 kB" line of /proc/self/status (key with its colon), in KiB; -1 if absent.
inline long SelfStatusKib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  }
  return -1;
}

}  // namespace vigil::bench
