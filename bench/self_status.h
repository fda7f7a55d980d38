#pragma once

// /proc/<pid>/status and CPU times of this or another process, for the benchmarks that print
// a process's memory and CPU.

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace vigil::bench {

/// A "Key:   123 kB" line of /proc/<pid>/status (key with its colon), in KiB; -1 if absent.
/// `pid` is a number or "self".
inline long ProcessStatusKib(const std::string& pid, const char* key) {
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  }
  return -1;
}

/// A "Key:   123 kB" line of /proc/self/status (key with its colon), in KiB; -1 if absent.
inline long SelfStatusKib(const char* key) { return ProcessStatusKib("self", key); }

/// One thread's name and CPU time (user + system) so far.
struct ThreadCpu {
  int tid = 0;
  std::string comm;
  double cpu_seconds = 0;
};

/// The comm and utime + stime of a /proc/.../stat file; false if unreadable.
inline bool ReadStatCpu(const std::string& stat_path, std::string* comm, double* cpu_seconds) {
  std::ifstream in(stat_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  *comm = text.substr(open + 1, close - open - 1);
  // After "(comm) ": state is field 3; utime and stime are fields 14 and 15.
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  *cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return true;
}

/// CPU time (user + system) of process `pid` so far, all its threads (exited ones too); -1
/// when unreadable.
inline double ProcessCpuSeconds(int pid) {
  std::string comm;
  double seconds = 0;
  return ReadStatCpu("/proc/" + std::to_string(pid) + "/stat", &comm, &seconds) ? seconds : -1;
}

/// Every live thread of process `pid` with its CPU time so far.
inline std::vector<ThreadCpu> ThreadCpuTimes(int pid) {
  std::vector<ThreadCpu> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* ent = readdir(d)) {
    if (ent->d_name[0] == '.') continue;
    ThreadCpu t;
    t.tid = std::atoi(ent->d_name);
    if (ReadStatCpu(dir + "/" + ent->d_name + "/stat", &t.comm, &t.cpu_seconds)) {
      out.push_back(t);
    }
  }
  closedir(d);
  return out;
}

}  // namespace vigil::bench
