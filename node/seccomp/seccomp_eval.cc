#include "node/seccomp/seccomp_eval.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "node/seccomp/syscall_table.h"

namespace vigil::node {
namespace {

constexpr uint32_t kSeccompDataSize = sizeof(seccomp_data);  // 64
constexpr uint32_t kMemWords = 16;                           // BPF_MEMWORDS
constexpr uint32_t kMaxErrno = 4095;                         // MAX_ERRNO
constexpr uint32_t kArgumentsOffset = offsetof(seccomp_data, instruction_pointer);

static_assert(kSeccompDataSize == 64);
static_assert(sizeof(sock_filter) == 8);

// Opcodes the kernel accepts in a seccomp filter: the intersection of bpf_check_classic's
// table and seccomp_check_filter's list. Notably absent: BPF_MOD, BPF_H/BPF_B loads,
// BPF_IND loads and BPF_LDX|BPF_B|BPF_MSH (packet access).
// clang-format off
constexpr uint16_t kSeccompOpcodes[] = {
    BPF_LD | BPF_W | BPF_ABS,   BPF_LD | BPF_W | BPF_LEN,   BPF_LDX | BPF_W | BPF_LEN,
    BPF_RET | BPF_K,            BPF_RET | BPF_A,            BPF_ALU | BPF_NEG,
    BPF_ALU | BPF_ADD | BPF_K,  BPF_ALU | BPF_ADD | BPF_X,  BPF_ALU | BPF_SUB | BPF_K,
    BPF_ALU | BPF_SUB | BPF_X,  BPF_ALU | BPF_MUL | BPF_K,  BPF_ALU | BPF_MUL | BPF_X,
    BPF_ALU | BPF_DIV | BPF_K,  BPF_ALU | BPF_DIV | BPF_X,  BPF_ALU | BPF_AND | BPF_K,
    BPF_ALU | BPF_AND | BPF_X,  BPF_ALU | BPF_OR | BPF_K,   BPF_ALU | BPF_OR | BPF_X,
    BPF_ALU | BPF_XOR | BPF_K,  BPF_ALU | BPF_XOR | BPF_X,  BPF_ALU | BPF_LSH | BPF_K,
    BPF_ALU | BPF_LSH | BPF_X,  BPF_ALU | BPF_RSH | BPF_K,  BPF_ALU | BPF_RSH | BPF_X,
    BPF_LD | BPF_IMM,           BPF_LDX | BPF_IMM,          BPF_MISC | BPF_TAX,
    BPF_MISC | BPF_TXA,         BPF_LD | BPF_MEM,           BPF_LDX | BPF_MEM,
    BPF_ST,                     BPF_STX,                    BPF_JMP | BPF_JA,
    BPF_JMP | BPF_JEQ | BPF_K,  BPF_JMP | BPF_JEQ | BPF_X,  BPF_JMP | BPF_JGE | BPF_K,
    BPF_JMP | BPF_JGE | BPF_X,  BPF_JMP | BPF_JGT | BPF_K,  BPF_JMP | BPF_JGT | BPF_X,
    BPF_JMP | BPF_JSET | BPF_K, BPF_JMP | BPF_JSET | BPF_X,
};
// clang-format on

bool SeccompAllows(uint16_t code) {
  return std::find(std::begin(kSeccompOpcodes), std::end(kSeccompOpcodes), code) !=
         std::end(kSeccompOpcodes);
}

// For an allowed opcode: JEQ, JGE, JGT or JSET (every jump class opcode but JA).
bool IsConditionalJump(uint16_t code) {
  return BPF_CLASS(code) == BPF_JMP && BPF_OP(code) != BPF_JA;
}

absl::Status Invalid(size_t pc, const sock_filter& f, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrFormat("seccomp filter instruction %d {code=0x%04x jt=%d jf=%d k=0x%08x}: %s", pc,
                      f.code, f.jt, f.jf, f.k, why));
}

// bpf_check_classic's per-instruction checks plus seccomp_check_filter's.
absl::Status CheckInstructions(const std::vector<sock_filter>& insns) {
  const size_t len = insns.size();
  for (size_t pc = 0; pc < len; ++pc) {
    const sock_filter& f = insns[pc];
    if (!SeccompAllows(f.code)) {
      return Invalid(pc, f, "opcode not allowed in a seccomp filter");
    }
    switch (f.code) {
      case BPF_ALU | BPF_DIV | BPF_K:
        if (f.k == 0) return Invalid(pc, f, "division by constant zero");
        break;
      case BPF_ALU | BPF_LSH | BPF_K:
      case BPF_ALU | BPF_RSH | BPF_K:
        if (f.k >= 32) return Invalid(pc, f, "shift by 32 or more");
        break;
      case BPF_LD | BPF_MEM:
      case BPF_LDX | BPF_MEM:
      case BPF_ST:
      case BPF_STX:
        if (f.k >= kMemWords) return Invalid(pc, f, "scratch memory index out of range");
        break;
      case BPF_JMP | BPF_JA:
        if (f.k >= len - pc - 1) return Invalid(pc, f, "jump out of range");
        break;
      case BPF_LD | BPF_W | BPF_ABS:
        if (f.k >= kSeccompDataSize) return Invalid(pc, f, "load offset outside seccomp_data");
        if (f.k & 3) return Invalid(pc, f, "misaligned load");
        break;
      default:
        if (IsConditionalJump(f.code) && (pc + f.jt + 1 >= len || pc + f.jf + 1 >= len)) {
          return Invalid(pc, f, "jump out of range");
        }
        break;
    }
  }
  return absl::OkStatus();
}

// The kernel's check_load_and_stores: a scratch word may be loaded only when every path to
// the load stored it first. Mirrors the kernel's forward data-flow pass exactly, so the
// same programs are refused.
absl::Status CheckLoadsAfterStores(const std::vector<sock_filter>& insns) {
  std::vector<uint16_t> masks(insns.size(), 0xffff);
  uint16_t valid = 0;
  for (size_t pc = 0; pc < insns.size(); ++pc) {
    const sock_filter& f = insns[pc];
    valid &= masks[pc];
    switch (f.code) {
      case BPF_ST:
      case BPF_STX:
        valid |= static_cast<uint16_t>(1u << f.k);
        break;
      case BPF_LD | BPF_MEM:
      case BPF_LDX | BPF_MEM:
        if (!(valid & (1u << f.k))) {
          return Invalid(pc, f, "scratch memory read before it is written");
        }
        break;
      case BPF_JMP | BPF_JA:
        masks[pc + 1 + f.k] &= valid;
        valid = 0xffff;
        break;
      default:
        if (IsConditionalJump(f.code)) {
          masks[pc + 1 + f.jt] &= valid;
          masks[pc + 1 + f.jf] &= valid;
          valid = 0xffff;
        }
        break;
    }
  }
  return absl::OkStatus();
}

// seccomp_data as the 16 native-endian 32-bit words BPF_LD|BPF_W|BPF_ABS reads.
std::array<uint32_t, 16> Words(const seccomp_data& data) {
  std::array<uint32_t, 16> words;
  static_assert(sizeof(words) == sizeof(data));
  std::memcpy(words.data(), &data, sizeof(data));
  return words;
}

// The 32-bit ALU operation `op` (BPF_OP of a validated opcode) on A; shifts use the low
// five bits of the operand, as the kernel's interpreter and JITs do.
uint32_t Alu(uint16_t op, uint32_t a, uint32_t v) {
  switch (op) {
    case BPF_ADD:
      return a + v;
    case BPF_SUB:
      return a - v;
    case BPF_MUL:
      return a * v;
    case BPF_DIV:
      return a / v;
    case BPF_AND:
      return a & v;
    case BPF_OR:
      return a | v;
    case BPF_XOR:
      return a ^ v;
    case BPF_LSH:
      return a << (v & 31);
    case BPF_RSH:
      return a >> (v & 31);
    case BPF_NEG:
      return 0u - a;
    default:
      std::abort();  // Create() admits no other ALU operation.
  }
}

// Whether the conditional jump `op` (BPF_OP of a validated opcode) is taken.
bool JumpTaken(uint16_t op, uint32_t a, uint32_t v) {
  switch (op) {
    case BPF_JEQ:
      return a == v;
    case BPF_JGE:
      return a >= v;
    case BPF_JGT:
      return a > v;
    case BPF_JSET:
      return (a & v) != 0;
    default:
      std::abort();  // Create() admits no other jump.
  }
}

// The verdicts for every (syscall, ABI) pair that exists, `decide(abi, nr)` giving the
// decision for the ABI's seccomp_data.nr; the layout EvaluateSyscalls documents.
template <typename Decide>
absl::StatusOr<std::vector<v1::SyscallVerdict>> VerdictsPerAbi(
    std::span<const std::string> syscalls, const AbiAvailability& availability, Decide decide) {
  RETURN_IF_ERROR(CheckSyscallNames(syscalls));
  std::vector<v1::SyscallVerdict> verdicts;
  verdicts.reserve(syscalls.size() * std::size(kSyscallAbis));
  for (const std::string& name : syscalls) {
    std::optional<v1::SeccompAction> native;
    for (SyscallAbi abi : kSyscallAbis) {
      const std::optional<int> nr = SyscallNumber(abi, name);
      if (!nr) continue;
      const SeccompDecision d = decide(abi, *nr);
      v1::SyscallVerdict& v = verdicts.emplace_back();
      v.set_syscall(name);
      v.set_number(*nr);
      v.set_arch(std::string(AbiName(abi)));
      v.set_action(d.action);
      v.set_data(d.data);
      v.set_argument_dependent(d.argument_dependent);
      if (abi == SyscallAbi::kX86_64) {
        native = d.action;
      } else {
        v.set_bypass(native && !LetsSyscallRun(*native) && LetsSyscallRun(d.action));
      }
      if (std::optional<bool> available = availability.Of(abi)) v.set_abi_available(*available);
    }
  }
  return verdicts;
}

// The seccomp_data.nr values strict mode allows for `abi`: mode1_syscalls for native
// syscalls, mode1_syscalls_32 (i386 numbers) for every compat syscall, x32 included.
std::array<int, 4> StrictModeAllowed(SyscallAbi abi) {
  auto numbers = [](SyscallAbi table, std::array<std::string_view, 4> names) {
    std::array<int, 4> out;
    for (size_t i = 0; i < names.size(); ++i) out[i] = *SyscallNumber(table, names[i]);
    return out;
  };
  if (abi == SyscallAbi::kX86_64) {
    return numbers(SyscallAbi::kX86_64, {"read", "write", "exit", "rt_sigreturn"});
  }
  return numbers(SyscallAbi::kI386, {"read", "write", "exit", "sigreturn"});
}

}  // namespace

absl::StatusOr<SeccompProgram> SeccompProgram::Create(std::vector<sock_filter> insns) {
  if (insns.empty() || insns.size() > kMaxSeccompInstructions) {
    return absl::InvalidArgumentError(absl::StrCat("seccomp filter has ", insns.size(),
                                                   " instructions; the kernel accepts 1 to ",
                                                   kMaxSeccompInstructions));
  }
  if (absl::Status s = CheckInstructions(insns); !s.ok()) return s;
  const sock_filter& last = insns.back();
  if (last.code != (BPF_RET | BPF_K) && last.code != (BPF_RET | BPF_A)) {
    return Invalid(insns.size() - 1, last, "the last instruction is not a RET");
  }
  if (absl::Status s = CheckLoadsAfterStores(insns); !s.ok()) return s;
  return SeccompProgram(std::move(insns));
}

absl::StatusOr<SeccompProgram> SeccompProgram::FromBytes(std::string_view bytes) {
  if (bytes.size() % sizeof(sock_filter) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("seccomp filter of ", bytes.size(),
                                                   " bytes is not a whole number of ",
                                                   sizeof(sock_filter), "-byte instructions"));
  }
  if (bytes.size() > kMaxSeccompInstructions * sizeof(sock_filter)) {
    return absl::InvalidArgumentError(
        absl::StrCat("seccomp filter has ", bytes.size() / sizeof(sock_filter),
                     " instructions; the kernel accepts 1 to ", kMaxSeccompInstructions));
  }
  std::vector<sock_filter> insns(bytes.size() / sizeof(sock_filter));
  if (!insns.empty()) std::memcpy(insns.data(), bytes.data(), bytes.size());
  return Create(std::move(insns));
}

std::string SeccompProgram::Bytes() const {
  return std::string(reinterpret_cast<const char*>(insns_.data()),
                     insns_.size() * sizeof(sock_filter));
}

FilterResult SeccompProgram::Run(const seccomp_data& data) const {
  const std::array<uint32_t, 16> words = Words(data);
  uint32_t a = 0;
  uint32_t x = 0;
  std::array<uint32_t, kMemWords> mem{};
  bool read_arguments = false;
  for (size_t pc = 0; pc < insns_.size(); ++pc) {
    const sock_filter& f = insns_[pc];
    const uint32_t operand = BPF_SRC(f.code) == BPF_X ? x : f.k;
    switch (BPF_CLASS(f.code)) {
      case BPF_ALU:
        // The kernel's classic-to-eBPF conversion returns 0 on division by zero (X only:
        // a constant zero divisor is refused by Create()).
        if (BPF_OP(f.code) == BPF_DIV && operand == 0) return {0, read_arguments};
        a = Alu(BPF_OP(f.code), a, operand);
        continue;
      case BPF_JMP:
        if (BPF_OP(f.code) == BPF_JA) {
          pc += f.k;
        } else {
          pc += JumpTaken(BPF_OP(f.code), a, operand) ? f.jt : f.jf;
        }
        continue;
      case BPF_RET:
        return {BPF_RVAL(f.code) == BPF_A ? a : f.k, read_arguments};
      default:
        break;
    }
    switch (f.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        if (f.k >= kArgumentsOffset) read_arguments = true;
        a = words[f.k / 4];
        break;
      case BPF_LD | BPF_W | BPF_LEN:
        a = kSeccompDataSize;
        break;
      case BPF_LDX | BPF_W | BPF_LEN:
        x = kSeccompDataSize;
        break;
      case BPF_LD | BPF_IMM:
        a = f.k;
        break;
      case BPF_LDX | BPF_IMM:
        x = f.k;
        break;
      case BPF_LD | BPF_MEM:
        a = mem[f.k];
        break;
      case BPF_LDX | BPF_MEM:
        x = mem[f.k];
        break;
      case BPF_ST:
        mem[f.k] = a;
        break;
      case BPF_STX:
        mem[f.k] = x;
        break;
      case BPF_MISC | BPF_TAX:
        x = a;
        break;
      case BPF_MISC | BPF_TXA:
        a = x;
        break;
      default:
        std::abort();  // Create() admits no other opcode.
    }
  }
  // Create() guarantees forward, in-range jumps and a final RET, so every path returns.
  std::abort();
}

v1::SeccompAction ActionOf(uint32_t ret) {
  switch (ret & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_KILL_PROCESS:
      return v1::SECCOMP_ACTION_KILL_PROCESS;
    case SECCOMP_RET_KILL_THREAD:
      return v1::SECCOMP_ACTION_KILL_THREAD;
    case SECCOMP_RET_TRAP:
      return v1::SECCOMP_ACTION_TRAP;
    case SECCOMP_RET_ERRNO:
      return v1::SECCOMP_ACTION_ERRNO;
    case SECCOMP_RET_USER_NOTIF:
      return v1::SECCOMP_ACTION_USER_NOTIF;
    case SECCOMP_RET_TRACE:
      return v1::SECCOMP_ACTION_TRACE;
    case SECCOMP_RET_LOG:
      return v1::SECCOMP_ACTION_LOG;
    case SECCOMP_RET_ALLOW:
      return v1::SECCOMP_ACTION_ALLOW;
    default:
      // __seccomp_filter's default case: an unknown action kills the process.
      return v1::SECCOMP_ACTION_KILL_PROCESS;
  }
}

SeccompDecision EvaluateStack(std::span<const SeccompProgram> filters, const seccomp_data& data) {
  // seccomp_run_filters: ACTION_ONLY(ret) compared as signed 32-bit, strictly less wins.
  auto action_only = [](uint32_t ret) {
    return static_cast<int32_t>(ret & SECCOMP_RET_ACTION_FULL);
  };
  SeccompDecision d;
  uint32_t ret = SECCOMP_RET_ALLOW;
  for (const SeccompProgram& filter : filters) {
    FilterResult r = filter.Run(data);
    d.argument_dependent |= r.read_arguments;
    if (action_only(r.ret) < action_only(ret)) ret = r.ret;
  }
  d.ret = ret;
  d.action = ActionOf(ret);
  const uint32_t bits = ret & SECCOMP_RET_DATA;
  switch (d.action) {
    case v1::SECCOMP_ACTION_ERRNO:
      d.data = bits > kMaxErrno ? kMaxErrno : bits;
      break;
    case v1::SECCOMP_ACTION_TRAP:
    case v1::SECCOMP_ACTION_TRACE:
    case v1::SECCOMP_ACTION_USER_NOTIF:
      d.data = bits;
      break;
    default:
      d.data = 0;
      break;
  }
  return d;
}

std::optional<bool> AbiAvailability::Of(SyscallAbi abi) const {
  switch (abi) {
    case SyscallAbi::kX86_64:
      return true;
    case SyscallAbi::kI386:
      return i386;
    case SyscallAbi::kX32:
      return x32;
  }
  std::abort();  // every enumerator is handled above
}

bool LetsSyscallRun(v1::SeccompAction action) {
  return action == v1::SECCOMP_ACTION_ALLOW || action == v1::SECCOMP_ACTION_LOG;
}

absl::Status CheckSyscallNames(std::span<const std::string> syscalls) {
  for (const std::string& name : syscalls) {
    if (std::none_of(std::begin(kSyscallAbis), std::end(kSyscallAbis),
                     [&name](SyscallAbi abi) { return SyscallNumber(abi, name).has_value(); })) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown syscall '", name, "' (not an x86_64, i386 or x32 syscall)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::SyscallVerdict>> EvaluateSyscalls(
    std::span<const SeccompProgram> filters, std::span<const std::string> syscalls,
    const AbiAvailability& availability) {
  return VerdictsPerAbi(syscalls, availability, [filters](SyscallAbi abi, int nr) {
    seccomp_data data{};
    data.nr = nr;
    data.arch = AuditArch(abi);
    return EvaluateStack(filters, data);
  });
}

absl::StatusOr<std::vector<v1::SyscallVerdict>> StrictModeVerdicts(
    std::span<const std::string> syscalls, const AbiAvailability& availability) {
  return VerdictsPerAbi(syscalls, availability, [](SyscallAbi abi, int nr) {
    // __secure_computing_strict: anything not on the list ends in do_exit(SIGKILL).
    const std::array<int, 4> allowed = StrictModeAllowed(abi);
    SeccompDecision d;
    if (std::find(allowed.begin(), allowed.end(), nr) != allowed.end()) {
      d.ret = SECCOMP_RET_ALLOW;
      d.action = v1::SECCOMP_ACTION_ALLOW;
    } else {
      d.ret = SECCOMP_RET_KILL_THREAD;
      d.action = v1::SECCOMP_ACTION_KILL_THREAD;
    }
    return d;
  });
}

}  // namespace vigil::node
