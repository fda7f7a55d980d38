#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace vigil::node {

/// Words of 64 pids the kernel's monitored-pid bitmap needs for pids up to the pid_max in
/// `pid_max_path` (/proc/sys/kernel/pid_max), at most `max_words` (the size the probes were
/// compiled with, which covers the largest pid_max Linux allows). An unreadable or malformed
/// file gives `max_words`: a bitmap too large is harmless, one too small only sends the pids
/// beyond it to the slower hash lookup.
uint32_t MonitoredWordsFor(const std::string& pid_max_path, uint32_t max_words);

/// User space's view of the probes' `monitored_bits` map (bpf/vigil_probes.bpf.c): the array
/// mapped into this process, bits set with atomic operations on the same words the BPF
/// programs update atomically, so neither side loses the other's change to a neighbouring
/// pid. Unmaps on destruction.
class MonitoredBits {
 public:
  /// Maps the BPF_F_MMAPABLE array map `map_fd` of `words` 64-bit values.
  static absl::StatusOr<MonitoredBits> Map(int map_fd, uint32_t words);

  MonitoredBits(MonitoredBits&& other) noexcept;
  MonitoredBits& operator=(MonitoredBits&& other) noexcept;
  MonitoredBits(const MonitoredBits&) = delete;
  MonitoredBits& operator=(const MonitoredBits&) = delete;
  ~MonitoredBits();

  /// Sets `pid`'s bit; false when the pid is beyond the bitmap (the hash alone holds it).
  bool Set(uint32_t pid);
  /// Whether `pid`'s bit is set.
  bool Test(uint32_t pid) const;

 private:
  MonitoredBits(uint64_t* words, uint32_t count, size_t length)
      : words_(words), count_(count), length_(length) {}
  void Unmap();

  uint64_t* words_ = nullptr;
  uint32_t count_ = 0;
  size_t length_ = 0;
};

}  // namespace vigil::node
