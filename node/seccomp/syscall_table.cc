#include "node/seccomp/syscall_table.h"

#include <algorithm>
#include <cstdlib>
#include <span>

namespace vigil::node {
namespace {

struct SyscallEntry {
  std::string_view name;
  int number;
};

#include "node/seccomp/syscall_table_data.inc"

constexpr bool OrderedByNumber(std::span<const SyscallEntry> table) {
  return std::is_sorted(
      table.begin(), table.end(),
      [](const SyscallEntry& a, const SyscallEntry& b) { return a.number < b.number; });
}
static_assert(OrderedByNumber(kX86_64Syscalls));
static_assert(OrderedByNumber(kI386Syscalls));
static_assert(OrderedByNumber(kX32Syscalls));

std::span<const SyscallEntry> Table(SyscallAbi abi) {
  switch (abi) {
    case SyscallAbi::kX86_64:
      return kX86_64Syscalls;
    case SyscallAbi::kI386:
      return kI386Syscalls;
    case SyscallAbi::kX32:
      return kX32Syscalls;
  }
  std::abort();  // every enumerator is handled above
}

// What the table stores for `abi` and what seccomp_data.nr carries differ only for x32.
int Flag(SyscallAbi abi) { return abi == SyscallAbi::kX32 ? static_cast<int>(kX32SyscallBit) : 0; }

}  // namespace

std::string_view AbiName(SyscallAbi abi) {
  switch (abi) {
    case SyscallAbi::kX86_64:
      return "x86_64";
    case SyscallAbi::kI386:
      return "i386";
    case SyscallAbi::kX32:
      return "x32";
  }
  std::abort();  // every enumerator is handled above
}

uint32_t AuditArch(SyscallAbi abi) {
  return abi == SyscallAbi::kI386 ? kAuditArchI386 : kAuditArchX86_64;
}

std::optional<int> SyscallNumber(SyscallAbi abi, std::string_view name) {
  std::span<const SyscallEntry> table = Table(abi);
  auto it = std::find_if(table.begin(), table.end(),
                         [name](const SyscallEntry& e) { return e.name == name; });
  if (it == table.end()) return std::nullopt;
  return it->number | Flag(abi);
}

std::optional<std::string_view> SyscallName(SyscallAbi abi, int number) {
  if ((number & static_cast<int>(kX32SyscallBit)) != Flag(abi)) return std::nullopt;
  std::span<const SyscallEntry> table = Table(abi);
  const int key = number & ~Flag(abi);
  auto it = std::lower_bound(table.begin(), table.end(), key,
                             [](const SyscallEntry& e, int n) { return e.number < n; });
  if (it == table.end() || it->number != key) return std::nullopt;
  return it->name;
}

std::optional<int> SyscallNumber(std::string_view name) {
  return SyscallNumber(SyscallAbi::kX86_64, name);
}

std::optional<std::string_view> SyscallName(int number) {
  return SyscallName(SyscallAbi::kX86_64, number);
}

}  // namespace vigil::node
