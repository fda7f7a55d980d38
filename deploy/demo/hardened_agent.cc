// hardened-agent: a demo workload that applies every runtime control Vigil's reference
// policy asks for, in the order that works (privileged steps first, then drop privileges,
// then lock the door):
//   1. a secret buffer filled with random bytes and locked in memory (mlock), excluded from
//      core dumps;
//   2. a JIT-style executable region: written while writable, then made read+execute
//      (never writable and executable at once) and locked;
//   3. CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH and (after locking)
//      CAP_IPC_LOCK dropped from the bounding, effective, permitted and inheritable sets;
//      the ambient set cleared;
//   4. no_new_privs;
//   5. a seccomp filter that kills every syscall not made through the native x86_64 ABI
//      (i386 syscalls, which carry another arch, and x32 syscalls, which carry x86_64's arch
//      but a number with the x32 bit) and makes ptrace, process_vm_readv and
//      process_vm_writev fail with EPERM.
// Then it prints one line saying so and "works" (a few syscalls every half second, and a
// heartbeat file rewritten in its state directory, $VIGIL_DEMO_STATE_DIR/hardened-agent, by
// default /var/lib/vigil-demo/hardened-agent) until SIGTERM or SIGINT, and exits 0. It runs
// no other program and reads no configuration or secret file: its runtime scope is its own
// binary, the libraries it links and its state directory (docs/demo.md). It must start
// with CAP_SETPCAP and CAP_IPC_LOCK (root).

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>

namespace {

constexpr size_t kSecretBytes = 64 * 1024;
constexpr size_t kJitBytes = 4096;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "hardened-agent: %s: %s\n", what, strerror(errno));
  std::exit(1);
}

// An anonymous private mapping, unmapped when it goes out of scope.
class Mapping {
 public:
  Mapping(size_t len, int prot) : len_(len) {
    addr_ = mmap(nullptr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (addr_ == MAP_FAILED) Die("mmap");
  }
  ~Mapping() { munmap(addr_, len_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return len_; }

 private:
  void* addr_;
  size_t len_;
};

void FillRandom(uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      Die("getrandom");
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
}

// x86_64: mov eax, 42; ret
constexpr uint8_t kJitCode[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};

void DropCapabilities(std::initializer_list<int> caps) {
  for (int cap : caps) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) Die("prctl(PR_CAPBSET_DROP)");
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    Die("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) Die("capget");
  for (int cap : caps) {
    const uint32_t bit = 1u << (cap % 32);
    data[cap / 32].effective &= ~bit;
    data[cap / 32].permitted &= ~bit;
    data[cap / 32].inheritable &= ~bit;
  }
  if (syscall(SYS_capset, &header, data) != 0) Die("capset");
}

void InstallSeccompFilter() {
  constexpr uint32_t kNr = offsetof(seccomp_data, nr);
  constexpr uint32_t kArch = offsetof(seccomp_data, arch);
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      // x32 syscalls pass the arch check: refuse their numbers too, or x32 ptrace (a
      // different number from x86_64's) would get through the rules below.
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_writev, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) Die("seccomp");
}

// A stand-in for the agent's real work: touch the secret, run the JIT code, ask the
// kernel the time.
uint32_t Work(const Mapping& secret, int (*jit)()) {
  uint32_t sum = 0;
  for (size_t i = 0; i < secret.size(); i += 4096) sum += secret.data()[i];
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return sum + static_cast<uint32_t>(jit()) + static_cast<uint32_t>(getpid());
}

// Where the agent keeps its state: $VIGIL_DEMO_STATE_DIR/hardened-agent, by default
// /var/lib/vigil-demo/hardened-agent.
std::string StateDir() {
  const char* base = std::getenv("VIGIL_DEMO_STATE_DIR");
  return std::string(base != nullptr && *base != '\0' ? base : "/var/lib/vigil-demo") +
         "/hardened-agent";
}

// Rewrites the heartbeat file (mode 0600); a failure is not fatal to the demo.
void Heartbeat(const std::string& path, uint32_t value) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  char line[32];
  int n = std::snprintf(line, sizeof(line), "%u\n", value);
  (void)!write(fd, line, static_cast<size_t>(n));
  close(fd);
}

}  // namespace

int main() {
  if (prctl(PR_SET_NAME, "hardened-agent", 0, 0, 0) != 0) Die("prctl(PR_SET_NAME)");

  // Block the stop signals first so they are only ever taken by sigtimedwait below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop, nullptr) != 0) Die("sigprocmask");

  Mapping secret(kSecretBytes, PROT_READ | PROT_WRITE);
  FillRandom(secret.data(), secret.size());
  if (madvise(secret.data(), secret.size(), MADV_DONTDUMP) != 0) Die("madvise(MADV_DONTDUMP)");
  if (mlock(secret.data(), secret.size()) != 0) Die("mlock(secret)");

  Mapping jit(kJitBytes, PROT_READ | PROT_WRITE);
  memcpy(jit.data(), kJitCode, sizeof(kJitCode));
  if (mprotect(jit.data(), jit.size(), PROT_READ | PROT_EXEC) != 0) Die("mprotect(jit)");
  if (mlock(jit.data(), jit.size()) != 0) Die("mlock(jit)");
  auto jit_fn = reinterpret_cast<int (*)()>(jit.data());
  if (jit_fn() != 42) {
    std::fprintf(stderr, "hardened-agent: JIT region returned the wrong value\n");
    return 1;
  }

  // The state directory exists before the privileges go.
  const std::string heartbeat = StateDir() + "/heartbeat";
  std::error_code ec;
  std::filesystem::create_directories(StateDir(), ec);

  DropCapabilities({CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH, CAP_IPC_LOCK});
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Die("prctl(PR_SET_NO_NEW_PRIVS)");
  InstallSeccompFilter();

  std::printf(
      "hardened-agent pid=%d secret=%p+%zu jit=%p+%zu: secret and r-x JIT region locked; "
      "dropped CAP_SYS_PTRACE CAP_SYS_ADMIN CAP_DAC_READ_SEARCH CAP_IPC_LOCK from all sets; "
      "ambient cleared; no_new_privs; seccomp: ptrace process_vm_readv process_vm_writev -> "
      "EPERM\n",
      getpid(), static_cast<void*>(secret.data()), secret.size(), static_cast<void*>(jit.data()),
      jit.size());
  std::fflush(stdout);

  volatile uint32_t sink = 0;
  const timespec half_second{0, 500'000'000};
  for (;;) {
    sink = sink + Work(secret, jit_fn);
    Heartbeat(heartbeat, sink);
    int sig = sigtimedwait(&stop, nullptr, &half_second);
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig < 0 && errno != EAGAIN && errno != EINTR) Die("sigtimedwait");
  }
  explicit_bzero(secret.data(), secret.size());
  return 0;
}
