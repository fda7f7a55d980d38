#pragma once

// A pure interpreter for classic-BPF seccomp filters: it validates a program exactly as the
// kernel does when the filter is installed (bpf_check_classic + seccomp_check_filter), runs
// it against a struct seccomp_data as the kernel runs it, and combines stacked filters as
// seccomp_run_filters does. No system calls: it is safe on untrusted bytes.

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
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

/// Evaluates the stack for each named x86_64 syscall with arch AUDIT_ARCH_X86_64,
/// instruction_pointer 0 and all arguments 0. Fails with InvalidArgument for a name that is
/// not an x86_64 syscall.
absl::StatusOr<std::vector<v1::SyscallVerdict>> EvaluateSyscalls(
    std::span<const SeccompProgram> filters, std::span<const std::string> syscalls);

/// The verdicts of strict mode (SECCOMP_MODE_STRICT): read, write, exit and rt_sigreturn
/// are allowed, every other syscall kills the thread. Fails like EvaluateSyscalls.
absl::StatusOr<std::vector<v1::SyscallVerdict>> StrictModeVerdicts(
    std::span<const std::string> syscalls);

}  // namespace vigil::node
