// libFuzzer harness for the seccomp evaluator: random stacks of classic-BPF programs (raw
// bytes, or instructions built from the opcodes seccomp knows so that more of them pass
// validation) run against random seccomp_data. Must never crash, hang or trip a sanitizer,
// and every accepted program must behave as the kernel's would in the ways checked below.
//
// Input layout (so seeds can be written by hand; see docs/seccomp.md):
//   front: up to three filters, each a little-endian u16 instruction count followed by that
//          many instructions: raw mode 8 bytes each (struct sock_filter), structured mode 4
//          bytes each (opcode index, jt, jf, k selector);
//   back (read from the end, each value little-endian): u8 mode (bit 0 structured, bits 1-2
//          filter count - 1, bit 3 with arguments, bits 4-5 and 6-7 what the kernel is told
//          to run for i386 and x32: 0 unknown, 1 no, 2 or 3 yes), u32 nr, u8 arch selector
//          (0 x86_64, 1 i386, else a u32 arch follows), then with arguments: u64
//          instruction_pointer and six u64 arguments.
//
// Besides the single seccomp_data, the stack is evaluated by name for every ABI
// (EvaluateSyscalls): for a few fixed names and for whatever `nr` names in each ABI.

#include <fuzzer/FuzzedDataProvider.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/seccomp/seccomp_eval.h"
#include "node/seccomp/syscall_table.h"

namespace {

using vigil::node::SeccompDecision;
using vigil::node::SeccompProgram;

// Every opcode the kernel accepts in seccomp, and a few it refuses.
constexpr uint16_t kOpcodes[] = {
    BPF_LD | BPF_W | BPF_ABS,
    BPF_LD | BPF_W | BPF_LEN,
    BPF_LDX | BPF_W | BPF_LEN,
    BPF_RET | BPF_K,
    BPF_RET | BPF_A,
    BPF_ALU | BPF_ADD | BPF_K,
    BPF_ALU | BPF_ADD | BPF_X,
    BPF_ALU | BPF_SUB | BPF_K,
    BPF_ALU | BPF_SUB | BPF_X,
    BPF_ALU | BPF_MUL | BPF_K,
    BPF_ALU | BPF_MUL | BPF_X,
    BPF_ALU | BPF_DIV | BPF_K,
    BPF_ALU | BPF_DIV | BPF_X,
    BPF_ALU | BPF_AND | BPF_K,
    BPF_ALU | BPF_AND | BPF_X,
    BPF_ALU | BPF_OR | BPF_K,
    BPF_ALU | BPF_OR | BPF_X,
    BPF_ALU | BPF_XOR | BPF_K,
    BPF_ALU | BPF_XOR | BPF_X,
    BPF_ALU | BPF_LSH | BPF_K,
    BPF_ALU | BPF_LSH | BPF_X,
    BPF_ALU | BPF_RSH | BPF_K,
    BPF_ALU | BPF_RSH | BPF_X,
    BPF_ALU | BPF_NEG,
    BPF_LD | BPF_IMM,
    BPF_LDX | BPF_IMM,
    BPF_MISC | BPF_TAX,
    BPF_MISC | BPF_TXA,
    BPF_LD | BPF_MEM,
    BPF_LDX | BPF_MEM,
    BPF_ST,
    BPF_STX,
    BPF_JMP | BPF_JA,
    BPF_JMP | BPF_JEQ | BPF_K,
    BPF_JMP | BPF_JEQ | BPF_X,
    BPF_JMP | BPF_JGE | BPF_K,
    BPF_JMP | BPF_JGE | BPF_X,
    BPF_JMP | BPF_JGT | BPF_K,
    BPF_JMP | BPF_JGT | BPF_X,
    BPF_JMP | BPF_JSET | BPF_K,
    BPF_JMP | BPF_JSET | BPF_X,
    BPF_ALU | BPF_MOD | BPF_K,
    BPF_LD | BPF_H | BPF_ABS,
    BPF_LDX | BPF_B | BPF_MSH,
    0xffff,
};

// Constants worth trying as k: seccomp_data offsets, shift counts, scratch slots, syscall
// numbers and every action.
constexpr uint32_t kInteresting[] = {
    SECCOMP_RET_KILL_PROCESS,
    SECCOMP_RET_KILL_THREAD,
    SECCOMP_RET_TRAP | 1,
    SECCOMP_RET_ERRNO | 1,
    SECCOMP_RET_ERRNO | 0xffff,
    SECCOMP_RET_USER_NOTIF,
    SECCOMP_RET_TRACE | 2,
    SECCOMP_RET_LOG,
    SECCOMP_RET_ALLOW,
    0x00010000,
    0xffff0000,
    AUDIT_ARCH_X86_64,
    AUDIT_ARCH_I386,
    101,
    310,
    311,
    0xffffffff,
    0x80000000,
};

uint32_t PickK(uint8_t selector) {
  if (selector < 64) return selector;  // offsets, shifts, slots, small numbers
  return kInteresting[selector % (sizeof(kInteresting) / sizeof(kInteresting[0]))];
}

// Reads one filter from the front of `bytes` (advancing it) in the given mode.
std::string NextFilter(std::string_view* bytes, bool structured) {
  if (bytes->size() < 2) {
    std::string rest(*bytes);
    bytes->remove_prefix(bytes->size());
    return rest;
  }
  const size_t count = static_cast<uint8_t>((*bytes)[0]) | (static_cast<uint8_t>((*bytes)[1]) << 8);
  bytes->remove_prefix(2);
  if (!structured) {
    const size_t n = std::min(bytes->size(), count * sizeof(sock_filter));
    std::string raw(bytes->substr(0, n));
    bytes->remove_prefix(n);
    return raw;
  }
  std::vector<sock_filter> insns;
  while (insns.size() < count && bytes->size() >= 4) {
    const auto* b = reinterpret_cast<const uint8_t*>(bytes->data());
    sock_filter f;
    f.code = kOpcodes[b[0] % (sizeof(kOpcodes) / sizeof(kOpcodes[0]))];
    f.jt = b[1] % 8;
    f.jf = b[2] % 8;
    f.k = PickK(b[3]);
    insns.push_back(f);
    bytes->remove_prefix(4);
  }
  return std::string(reinterpret_cast<const char*>(insns.data()),
                     insns.size() * sizeof(sock_filter));
}

bool KnownAction(vigil::v1::SeccompAction a) {
  return a >= vigil::v1::SECCOMP_ACTION_ALLOW && a <= vigil::v1::SECCOMP_ACTION_USER_NOTIF;
}

std::optional<bool> Availability(uint8_t bits) {
  if (bits == 0) return std::nullopt;
  return bits >= 2;
}

// Checks the per-ABI verdicts of `names` against the stack evaluated by hand for each ABI's
// seccomp_data, and their layout: per name in order, ABIs in kSyscallAbis order, exactly
// the ABIs that have the name; `bypass` only where native denies and this ABI runs it;
// `abi_available` as given. Strict mode verdicts have the same layout and never a bypass.
void CheckAbiVerdicts(const std::vector<SeccompProgram>& stack,
                      const std::vector<std::string>& names,
                      const vigil::node::AbiAvailability& abis) {
  using vigil::node::SyscallAbi;
  auto verdicts = vigil::node::EvaluateSyscalls(stack, names, abis);
  auto strict = vigil::node::StrictModeVerdicts(names, abis);
  if (!verdicts.ok() || !strict.ok()) std::abort();  // every name is real
  if (strict->size() != verdicts->size()) std::abort();
  size_t i = 0;
  for (const std::string& name : names) {
    std::optional<vigil::v1::SeccompAction> native;
    for (SyscallAbi abi : vigil::node::kSyscallAbis) {
      const std::optional<int> nr = vigil::node::SyscallNumber(abi, name);
      if (!nr) continue;
      if (i >= verdicts->size()) std::abort();
      const vigil::v1::SyscallVerdict& v = (*verdicts)[i];
      const vigil::v1::SyscallVerdict& sv = (*strict)[i];
      ++i;
      if (v.syscall() != name || v.arch() != vigil::node::AbiName(abi) || v.number() != *nr) {
        std::abort();
      }
      if (sv.syscall() != name || sv.arch() != v.arch() || sv.number() != *nr || sv.bypass()) {
        std::abort();
      }
      if (vigil::node::SyscallName(abi, *nr) != name) std::abort();
      seccomp_data d{};
      d.nr = *nr;
      d.arch = vigil::node::AuditArch(abi);
      const SeccompDecision want = vigil::node::EvaluateStack(stack, d);
      if (v.action() != want.action || v.data() != want.data ||
          v.argument_dependent() != want.argument_dependent) {
        std::abort();
      }
      const bool bypass = abi != SyscallAbi::kX86_64 && native &&
                          !vigil::node::LetsSyscallRun(*native) &&
                          vigil::node::LetsSyscallRun(v.action());
      if (v.bypass() != bypass) std::abort();
      if (abi == SyscallAbi::kX86_64) native = v.action();
      const std::optional<bool> available = abis.Of(abi);
      if (v.has_abi_available() != available.has_value()) std::abort();
      if (available && v.abi_available() != *available) std::abort();
    }
  }
  if (i != verdicts->size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const uint8_t mode = fdp.ConsumeIntegral<uint8_t>();
  const bool structured = mode & 1;
  const int filter_count = 1 + ((mode >> 1) & 3) % 3;
  seccomp_data sd{};
  sd.nr = static_cast<int32_t>(fdp.ConsumeIntegral<uint32_t>());
  const uint8_t arch = fdp.ConsumeIntegral<uint8_t>();
  sd.arch = arch == 0   ? AUDIT_ARCH_X86_64
            : arch == 1 ? AUDIT_ARCH_I386
                        : fdp.ConsumeIntegral<uint32_t>();
  if (mode & 8) {
    sd.instruction_pointer = fdp.ConsumeIntegral<uint64_t>();
    for (auto& a : sd.args) a = fdp.ConsumeIntegral<uint64_t>();
  }
  const std::string front = fdp.ConsumeRemainingBytesAsString();
  std::string_view rest = front;

  std::vector<SeccompProgram> stack;
  for (int i = 0; i < filter_count; ++i) {
    const std::string bytes = NextFilter(&rest, structured);
    absl::StatusOr<SeccompProgram> p = SeccompProgram::FromBytes(bytes);
    if (!p.ok()) {
      // Refusals are InvalidArgument with a reason, never anything else.
      if (p.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
      if (p.status().message().empty()) std::abort();
      continue;
    }
    // What was accepted is exactly what was given.
    if (p->Bytes() != bytes) std::abort();
    if (p->instructions().empty() ||
        p->instructions().size() > vigil::node::kMaxSeccompInstructions)
      std::abort();
    stack.push_back(*std::move(p));
  }

  const SeccompDecision d = vigil::node::EvaluateStack(stack, sd);
  if (!KnownAction(d.action)) std::abort();
  if (d.action == vigil::v1::SECCOMP_ACTION_ERRNO && d.data > 4095) std::abort();
  if (d.data > 0xffff) std::abort();

  // Recompute the stack by hand: the winner has the lowest signed action, newest first on
  // ties; a filter whose path read no argument returns the same for any arguments.
  seccomp_data other = sd;
  other.instruction_pointer = ~sd.instruction_pointer;
  for (auto& a : other.args) a = ~a ^ 0x5a5a5a5a5a5a5a5aull;
  uint32_t want = SECCOMP_RET_ALLOW;
  bool reads = false;
  for (const SeccompProgram& p : stack) {
    const vigil::node::FilterResult r = p.Run(sd);
    if (r.ret != p.Run(sd).ret) std::abort();  // deterministic
    if (!r.read_arguments && p.Run(other).ret != r.ret) std::abort();
    reads |= r.read_arguments;
    if (static_cast<int32_t>(r.ret & SECCOMP_RET_ACTION_FULL) <
        static_cast<int32_t>(want & SECCOMP_RET_ACTION_FULL)) {
      want = r.ret;
    }
  }
  if (d.ret != want || d.argument_dependent != reads) std::abort();
  if (d.action != vigil::node::ActionOf(d.ret)) std::abort();

  // The syscall-name path over the same stack, for every ABI: a few fixed names and the
  // names `nr` has in each ABI.
  std::vector<std::string> names = {"ptrace", "process_vm_readv", "read", "sigreturn"};
  for (vigil::node::SyscallAbi abi : vigil::node::kSyscallAbis) {
    if (auto name = vigil::node::SyscallName(abi, static_cast<int>(sd.nr))) {
      names.emplace_back(*name);
    }
  }
  CheckAbiVerdicts(stack, names,
                   {.i386 = Availability((mode >> 4) & 3), .x32 = Availability(mode >> 6)});
  return 0;
}
