#pragma once

// A pure interpreter for classic-BPF seccomp filters: it validates a program exactly as the
// kernel does when the filter is installed (bpf_check_classic + seccomp_check_filter), runs
// it against a struct seccomp_data as the kernel runs it, and combines stacked filters as
// seccomp_run_filters does. No system calls: it is safe on untrusted bytes.

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "node/seccomp/syscall_table.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// The largest program the kernel accepts (BPF_MAXINSNS).
inline constexpr size_t kMaxSeccompInstructions = 4096;

/// What one filter returned for one seccomp_data.
struct FilterResult {
  /// The raw 32-bit return value (action in the high 16 bits, data in the low 16).
  uint32_t ret = 0;
  /// Whether the path taken loaded instruction_pointer or an argument (offset >= 8), so a
  /// different instruction pointer or different arguments could change `ret`.
  bool read_arguments = false;
};

/// A classic-BPF program that the kernel would accept as a seccomp filter. Only `Create`
/// and `FromBytes` make one, so every instance is valid and `Run` always terminates.
class SeccompProgram {
 public:
  /// Validates `insns` with the kernel's rules: 1..4096 instructions; only the opcodes
  /// seccomp allows (no packet loads, no MOD); BPF_LD|BPF_W|BPF_ABS only at 4-byte aligned
  /// offsets inside seccomp_data; DIV by a zero constant and shifts by >= 32 refused;
  /// scratch memory M[0..15] only, never read before it is written on every path; jumps
  /// forward and in range; the last instruction a RET. Fails with InvalidArgument naming
  /// the instruction and the rule it breaks.
  static absl::StatusOr<SeccompProgram> Create(std::vector<sock_filter> insns);

  /// Parses the bytes PTRACE_SECCOMP_GET_FILTER copies out (an array of struct
  /// sock_filter, 8 bytes each, native byte order), then validates as `Create` does.
  static absl::StatusOr<SeccompProgram> FromBytes(std::string_view bytes);

  /// Runs the program on `data` as the kernel does: 32-bit A and X start at zero, loads
  /// read native-endian words of seccomp_data, DIV by X == 0 returns 0 (KILL_THREAD),
  /// shifts by X use the low five bits of X.
  FilterResult Run(const seccomp_data& data) const;

  /// The validated instructions.
  const std::vector<sock_filter>& instructions() const { return insns_; }

  /// The program's bytes exactly as the kernel hands them out (8 bytes per instruction).
  std::string Bytes() const;

 private:
  explicit SeccompProgram(std::vector<sock_filter> insns) : insns_(std::move(insns)) {}

  std::vector<sock_filter> insns_;
};

/// The outcome of all stacked filters for one seccomp_data.
struct SeccompDecision {
  /// The winning raw return value.
  uint32_t ret = SECCOMP_RET_ALLOW;
  /// The action the kernel takes for `ret` (an action value the kernel does not know is
  /// treated by the kernel as KILL_PROCESS, and reported so).
  v1::SeccompAction action = v1::SECCOMP_ACTION_ALLOW;
  /// ERRNO: the errno the syscall fails with (the kernel caps it at 4095). TRAP, TRACE,
  /// USER_NOTIF: the 16 data bits. Otherwise 0.
  uint32_t data = 0;
  /// True when some filter's path read instruction_pointer or arguments.
  bool argument_dependent = false;
};

/// The action the kernel takes for a filter's raw return value.
v1::SeccompAction ActionOf(uint32_t ret);

/// Runs every filter of a stack, `filters` ordered most recently installed first (the
/// order the kernel walks them), and keeps the return value whose action has the highest
/// precedence (the lowest value as a signed 32-bit action: KILL_PROCESS > KILL_THREAD >
/// TRAP > ERRNO > USER_NOTIF > TRACE > LOG > ALLOW); between equal actions the most
/// recently installed filter's value wins. An empty stack allows everything.
SeccompDecision EvaluateStack(std::span<const SeccompProgram> filters, const seccomp_data& data);

/// Whether the kernel executes syscalls of each ABI; nullopt where that is not known.
/// x86_64, the native ABI, always runs.
struct AbiAvailability {
  std::optional<bool> i386;
  std::optional<bool> x32;

  /// What is known about `abi`.
  std::optional<bool> Of(SyscallAbi abi) const;
};

/// True for the actions under which the kernel runs the syscall as asked, whatever anyone
/// else does: ALLOW and LOG.
bool LetsSyscallRun(v1::SeccompAction action);

/// Fails with InvalidArgument naming the first of `syscalls` that is a syscall of none of
/// the ABIs (x86_64, i386, x32).
absl::Status CheckSyscallNames(std::span<const std::string> syscalls);

/// Evaluates the stack for each named syscall through every ABI that has a syscall of that
/// name, with instruction_pointer 0 and all arguments 0: x86_64 (arch AUDIT_ARCH_X86_64, the
/// x86_64 number), i386 (AUDIT_ARCH_I386, the i386 number) and x32 (AUDIT_ARCH_X86_64, the
/// x32 number | 0x40000000). Verdicts come per syscall in the order given, and for one
/// syscall in kSyscallAbis order. A non-native verdict is marked `bypass` when it lets the
/// syscall run (LetsSyscallRun) and the x86_64 verdict does not; `abi_available` is copied
/// from `availability` (unset when unknown). Fails as CheckSyscallNames does.
absl::StatusOr<std::vector<v1::SyscallVerdict>> EvaluateSyscalls(
    std::span<const SeccompProgram> filters, std::span<const std::string> syscalls,
    const AbiAvailability& availability);

/// The verdicts of strict mode (SECCOMP_MODE_STRICT), laid out as EvaluateSyscalls lays
/// them out. x86_64: read, write, exit and rt_sigreturn are allowed. Every compat syscall
/// (i386 and x32 alike: the kernel's in_compat_syscall()) is checked against the i386
/// numbers of read, write, exit and sigreturn (mode1_syscalls_32), so i386 read, write, exit
/// and sigreturn are allowed and every x32 syscall, whose number carries the x32 bit,
/// matches none. Everything else kills the thread.
absl::StatusOr<std::vector<v1::SyscallVerdict>> StrictModeVerdicts(
    std::span<const std::string> syscalls, const AbiAvailability& availability);

}  // namespace vigil::node
