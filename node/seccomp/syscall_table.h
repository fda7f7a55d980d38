#pragma once

// Syscall names and numbers for the three ABIs an x86_64 kernel can offer a process, as
// seccomp sees them: native x86_64, i386 (32-bit compat) and x32. The tables are generated
// from the kernel's uapi headers (cmake/GenerateSyscallTables.cmake).

#include <cstdint>
#include <optional>
#include <string_view>

namespace vigil::node {

/// AUDIT_ARCH_X86_64: the `arch` seccomp_data carries for native x86_64 and for x32 syscalls.
inline constexpr uint32_t kAuditArchX86_64 = 0xC000003E;

/// AUDIT_ARCH_I386: the `arch` seccomp_data carries for i386 syscalls (`int $0x80` from a
/// 64-bit process, or any syscall of a 32-bit process).
inline constexpr uint32_t kAuditArchI386 = 0x40000003;

/// __X32_SYSCALL_BIT: set in the `nr` of every x32 syscall.
inline constexpr uint32_t kX32SyscallBit = 0x40000000;

/// A syscall ABI of an x86_64 kernel.
enum class SyscallAbi {
  kX86_64,  // the native ABI (the `syscall` instruction, 64-bit numbers)
  kI386,    // 32-bit compat: CONFIG_IA32_EMULATION, i386 numbers
  kX32,     // CONFIG_X86_X32_ABI: x86_64 arch, nr with kX32SyscallBit
};

/// Every ABI, native first: the order in which verdicts for one syscall are reported.
inline constexpr SyscallAbi kSyscallAbis[] = {SyscallAbi::kX86_64, SyscallAbi::kI386,
                                              SyscallAbi::kX32};

/// "x86_64", "i386" or "x32": the name SyscallVerdict.arch uses.
std::string_view AbiName(SyscallAbi abi);

/// The seccomp_data.arch value of a syscall made through `abi`.
uint32_t AuditArch(SyscallAbi abi);

/// The seccomp_data.nr of syscall `name` made through `abi` (for x32 including
/// kX32SyscallBit: "ptrace" -> 0x40000209), or nullopt when that ABI has no syscall of that
/// name. Names are the kernel's, without the `__NR_` prefix.
std::optional<int> SyscallNumber(SyscallAbi abi, std::string_view name);

/// The name of the syscall whose seccomp_data.nr is `number` in `abi`, or nullopt when the
/// number is unassigned there (for x32: also when kX32SyscallBit is not set).
std::optional<std::string_view> SyscallName(SyscallAbi abi, int number);

/// The x86_64 syscall number of `name` ("ptrace" -> 101), or nullopt when x86_64 has no
/// syscall of that name.
std::optional<int> SyscallNumber(std::string_view name);

/// The x86_64 syscall name for `number`, or nullopt when the number is unassigned.
std::optional<std::string_view> SyscallName(int number);

}  // namespace vigil::node
