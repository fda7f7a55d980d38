#include "node/probes/monitored_bits.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace vigil::node {

uint32_t MonitoredWordsFor(const std::string& pid_max_path, uint32_t max_words) {
  std::ifstream in(pid_max_path);
  std::string text;
  uint64_t pid_max = 0;
  if (!std::getline(in, text) || !absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid_max) ||
      pid_max == 0) {
    return max_words;
  }
  // pids run from 1 to pid_max - 1.
  const uint64_t words = (pid_max + 63) / 64;
  return words < max_words ? static_cast<uint32_t>(words) : max_words;
}

absl::StatusOr<MonitoredBits> MonitoredBits::Map(int map_fd, uint32_t words) {
  if (words == 0) return absl::InvalidArgumentError("monitored bitmap of 0 words");
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t length = (static_cast<size_t>(words) * sizeof(uint64_t) + page - 1) / page * page;
  void* addr = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (addr == MAP_FAILED) {
    return absl::InternalError(
        absl::StrCat("mapping the monitored-pid bitmap: ", std::strerror(errno)));
  }
  return MonitoredBits(static_cast<uint64_t*>(addr), words, length);
}

MonitoredBits::MonitoredBits(MonitoredBits&& other) noexcept
    : words_(std::exchange(other.words_, nullptr)),
      count_(std::exchange(other.count_, 0)),
      length_(std::exchange(other.length_, 0)) {}

MonitoredBits& MonitoredBits::operator=(MonitoredBits&& other) noexcept {
  if (this != &other) {
    Unmap();
    words_ = std::exchange(other.words_, nullptr);
    count_ = std::exchange(other.count_, 0);
    length_ = std::exchange(other.length_, 0);
  }
  return *this;
}

MonitoredBits::~MonitoredBits() { Unmap(); }

void MonitoredBits::Unmap() {
  if (words_ != nullptr) munmap(words_, length_);
  words_ = nullptr;
}

bool MonitoredBits::Set(uint32_t pid) {
  if (words_ == nullptr || pid / 64 >= count_) return false;
  std::atomic_ref<uint64_t>(words_[pid / 64]).fetch_or(uint64_t{1} << (pid % 64));
  return true;
}

bool MonitoredBits::Test(uint32_t pid) const {
  if (words_ == nullptr || pid / 64 >= count_) return false;
  return (std::atomic_ref<uint64_t>(words_[pid / 64]).load() >> (pid % 64)) & 1;
}

}  // namespace vigil::node
