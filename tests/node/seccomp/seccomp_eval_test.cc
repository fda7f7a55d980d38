#include "node/seccomp/seccomp_eval.h"

#include <asm/unistd.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "node/seccomp/syscall_table.h"

namespace vigil::node {
namespace {

constexpr uint32_t kNr = offsetof(seccomp_data, nr);
constexpr uint32_t kArch = offsetof(seccomp_data, arch);
constexpr uint32_t kIp = offsetof(seccomp_data, instruction_pointer);
constexpr uint32_t kArg0 = offsetof(seccomp_data, args);

SeccompProgram Prog(std::vector<sock_filter> insns) {
  absl::StatusOr<SeccompProgram> p = SeccompProgram::Create(std::move(insns));
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return *SeccompProgram::Create({BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)});
  return *std::move(p);
}

// Kills anything that is not native x86_64, then returns `ret` for syscall `nr`, else ALLOW.
SeccompProgram OneRule(int nr, uint32_t ret) {
  return Prog({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, ret),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  });
}

seccomp_data Native(int nr) {
  seccomp_data d{};
  d.nr = nr;
  d.arch = AUDIT_ARCH_X86_64;
  return d;
}

// Every ABI's verdicts, the kernel's support for i386 and x32 unknown.
std::vector<v1::SyscallVerdict> AllVerdicts(const std::vector<SeccompProgram>& filters,
                                            std::vector<std::string> names,
                                            const AbiAvailability& abis = {}) {
  auto v = EvaluateSyscalls(filters, names, abis);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : std::vector<v1::SyscallVerdict>{};
}

// The x86_64 verdicts only.
std::vector<v1::SyscallVerdict> Verdicts(const std::vector<SeccompProgram>& filters,
                                         std::vector<std::string> names) {
  std::vector<v1::SyscallVerdict> native;
  for (v1::SyscallVerdict& v : AllVerdicts(filters, std::move(names))) {
    if (v.arch() == "x86_64") native.push_back(std::move(v));
  }
  return native;
}

// The verdict for `name` through `arch`, or nullptr.
const v1::SyscallVerdict* Find(const std::vector<v1::SyscallVerdict>& verdicts,
                               std::string_view name, std::string_view arch) {
  for (const auto& v : verdicts) {
    if (v.syscall() == name && v.arch() == arch) return &v;
  }
  return nullptr;
}

TEST(SyscallTableTest, MapsNamesAndNumbersBothWays) {
  EXPECT_EQ(SyscallNumber("read"), 0);
  EXPECT_EQ(SyscallNumber("ptrace"), SYS_ptrace);
  EXPECT_EQ(SyscallNumber("process_vm_readv"), SYS_process_vm_readv);
  EXPECT_EQ(SyscallNumber("process_vm_writev"), SYS_process_vm_writev);
  EXPECT_EQ(SyscallNumber("unshare"), SYS_unshare);
  EXPECT_EQ(SyscallName(SYS_finit_module), "finit_module");
  EXPECT_FALSE(SyscallNumber("no_such_call").has_value());
  EXPECT_FALSE(SyscallName(-1).has_value());
  EXPECT_FALSE(SyscallName(100000).has_value());
}

TEST(SyscallTableTest, MapsI386AndX32NamesAndNumbersAsSeccompSeesThem) {
  // arch/x86/entry/syscalls/syscall_32.tbl and syscall_64.tbl (x32 entries).
  EXPECT_EQ(SyscallNumber(SyscallAbi::kI386, "ptrace"), 26);
  EXPECT_EQ(SyscallNumber(SyscallAbi::kI386, "process_vm_readv"), 347);
  EXPECT_EQ(SyscallNumber(SyscallAbi::kI386, "process_vm_writev"), 348);
  EXPECT_EQ(SyscallNumber(SyscallAbi::kI386, "read"), 3);
  EXPECT_EQ(SyscallNumber(SyscallAbi::kI386, "sigreturn"), 119);
  EXPECT_EQ(SyscallNumber(SyscallAbi::kI386, "socketcall"), 102);
  EXPECT_EQ(SyscallName(SyscallAbi::kI386, 26), "ptrace");
  EXPECT_EQ(SyscallName(SyscallAbi::kI386, 101), "ioperm");
  // x86_64-only syscalls have no i386 number.
  EXPECT_FALSE(SyscallNumber(SyscallAbi::kI386, "kexec_file_load").has_value());
  EXPECT_FALSE(SyscallNumber(SyscallAbi::kI386, "newfstatat").has_value());
  EXPECT_EQ(SyscallNumber(SyscallAbi::kI386, "arch_prctl"), 384);

  // x32 numbers carry the x32 bit; most are x86_64's, some are x32's own 512+ numbers.
  EXPECT_EQ(SyscallNumber(SyscallAbi::kX32, "read"), 0x40000000);
  EXPECT_EQ(SyscallNumber(SyscallAbi::kX32, "getppid"), 0x40000000 | SYS_getppid);
  EXPECT_EQ(SyscallNumber(SyscallAbi::kX32, "bpf"), 0x40000000 | SYS_bpf);
  EXPECT_EQ(SyscallNumber(SyscallAbi::kX32, "ptrace"), 0x40000000 | 521);
  EXPECT_EQ(SyscallNumber(SyscallAbi::kX32, "process_vm_readv"), 0x40000000 | 539);
  EXPECT_EQ(SyscallNumber(SyscallAbi::kX32, "process_vm_writev"), 0x40000000 | 540);
  EXPECT_EQ(SyscallName(SyscallAbi::kX32, 0x40000000 | 521), "ptrace");
  EXPECT_FALSE(SyscallName(SyscallAbi::kX32, 521).has_value());  // no x32 bit
  EXPECT_FALSE(SyscallName(SyscallAbi::kX32, 0x40000000 | SYS_ptrace).has_value());
  EXPECT_FALSE(SyscallNumber(SyscallAbi::kX32, "uselib").has_value());
  EXPECT_FALSE(SyscallName(SyscallAbi::kX86_64, 0x40000000).has_value());

  EXPECT_EQ(AuditArch(SyscallAbi::kX86_64), AUDIT_ARCH_X86_64);
  EXPECT_EQ(AuditArch(SyscallAbi::kI386), AUDIT_ARCH_I386);
  EXPECT_EQ(AuditArch(SyscallAbi::kX32), AUDIT_ARCH_X86_64);
  EXPECT_EQ(kX32SyscallBit, static_cast<uint32_t>(__X32_SYSCALL_BIT));
  EXPECT_EQ(AbiName(SyscallAbi::kI386), "i386");
}

TEST(SeccompEvalTest, AllowListAllowsListedSyscallsAndKillsTheRest) {
  std::vector<SeccompProgram> f;
  f.push_back(Prog({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_read, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_write, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  }));
  auto v = Verdicts(f, {"read", "write", "ptrace"});
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].syscall(), "read");
  EXPECT_EQ(v[0].number(), SYS_read);
  EXPECT_EQ(v[0].arch(), "x86_64");
  EXPECT_EQ(v[0].action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_EQ(v[1].action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_EQ(v[2].action(), v1::SECCOMP_ACTION_KILL_PROCESS);
  EXPECT_EQ(v[2].number(), SYS_ptrace);
  for (const auto& x : v) EXPECT_FALSE(x.argument_dependent()) << x.syscall();
}

TEST(SeccompEvalTest, DenyListReturnsEpermForListedSyscalls) {
  std::vector<SeccompProgram> f;
  f.push_back(Prog({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  }));
  auto v = Verdicts(f, {"ptrace", "process_vm_readv", "process_vm_writev"});
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(v[0].data(), static_cast<uint32_t>(EPERM));
  EXPECT_EQ(v[1].action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(v[1].data(), static_cast<uint32_t>(EPERM));
  EXPECT_EQ(v[2].action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_EQ(v[2].data(), 0u);
}

TEST(SeccompEvalTest, ArchCheckKillsForeignArchitecture) {
  std::vector<SeccompProgram> f;
  f.push_back(OneRule(SYS_ptrace, SECCOMP_RET_ERRNO | EPERM));
  seccomp_data i386 = Native(SYS_getpid);
  i386.arch = AUDIT_ARCH_I386;
  EXPECT_EQ(EvaluateStack(f, i386).action, v1::SECCOMP_ACTION_KILL_PROCESS);
  EXPECT_EQ(EvaluateStack(f, Native(SYS_getpid)).action, v1::SECCOMP_ACTION_ALLOW);
  EXPECT_EQ(EvaluateStack(f, Native(SYS_ptrace)).action, v1::SECCOMP_ACTION_ERRNO);
}

TEST(SeccompEvalTest, KillBeatsErrnoAcrossStackedFiltersInEitherOrder) {
  SeccompProgram errno_filter = OneRule(SYS_ptrace, SECCOMP_RET_ERRNO | EPERM);
  SeccompProgram kill_filter = OneRule(SYS_ptrace, SECCOMP_RET_KILL_PROCESS);
  std::vector<SeccompProgram> kill_newest = {kill_filter, errno_filter};
  std::vector<SeccompProgram> errno_newest = {errno_filter, kill_filter};
  for (const auto* stack : {&kill_newest, &errno_newest}) {
    auto v = Verdicts(*stack, {"ptrace", "getpid"});
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].action(), v1::SECCOMP_ACTION_KILL_PROCESS);
    EXPECT_EQ(v[0].data(), 0u);
    EXPECT_EQ(v[1].action(), v1::SECCOMP_ACTION_ALLOW);
  }
}

TEST(SeccompEvalTest, EqualActionsTakeTheMostRecentFiltersData) {
  SeccompProgram older = OneRule(SYS_ptrace, SECCOMP_RET_ERRNO | EPERM);
  SeccompProgram newer = OneRule(SYS_ptrace, SECCOMP_RET_ERRNO | EACCES);
  SeccompDecision d = EvaluateStack(std::vector<SeccompProgram>{newer, older}, Native(SYS_ptrace));
  EXPECT_EQ(d.action, v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(d.data, static_cast<uint32_t>(EACCES));
  d = EvaluateStack(std::vector<SeccompProgram>{older, newer}, Native(SYS_ptrace));
  EXPECT_EQ(d.data, static_cast<uint32_t>(EPERM));
}

TEST(SeccompEvalTest, StackedActionsFollowKernelPrecedence) {
  // Highest precedence first, as the kernel orders them.
  const std::vector<std::pair<uint32_t, v1::SeccompAction>> order = {
      {SECCOMP_RET_KILL_PROCESS, v1::SECCOMP_ACTION_KILL_PROCESS},
      {SECCOMP_RET_KILL_THREAD, v1::SECCOMP_ACTION_KILL_THREAD},
      {SECCOMP_RET_TRAP | 7, v1::SECCOMP_ACTION_TRAP},
      {SECCOMP_RET_ERRNO | EPERM, v1::SECCOMP_ACTION_ERRNO},
      {SECCOMP_RET_USER_NOTIF, v1::SECCOMP_ACTION_USER_NOTIF},
      {SECCOMP_RET_TRACE | 9, v1::SECCOMP_ACTION_TRACE},
      {SECCOMP_RET_LOG, v1::SECCOMP_ACTION_LOG},
      {SECCOMP_RET_ALLOW, v1::SECCOMP_ACTION_ALLOW},
  };
  for (size_t i = 0; i < order.size(); ++i) {
    for (size_t j = 0; j < order.size(); ++j) {
      std::vector<SeccompProgram> stack = {OneRule(SYS_ptrace, order[i].first),
                                           OneRule(SYS_ptrace, order[j].first)};
      SeccompDecision d = EvaluateStack(stack, Native(SYS_ptrace));
      const size_t winner = std::min(i, j);
      EXPECT_EQ(d.action, order[winner].second) << i << " vs " << j;
      EXPECT_EQ(d.ret, order[winner].first) << i << " vs " << j;
    }
  }
}

TEST(SeccompEvalTest, ReportsTrapTraceLogAndUserNotifWithTheirData) {
  struct Case {
    uint32_t ret;
    v1::SeccompAction action;
    uint32_t data;
  };
  for (const Case& c : {Case{SECCOMP_RET_TRAP | 0x42, v1::SECCOMP_ACTION_TRAP, 0x42},
                        Case{SECCOMP_RET_TRACE | 0x1234, v1::SECCOMP_ACTION_TRACE, 0x1234},
                        Case{SECCOMP_RET_LOG | 0x5, v1::SECCOMP_ACTION_LOG, 0},
                        Case{SECCOMP_RET_USER_NOTIF | 3, v1::SECCOMP_ACTION_USER_NOTIF, 3},
                        Case{SECCOMP_RET_KILL_THREAD | 3, v1::SECCOMP_ACTION_KILL_THREAD, 0},
                        Case{SECCOMP_RET_ERRNO | 0xffff, v1::SECCOMP_ACTION_ERRNO, 4095}}) {
    std::vector<SeccompProgram> f = {OneRule(SYS_unshare, c.ret)};
    auto v = Verdicts(f, {"unshare"});
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].action(), c.action) << std::hex << c.ret;
    EXPECT_EQ(v[0].data(), c.data) << std::hex << c.ret;
  }
}

TEST(SeccompEvalTest, UnknownActionKillsTheProcessButKeepsItsRank) {
  constexpr uint32_t kUnknown = 0x00010000;  // between KILL_THREAD and TRAP
  SeccompDecision d =
      EvaluateStack(std::vector<SeccompProgram>{OneRule(SYS_ptrace, kUnknown)}, Native(SYS_ptrace));
  EXPECT_EQ(d.action, v1::SECCOMP_ACTION_KILL_PROCESS);
  d = EvaluateStack(std::vector<SeccompProgram>{OneRule(SYS_ptrace, kUnknown),
                                                OneRule(SYS_ptrace, SECCOMP_RET_KILL_THREAD)},
                    Native(SYS_ptrace));
  EXPECT_EQ(d.action, v1::SECCOMP_ACTION_KILL_THREAD);
  d = EvaluateStack(std::vector<SeccompProgram>{OneRule(SYS_ptrace, SECCOMP_RET_TRAP),
                                                OneRule(SYS_ptrace, kUnknown)},
                    Native(SYS_ptrace));
  EXPECT_EQ(d.ret, kUnknown);
}

TEST(SeccompEvalTest, MarksRulesThatReadArgumentsOrInstructionPointer) {
  std::vector<SeccompProgram> f = {Prog({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 3),
      // ptrace: only PTRACE_TRACEME (0) is allowed.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 4),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),  // unreachable filler
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpid, 0, 3),
      // getpid: decided by the instruction pointer.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kIp),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  })};
  auto v = Verdicts(f, {"ptrace", "getpid", "read"});
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_TRUE(v[0].argument_dependent());
  EXPECT_TRUE(v[1].argument_dependent());
  EXPECT_FALSE(v[2].argument_dependent());

  seccomp_data attach = Native(SYS_ptrace);
  attach.args[0] = 16;  // PTRACE_ATTACH
  EXPECT_EQ(EvaluateStack(f, attach).action, v1::SECCOMP_ACTION_ERRNO);
}

TEST(SeccompEvalTest, LoadsReadNativeEndianWordsOfArguments) {
  // RET A with A = args[2].high * 16 + args[2].low, inside the ERRNO data bits.
  SeccompProgram p = Prog({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg0 + 2 * 8 + 4),
      BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 4),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg0 + 2 * 8),
      BPF_STMT(BPF_ALU | BPF_ADD | BPF_X, 0),
      BPF_STMT(BPF_RET | BPF_A, 0),
  });
  seccomp_data d = Native(0);
  d.args[2] = (uint64_t{3} << 32) | 5;
  FilterResult r = p.Run(d);
  EXPECT_EQ(r.ret, 3u * 16 + 5);
  EXPECT_TRUE(r.read_arguments);
}

TEST(SeccompEvalTest, ArithmeticFollowsThe32BitKernelSemantics) {
  // Each program computes A from constants and returns it.
  struct Case {
    const char* what;
    std::vector<sock_filter> insns;
    uint32_t want;
  };
  const std::vector<Case> cases = {
      {"add wraps",
       {BPF_STMT(BPF_LD | BPF_IMM, 0xffffffff), BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 2),
        BPF_STMT(BPF_RET | BPF_A, 0)},
       1},
      {"sub wraps",
       {BPF_STMT(BPF_LD | BPF_IMM, 1), BPF_STMT(BPF_ALU | BPF_SUB | BPF_K, 2),
        BPF_STMT(BPF_RET | BPF_A, 0)},
       0xffffffff},
      {"mul",
       {BPF_STMT(BPF_LD | BPF_IMM, 0x10001), BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x10001),
        BPF_STMT(BPF_RET | BPF_A, 0)},
       0x20001},
      {"div",
       {BPF_STMT(BPF_LD | BPF_IMM, 100), BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 7),
        BPF_STMT(BPF_RET | BPF_A, 0)},
       14},
      {"div by X zero returns 0",
       {BPF_STMT(BPF_LD | BPF_IMM, 100), BPF_STMT(BPF_LDX | BPF_IMM, 0),
        BPF_STMT(BPF_ALU | BPF_DIV | BPF_X, 0), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)},
       0},
      {"lsh by X masks to 5 bits",
       {BPF_STMT(BPF_LD | BPF_IMM, 1), BPF_STMT(BPF_LDX | BPF_IMM, 33),
        BPF_STMT(BPF_ALU | BPF_LSH | BPF_X, 0), BPF_STMT(BPF_RET | BPF_A, 0)},
       2},
      {"rsh",
       {BPF_STMT(BPF_LD | BPF_IMM, 0x80000000), BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 31),
        BPF_STMT(BPF_RET | BPF_A, 0)},
       1},
      {"neg",
       {BPF_STMT(BPF_LD | BPF_IMM, 1), BPF_STMT(BPF_ALU | BPF_NEG, 0),
        BPF_STMT(BPF_RET | BPF_A, 0)},
       0xffffffff},
      {"and or xor",
       {BPF_STMT(BPF_LD | BPF_IMM, 0xf0), BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x3c),
        BPF_STMT(BPF_ALU | BPF_OR | BPF_K, 0x100), BPF_STMT(BPF_ALU | BPF_XOR | BPF_K, 0x101),
        BPF_STMT(BPF_RET | BPF_A, 0)},
       0x31},
      {"len is sizeof(seccomp_data)",
       {BPF_STMT(BPF_LDX | BPF_W | BPF_LEN, 0), BPF_STMT(BPF_MISC | BPF_TXA, 0),
        BPF_STMT(BPF_RET | BPF_A, 0)},
       64},
      {"scratch memory",
       {BPF_STMT(BPF_LD | BPF_IMM, 7), BPF_STMT(BPF_ST, 15), BPF_STMT(BPF_LD | BPF_IMM, 0),
        BPF_STMT(BPF_LDX | BPF_MEM, 15), BPF_STMT(BPF_MISC | BPF_TXA, 0),
        BPF_STMT(BPF_RET | BPF_A, 0)},
       7},
      {"jgt/jge/jset",
       {BPF_STMT(BPF_LD | BPF_IMM, 5), BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 5, 4, 0),  // not taken
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 5, 0, 3),                                 // taken
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 2, 2, 0),  // 5&2 == 0: not taken
        BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0), BPF_STMT(BPF_RET | BPF_K, 11),
        BPF_STMT(BPF_RET | BPF_K, 22)},
       11},
  };
  for (const Case& c : cases) {
    absl::StatusOr<SeccompProgram> p = SeccompProgram::Create(c.insns);
    ASSERT_TRUE(p.ok()) << c.what << ": " << p.status();
    EXPECT_EQ(p->Run(Native(0)).ret, c.want) << c.what;
  }
}

TEST(SeccompEvalTest, BytesRoundTripAndPartialInstructionsAreRefused) {
  SeccompProgram p = OneRule(SYS_ptrace, SECCOMP_RET_ERRNO | EPERM);
  std::string bytes = p.Bytes();
  EXPECT_EQ(bytes.size(), p.instructions().size() * 8);
  absl::StatusOr<SeccompProgram> back = SeccompProgram::FromBytes(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Bytes(), bytes);
  EXPECT_FALSE(SeccompProgram::FromBytes(bytes.substr(0, bytes.size() - 3)).ok());
  EXPECT_FALSE(SeccompProgram::FromBytes("").ok());
}

TEST(SeccompEvalTest, RefusesUnknownSyscallNames) {
  auto v = EvaluateSyscalls({}, std::vector<std::string>{"ptrace", "frobnicate"}, {});
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("frobnicate"), absl::string_view::npos);
  EXPECT_EQ(StrictModeVerdicts(std::vector<std::string>{"frobnicate"}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      CheckSyscallNames(std::vector<std::string>{"ptrace", "socketcall", "arch_prctl"}).ok());
}

TEST(SeccompEvalTest, NoFiltersAllowEverything) {
  auto v = Verdicts({}, {"ptrace", "bpf"});
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_EQ(v[1].action(), v1::SECCOMP_ACTION_ALLOW);
}

TEST(SeccompEvalTest, StrictModeAllowsReadWriteExitSigreturnPerAbi) {
  auto v = StrictModeVerdicts(
      std::vector<std::string>{"read", "write", "exit", "rt_sigreturn", "sigreturn", "ptrace"},
      {.i386 = true, .x32 = false});
  ASSERT_TRUE(v.ok()) << v.status();
  // x86_64: mode1_syscalls. i386: mode1_syscalls_32 (sigreturn, not rt_sigreturn). x32: the
  // compat list too, which holds i386 numbers, so no x32 number matches it.
  struct Want {
    const char* name;
    const char* arch;
    int number;
    v1::SeccompAction action;
  };
  const v1::SeccompAction allow = v1::SECCOMP_ACTION_ALLOW;
  const v1::SeccompAction kill = v1::SECCOMP_ACTION_KILL_THREAD;
  const std::vector<Want> want = {
      {"read", "x86_64", 0, allow},
      {"read", "i386", 3, allow},
      {"read", "x32", 0x40000000, kill},
      {"write", "x86_64", 1, allow},
      {"write", "i386", 4, allow},
      {"write", "x32", 0x40000001, kill},
      {"exit", "x86_64", 60, allow},
      {"exit", "i386", 1, allow},
      {"exit", "x32", 0x40000000 | 60, kill},
      {"rt_sigreturn", "x86_64", 15, allow},
      {"rt_sigreturn", "i386", 173, kill},
      {"rt_sigreturn", "x32", 0x40000000 | 513, kill},
      {"sigreturn", "i386", 119, allow},
      {"ptrace", "x86_64", SYS_ptrace, kill},
      {"ptrace", "i386", 26, kill},
      {"ptrace", "x32", 0x40000000 | 521, kill},
  };
  ASSERT_EQ(v->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const v1::SyscallVerdict& got = (*v)[i];
    EXPECT_EQ(got.syscall(), want[i].name) << i;
    EXPECT_EQ(got.arch(), want[i].arch) << i;
    EXPECT_EQ(got.number(), want[i].number) << got.syscall() << " " << got.arch();
    EXPECT_EQ(got.action(), want[i].action) << got.syscall() << " " << got.arch();
    EXPECT_FALSE(got.bypass()) << got.syscall() << " " << got.arch();
  }
  EXPECT_TRUE((*v)[0].abi_available());
  EXPECT_TRUE((*v)[1].abi_available());
  EXPECT_TRUE((*v)[2].has_abi_available());
  EXPECT_FALSE((*v)[2].abi_available());
}

// (a) An x86_64 deny list that never looks at `arch`: i386 ptrace is number 26, which the
// filter reads as x86_64's msync, and the x32 ptrace number is not 101 either.
TEST(SeccompEvalTest, FilterWithoutArchCheckIsBypassedThroughI386AndX32) {
  std::vector<SeccompProgram> f = {Prog({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  })};
  auto v = AllVerdicts(f, {"ptrace", "ioperm", "getpid"}, {.i386 = true, .x32 = false});
  ASSERT_EQ(v.size(), 3u * 3u);

  const v1::SyscallVerdict* native = Find(v, "ptrace", "x86_64");
  const v1::SyscallVerdict* i386 = Find(v, "ptrace", "i386");
  const v1::SyscallVerdict* x32 = Find(v, "ptrace", "x32");
  ASSERT_TRUE(native && i386 && x32);
  EXPECT_EQ(native->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(native->data(), static_cast<uint32_t>(EPERM));
  EXPECT_FALSE(native->bypass());
  EXPECT_EQ(i386->number(), 26);
  EXPECT_EQ(i386->action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_TRUE(i386->bypass());
  EXPECT_TRUE(i386->abi_available());
  EXPECT_EQ(x32->number(), 0x40000000 | 521);
  EXPECT_EQ(x32->action(), v1::SECCOMP_ACTION_ALLOW);
  // The filter is bypassable through x32 whether or not this kernel runs x32.
  EXPECT_TRUE(x32->bypass());
  ASSERT_TRUE(x32->has_abi_available());
  EXPECT_FALSE(x32->abi_available());
  // Ordered per syscall, native first.
  EXPECT_EQ(&v[0], native);
  EXPECT_EQ(&v[1], i386);
  EXPECT_EQ(&v[2], x32);

  // The other way round: i386 ioperm is number 101, so the filter denies it as "ptrace".
  const v1::SyscallVerdict* ioperm = Find(v, "ioperm", "i386");
  ASSERT_NE(ioperm, nullptr);
  EXPECT_EQ(ioperm->number(), SYS_ptrace);
  EXPECT_EQ(ioperm->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(Find(v, "ioperm", "x86_64")->action(), v1::SECCOMP_ACTION_ALLOW);
  // Nothing is denied natively for getpid, so nothing is bypassed.
  for (const char* arch : {"x86_64", "i386", "x32"}) {
    EXPECT_FALSE(Find(v, "getpid", arch)->bypass()) << arch;
  }

  // i386 26 is judged by the filter's rule for x86_64 26 (msync): a filter that kills msync
  // kills i386 ptrace.
  ASSERT_EQ(SyscallName(26), "msync");
  std::vector<SeccompProgram> msync_killer = {Prog({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_msync, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  })};
  auto k = AllVerdicts(msync_killer, {"ptrace"});
  EXPECT_EQ(Find(k, "ptrace", "i386")->action(), v1::SECCOMP_ACTION_KILL_PROCESS);
  EXPECT_FALSE(Find(k, "ptrace", "i386")->bypass());
  EXPECT_FALSE(Find(k, "ptrace", "i386")->has_abi_available());  // not known
}

// (b) Checks arch and refuses x32 numbers: every foreign way in is killed.
TEST(SeccompEvalTest, FilterThatChecksArchAndX32BitKillsEveryForeignAbi) {
  std::vector<SeccompProgram> f = {Prog({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  })};
  auto v = AllVerdicts(f, {"ptrace", "process_vm_readv"});
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(Find(v, "ptrace", "x86_64")->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(Find(v, "process_vm_readv", "x86_64")->action(), v1::SECCOMP_ACTION_ALLOW);
  for (const auto& x : v) {
    if (x.arch() != "x86_64") {
      EXPECT_EQ(x.action(), v1::SECCOMP_ACTION_KILL_PROCESS) << x.syscall() << " " << x.arch();
    }
    EXPECT_FALSE(x.bypass()) << x.syscall() << " " << x.arch();
  }
}

// (c) Checks arch but forgets that x32 syscalls carry AUDIT_ARCH_X86_64 too.
TEST(SeccompEvalTest, FilterThatForgetsTheX32BitIsBypassedThroughX32Only) {
  std::vector<SeccompProgram> f = {OneRule(SYS_ptrace, SECCOMP_RET_ERRNO | EPERM)};
  auto v = AllVerdicts(f, {"ptrace", "process_vm_writev"}, {.i386 = false, .x32 = true});
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(Find(v, "ptrace", "x86_64")->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(Find(v, "ptrace", "i386")->action(), v1::SECCOMP_ACTION_KILL_PROCESS);
  EXPECT_FALSE(Find(v, "ptrace", "i386")->bypass());
  const v1::SyscallVerdict* x32 = Find(v, "ptrace", "x32");
  EXPECT_EQ(x32->action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_TRUE(x32->bypass());
  EXPECT_TRUE(x32->abi_available());
  // process_vm_writev is allowed natively: x32 ALLOW is no bypass.
  EXPECT_EQ(Find(v, "process_vm_writev", "x32")->action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_FALSE(Find(v, "process_vm_writev", "x32")->bypass());
}

// (d) Stacked filters that each cover part of the ABIs combine per ABI as the kernel does.
TEST(SeccompEvalTest, StackedFiltersCombinePerAbi) {
  // Older: only looks at i386; i386 ptrace (26) fails with EACCES.
  SeccompProgram i386_only = Prog({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 26, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  });
  // Newer: no arch check; 101 fails with EPERM, every x32 number is trapped.
  SeccompProgram by_number = Prog({
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, __X32_SYSCALL_BIT, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP | 7),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  });
  std::vector<SeccompProgram> stack = {by_number, i386_only};  // most recent first
  auto v = AllVerdicts(stack, {"ptrace", "ioperm", "process_vm_readv"});
  ASSERT_EQ(v.size(), 3u * 3u);
  EXPECT_EQ(Find(v, "ptrace", "x86_64")->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(Find(v, "ptrace", "x86_64")->data(), static_cast<uint32_t>(EPERM));
  EXPECT_EQ(Find(v, "ptrace", "i386")->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(Find(v, "ptrace", "i386")->data(), static_cast<uint32_t>(EACCES));
  EXPECT_EQ(Find(v, "ptrace", "x32")->action(), v1::SECCOMP_ACTION_TRAP);
  EXPECT_EQ(Find(v, "ptrace", "x32")->data(), 7u);
  // i386 ioperm is 101: the newer filter's EPERM applies to it.
  EXPECT_EQ(Find(v, "ioperm", "i386")->action(), v1::SECCOMP_ACTION_ERRNO);
  EXPECT_EQ(Find(v, "ioperm", "i386")->data(), static_cast<uint32_t>(EPERM));
  for (const auto& x : v) EXPECT_FALSE(x.bypass()) << x.syscall() << " " << x.arch();

  // Without the i386 filter, i386 ptrace goes through.
  auto alone = AllVerdicts({by_number}, {"ptrace"});
  EXPECT_EQ(Find(alone, "ptrace", "i386")->action(), v1::SECCOMP_ACTION_ALLOW);
  EXPECT_TRUE(Find(alone, "ptrace", "i386")->bypass());
  EXPECT_FALSE(Find(alone, "ptrace", "x32")->bypass());  // TRAP: denied
}

TEST(SeccompEvalTest, BypassMeansNativeDeniesAndAnotherAbiLetsItRun) {
  // Native action x foreign action, through a filter that returns one for AUDIT_ARCH_X86_64
  // without the x32 bit and the other for everything else.
  const std::vector<std::pair<uint32_t, bool>> actions = {
      {SECCOMP_RET_KILL_PROCESS, false}, {SECCOMP_RET_ERRNO | EPERM, false},
      {SECCOMP_RET_TRAP, false},         {SECCOMP_RET_USER_NOTIF, false},
      {SECCOMP_RET_TRACE, false},        {SECCOMP_RET_LOG, true},
      {SECCOMP_RET_ALLOW, true},
  };
  for (const auto& [native_ret, native_runs] : actions) {
    for (const auto& [foreign_ret, foreign_runs] : actions) {
      std::vector<SeccompProgram> f = {Prog({
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
          BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, __X32_SYSCALL_BIT, 1, 0),
          BPF_STMT(BPF_RET | BPF_K, native_ret),
          BPF_STMT(BPF_RET | BPF_K, foreign_ret),
      })};
      auto v = AllVerdicts(f, {"ptrace"});
      ASSERT_EQ(v.size(), 3u);
      EXPECT_EQ(v[0].action(), ActionOf(native_ret));
      EXPECT_FALSE(v[0].bypass());
      for (size_t i = 1; i < 3; ++i) {
        EXPECT_EQ(v[i].action(), ActionOf(foreign_ret)) << v[i].arch();
        EXPECT_EQ(v[i].bypass(), !native_runs && foreign_runs)
            << std::hex << native_ret << " " << foreign_ret << " " << v[i].arch();
      }
    }
  }
}

// Malformed programs: each breaks one of the kernel's rules.
struct MalformedCase {
  const char* what;
  std::vector<sock_filter> insns;
};

std::vector<MalformedCase> MalformedCases() {
  const sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  std::vector<MalformedCase> cases = {
      {"empty", {}},
      {"conditional jump out of range",
       {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr), BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 0),
        allow}},
      {"ja out of range", {BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0), allow}},
      {"no ret at end", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr)}},
      {"ret then fallthrough to load", {allow, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr)}},
      {"load offset past seccomp_data", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), allow}},
      {"misaligned load", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2), allow}},
      {"unknown opcode", {{0xffff, 0, 0, 0}, allow}},
      {"mod (classic BPF only)", {BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 3), allow}},
      {"half-word packet load", {BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0), allow}},
      {"indirect packet load", {BPF_STMT(BPF_LD | BPF_W | BPF_IND, 0), allow}},
      {"division by constant zero", {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), allow}},
      {"shift by 32", {BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 32), allow}},
      {"scratch index 16", {BPF_STMT(BPF_ST, 16), allow}},
      {"scratch read before write", {BPF_STMT(BPF_LD | BPF_MEM, 3), allow}},
      {"scratch written on one path only",
       {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr), BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1),
        BPF_STMT(BPF_ST, 0), BPF_STMT(BPF_LD | BPF_MEM, 0), allow}},
  };
  std::vector<sock_filter> too_long(kMaxSeccompInstructions + 1, allow);
  cases.push_back({"4097 instructions", std::move(too_long)});
  return cases;
}

TEST(SeccompEvalTest, RefusesMalformedProgramsWithTheReason) {
  for (const MalformedCase& c : MalformedCases()) {
    absl::StatusOr<SeccompProgram> p = SeccompProgram::Create(c.insns);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_FALSE(p.status().message().empty()) << c.what;
  }
}

TEST(SeccompEvalTest, AcceptsTheLongestProgramTheKernelAccepts) {
  std::vector<sock_filter> insns(kMaxSeccompInstructions, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr));
  insns.back() = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  EXPECT_TRUE(SeccompProgram::Create(insns).ok());
}

// Ground truth from the kernel itself: a forked child installs the program and reports what
// seccomp() said and what syscall `nr` (by default getppid) then returned.
struct KernelOutcome {
  bool installed = false;
  int install_errno = 0;
  long ret = 0;
  int err = 0;
  int term_signal = 0;  // set when the filter killed the child
};

KernelOutcome RunInKernel(const std::vector<sock_filter>& insns, long nr = SYS_getppid) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    long out[4] = {0, 0, 0, 0};
    sock_fprog prog{static_cast<unsigned short>(insns.size()),
                    const_cast<sock_filter*>(insns.data())};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
      out[1] = errno;
    } else {
      out[0] = 1;
      errno = 0;
      out[2] = syscall(nr);
      out[3] = errno;
    }
    // The programs used here leave native write and exit_group alone.
    (void)!write(fds[1], out, sizeof(out));
    _exit(0);
  }
  close(fds[1]);
  long in[4] = {0, 0, 0, 0};
  ssize_t n = read(fds[0], in, sizeof(in));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  KernelOutcome o;
  if (WIFSIGNALED(status)) o.term_signal = WTERMSIG(status);
  if (n == static_cast<ssize_t>(sizeof(in))) {
    o.installed = in[0] == 1;
    o.install_errno = static_cast<int>(in[1]);
    o.ret = in[2];
    o.err = static_cast<int>(in[3]);
  }
  return o;
}

TEST(SeccompEvalTest, KernelRefusesEveryProgramTheValidatorRefuses) {
  for (const MalformedCase& c : MalformedCases()) {
    if (c.insns.empty()) continue;  // sock_fprog with len 0: covered by the validator test
    KernelOutcome o = RunInKernel(c.insns);
    EXPECT_FALSE(o.installed) << c.what;
    EXPECT_EQ(o.install_errno, EINVAL) << c.what;
  }
}

TEST(SeccompEvalTest, VerdictsMatchWhatTheKernelDoes) {
  // For getppid only, each program computes a value and returns ERRNO(value) or a kill; the
  // kernel's answer in a child is the ground truth for the evaluator's.
  auto for_getppid = [](std::vector<sock_filter> body) {
    std::vector<sock_filter> insns = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    insns.insert(insns.end(), body.begin(), body.end());
    return insns;
  };
  const std::vector<std::vector<sock_filter>> programs = {
      for_getppid({BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)}),
      for_getppid({BPF_STMT(BPF_LD | BPF_IMM, 1000), BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 7),
                   BPF_STMT(BPF_LDX | BPF_IMM, 35), BPF_STMT(BPF_ALU | BPF_LSH | BPF_X, 0),
                   BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xfff),
                   BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
                   BPF_STMT(BPF_RET | BPF_A, 0)}),
      for_getppid({BPF_STMT(BPF_LD | BPF_IMM, 5), BPF_STMT(BPF_ALU | BPF_NEG, 0),
                   BPF_STMT(BPF_ST, 4), BPF_STMT(BPF_LDX | BPF_MEM, 4),
                   BPF_STMT(BPF_MISC | BPF_TXA, 0), BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 20),
                   BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
                   BPF_STMT(BPF_RET | BPF_A, 0)}),
      for_getppid({BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
                   BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
                   BPF_STMT(BPF_RET | BPF_A, 0)}),
      for_getppid({BPF_STMT(BPF_LDX | BPF_IMM, 0), BPF_STMT(BPF_ALU | BPF_DIV | BPF_X, 0),
                   BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)}),
      for_getppid({BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)}),
  };
  for (size_t i = 0; i < programs.size(); ++i) {
    std::vector<SeccompProgram> stack = {Prog(programs[i])};
    SeccompDecision d = EvaluateStack(stack, Native(SYS_getppid));
    KernelOutcome o = RunInKernel(programs[i]);
    if (d.action == v1::SECCOMP_ACTION_ERRNO) {
      ASSERT_TRUE(o.installed) << i;
      EXPECT_EQ(o.ret, -1) << i;
      EXPECT_EQ(static_cast<uint32_t>(o.err), d.data) << i;
    } else {
      EXPECT_TRUE(d.action == v1::SECCOMP_ACTION_KILL_THREAD ||
                  d.action == v1::SECCOMP_ACTION_KILL_PROCESS)
          << i;
      EXPECT_EQ(o.term_signal, SIGSYS) << i;
    }
  }
}

TEST(SeccompEvalTest, X32VerdictsMatchWhatTheKernelDoes) {
  // Seccomp sees an x32 number before the kernel looks it up, so even a kernel without x32
  // (which then fails the call with ENOSYS) shows what the filter decides.
  const int x32_getppid = 0x40000000 | SYS_getppid;
  const std::vector<std::vector<sock_filter>> programs = {
      // Native deny list without an arch or x32 check: x32 getppid gets through.
      {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
       BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
       BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
       BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)},
      // Every x32 number fails with EACCES.
      {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
       BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1),
       BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
       BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)},
      // x32 getppid kills.
      {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
       BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(x32_getppid), 0, 1),
       BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
       BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)},
      // Arch check without the x32 bit (OneRule's shape).
      {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
       BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
       BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
       BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
       BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
       BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)},
  };
  const std::vector<v1::SeccompAction> expected = {
      v1::SECCOMP_ACTION_ALLOW, v1::SECCOMP_ACTION_ERRNO, v1::SECCOMP_ACTION_KILL_PROCESS,
      v1::SECCOMP_ACTION_ALLOW};
  for (size_t i = 0; i < programs.size(); ++i) {
    auto v = AllVerdicts({Prog(programs[i])}, {"getppid"});
    const v1::SyscallVerdict* x32 = Find(v, "getppid", "x32");
    ASSERT_NE(x32, nullptr) << i;
    ASSERT_EQ(x32->number(), x32_getppid) << i;
    EXPECT_EQ(x32->action(), expected[i]) << i;

    KernelOutcome o = RunInKernel(programs[i], x32_getppid);
    switch (x32->action()) {
      case v1::SECCOMP_ACTION_ERRNO:
        ASSERT_TRUE(o.installed) << i;
        EXPECT_EQ(o.ret, -1) << i;
        EXPECT_EQ(static_cast<uint32_t>(o.err), x32->data()) << i;
        break;
      case v1::SECCOMP_ACTION_KILL_PROCESS:
        EXPECT_EQ(o.term_signal, SIGSYS) << i;
        break;
      case v1::SECCOMP_ACTION_ALLOW:
        // Reached the kernel: it ran (x32 kernel: the child's parent is us) or had no
        // such syscall.
        ASSERT_TRUE(o.installed) << i;
        EXPECT_TRUE(o.ret == getpid() || (o.ret == -1 && o.err == ENOSYS))
            << i << ": ret " << o.ret << " errno " << o.err;
        break;
      default:
        ADD_FAILURE() << i << ": unexpected action " << x32->action();
    }
  }
}

}  // namespace
}  // namespace vigil::node
