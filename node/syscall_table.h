#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vigil::node {

/// AUDIT_ARCH_X86_64: the `arch` value seccomp_data carries for native x86_64 syscalls.
inline constexpr uint32_t kAuditArchX86_64 = 0xC000003E;

/// The x86_64 syscall number of `name` ("ptrace" -> 101), or nullopt when x86_64 has no
/// syscall of that name. Names are the kernel's, without the `__NR_` prefix.
std::optional<int> SyscallNumber(std::string_view name);

/// The x86_64 syscall name for `number`, or nullopt when the number is unassigned.
std::optional<std::string_view> SyscallName(int number);

}  // namespace vigil::node
