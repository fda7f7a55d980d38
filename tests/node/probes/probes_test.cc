// Real BPF: for each event kind a monitored child performs the syscall and the test checks
// the event's pid, arguments and return value against what the child itself observed.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include <gmock/gmock.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "node/probes/hook_support.h"
#include "tests/node/probes/probe_test_util.h"

namespace vigil::node {
namespace {

using testing::ChildRun;
using testing::EventLog;
using testing::RunChild;
using testing::SharedValues;

// Raw syscall result: -errno on failure, as the kernel returns it.
int64_t Raw(long r) { return r == -1 ? -static_cast<int64_t>(errno) : r; }

// Every test runs twice: with the default probes (arguments read from the saved registers at
// exit) and with the syscall entry hooks attached too; the events must be the same.
class ProbesTest : public ::testing::TestWithParam<bool> {
 protected:
  static void TearDownTestSuite() {
    delete source_;
    source_ = nullptr;
  }
  void SetUp() override {
    const bool entry_hooks = GetParam();
    if (source_ == nullptr || source_entry_hooks_ != entry_hooks) {
      delete source_;
      source_ = nullptr;
      ProbeOptions options;
      options.syscall_entry_hooks = entry_hooks;
      auto s = BpfEventSource::Start(options);
      ASSERT_TRUE(s.ok()) << s.status();
      source_ = s->release();
      source_entry_hooks_ = entry_hooks;
    }
  }

  // Runs `body` in a child monitored from before its first action; returns its events.
  std::vector<v1::RuntimeEvent> Observe(const std::function<void(SharedValues*)>& body,
                                        ChildRun* run) {
    EventLog log(source_);
    *run = RunChild(body, [](int pid) { ASSERT_TRUE(source_->Monitor(pid).ok()); });
    EXPECT_TRUE(WIFEXITED(run->wait_status)) << run->wait_status;
    EXPECT_TRUE(log.WaitForExit(run->pid)) << "no exit event for " << run->pid;
    return log.Of(run->pid);
  }

  static std::vector<v1::RuntimeEvent> OfKind(const std::vector<v1::RuntimeEvent>& events,
                                              v1::EventKind kind) {
    std::vector<v1::RuntimeEvent> out;
    for (const auto& e : events) {
      if (e.kind() == kind) out.push_back(e);
    }
    return out;
  }

  static inline BpfEventSource* source_ = nullptr;
  static inline bool source_entry_hooks_ = false;
};

// A seccomp filter that makes ptrace fail with EPERM and allows everything else.
void DenyPtraceWithSeccomp(SharedValues* out) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog = {.len = 4, .filter = filter};
  out->v[10] = Raw(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  out->v[11] = Raw(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
}

TEST_P(ProbesTest, PtraceDeniedBySeccompIsReportedWithEperm) {
  ChildRun run;
  auto events = Observe(
      [](SharedValues* out) {
        DenyPtraceWithSeccomp(out);
        out->v[0] = Raw(ptrace(PTRACE_ATTACH, getppid(), nullptr, nullptr));
      },
      &run);
  ASSERT_EQ(run.values.v[11], 0) << "seccomp filter not installed";
  ASSERT_EQ(run.values.v[0], -EPERM);
  auto ptraces = OfKind(events, v1::EVENT_KIND_PTRACE);
  ASSERT_EQ(ptraces.size(), 1u);
  EXPECT_EQ(ptraces[0].return_value(), -EPERM);
  EXPECT_EQ(ptraces[0].target_pid(), getpid());
  EXPECT_EQ(ptraces[0].args(0), static_cast<uint64_t>(PTRACE_ATTACH));
  EXPECT_EQ(ptraces[0].tid(), run.pid);

  auto prctls = OfKind(events, v1::EVENT_KIND_PRCTL);
  ASSERT_EQ(prctls.size(), 1u);
  EXPECT_EQ(prctls[0].args(0), static_cast<uint64_t>(PR_SET_NO_NEW_PRIVS));
  EXPECT_EQ(prctls[0].return_value(), 0);
  auto seccomps = OfKind(events, v1::EVENT_KIND_SECCOMP);
  ASSERT_EQ(seccomps.size(), 1u);
  EXPECT_EQ(seccomps[0].args(0), static_cast<uint64_t>(SECCOMP_SET_MODE_FILTER));
  EXPECT_EQ(seccomps[0].return_value(), 0);
}

TEST_P(ProbesTest, WakesTheReaderOnceAnEventWorthAReportIsQueued) {
  absl::Mutex mu;
  int wakes = 0;
  source_->SetWakeup([&] {
    absl::MutexLock lock(&mu);
    ++wakes;
  });
  std::vector<v1::RuntimeEvent> queued;
  ChildRun run = RunChild(
      [](SharedValues* out) {
        out->v[0] = Raw(ptrace(PTRACE_ATTACH, 0x3ffffff0, nullptr, nullptr));
      },
      [](int pid) { ASSERT_TRUE(source_->Monitor(pid).ok()); });
  ASSERT_EQ(run.values.v[0], -ESRCH);
  {
    absl::MutexLock lock(&mu);
    auto woken = [&] { return wakes > 0; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&woken), absl::Seconds(20)))
        << "no wake-up for a denied ptrace";
  }
  source_->SetWakeup(nullptr);
  // The wake-up comes after the event is queued: it is already there to drain.
  source_->Drain(&queued);
  std::vector<v1::RuntimeEvent> ptraces;
  for (const auto& e : OfKind(queued, v1::EVENT_KIND_PTRACE)) {
    if (e.pid() == run.pid) ptraces.push_back(e);
  }
  ASSERT_EQ(ptraces.size(), 1u);
  EXPECT_EQ(ptraces[0].return_value(), -ESRCH);
}

TEST_P(ProbesTest, PtraceOfMissingProcessCarriesTargetAndErrno) {
  ChildRun run;
  auto events = Observe(
      [](SharedValues* out) {
        out->v[0] = Raw(ptrace(PTRACE_ATTACH, 0x3ffffff0, nullptr, nullptr));
      },
      &run);
  auto ptraces = OfKind(events, v1::EVENT_KIND_PTRACE);
  ASSERT_EQ(ptraces.size(), 1u);
  EXPECT_EQ(ptraces[0].return_value(), -ESRCH);
  EXPECT_EQ(ptraces[0].return_value(), run.values.v[0]);
  EXPECT_EQ(ptraces[0].target_pid(), 0x3ffffff0);
  EXPECT_EQ(ptraces[0].pid(), run.pid);
  EXPECT_EQ(ptraces[0].ppid(), getpid());
  EXPECT_EQ(ptraces[0].uid(), getuid());
  EXPECT_FALSE(ptraces[0].comm().empty());
  EXPECT_GT(ptraces[0].time_unix_nano(), absl::ToUnixNanos(absl::Now() - absl::Minutes(5)));
}

TEST_P(ProbesTest, ProcessVmReadvAndWritevCarryPeerAndResult) {
  ChildRun run;
  auto events = Observe(
      [](SharedValues* out) {
        char src[64] = "vigil", dst[64] = {};
        iovec local = {dst, sizeof(dst)}, remote = {src, sizeof(src)};
        out->v[0] = Raw(syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0));
        out->v[1] = Raw(syscall(SYS_process_vm_writev, 0x3ffffff1, &local, 1, &remote, 1, 0));
      },
      &run);
  auto reads = OfKind(events, v1::EVENT_KIND_PROCESS_VM_READV);
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(run.values.v[0], 64);
  EXPECT_EQ(reads[0].return_value(), 64);
  EXPECT_EQ(reads[0].target_pid(), run.pid);
  EXPECT_EQ(reads[0].args(2), 1u);  // liovcnt
  auto writes = OfKind(events, v1::EVENT_KIND_PROCESS_VM_WRITEV);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].return_value(), -ESRCH);
  EXPECT_EQ(writes[0].target_pid(), 0x3ffffff1);
}

TEST_P(ProbesTest, MemoryMadeExecutableIsReportedOtherProtectionChangesAreNot) {
  ChildRun run;
  auto events = Observe(
      [](SharedValues* out) {
        long page = sysconf(_SC_PAGESIZE);
        void* rw =
            mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        void* rwx = mmap(nullptr, page, PROT_READ | PROT_WRITE | PROT_EXEC,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int fd = open("/proc/self/exe", O_RDONLY);
        void* file_x = mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
        out->v[0] = reinterpret_cast<int64_t>(rw);
        out->v[1] = reinterpret_cast<int64_t>(rwx);
        out->v[2] = file_x == MAP_FAILED ? -1 : 0;
        out->v[3] = Raw(mprotect(rw, page, PROT_READ | PROT_EXEC));
        out->v[4] = Raw(mprotect(static_cast<char*>(rw) + page, page, PROT_READ));
        out->v[5] = Raw(syscall(SYS_pkey_mprotect, static_cast<char*>(rw) + page, page,
                                PROT_READ | PROT_EXEC, -1));
      },
      &run);
  ASSERT_EQ(run.values.v[2], 0) << "file-backed executable mapping failed";
  auto mmaps = OfKind(events, v1::EVENT_KIND_MMAP);
  ASSERT_EQ(mmaps.size(), 1u) << "only the anonymous executable mapping is an event";
  EXPECT_EQ(mmaps[0].return_value(), run.values.v[1]);
  EXPECT_EQ(mmaps[0].args(2), static_cast<uint64_t>(PROT_READ | PROT_WRITE | PROT_EXEC));
  EXPECT_TRUE(mmaps[0].args(3) & MAP_ANONYMOUS);

  auto mprotects = OfKind(events, v1::EVENT_KIND_MPROTECT);
  ASSERT_EQ(mprotects.size(), 1u) << "mprotect to PROT_READ is not an event";
  EXPECT_EQ(mprotects[0].args(0), static_cast<uint64_t>(run.values.v[0]));
  EXPECT_EQ(mprotects[0].args(2), static_cast<uint64_t>(PROT_READ | PROT_EXEC));
  EXPECT_EQ(mprotects[0].return_value(), 0);

  auto pkeys = OfKind(events, v1::EVENT_KIND_PKEY_MPROTECT);
  ASSERT_EQ(pkeys.size(), 1u);
  EXPECT_EQ(pkeys[0].return_value(), run.values.v[5]);
  EXPECT_EQ(static_cast<int32_t>(pkeys[0].args(3)), -1);  // the kernel reads an int
}

TEST_P(ProbesTest, NamespaceCreationIsReportedPlainForkIsNot) {
  ChildRun run;
  auto events = Observe(
      [](SharedValues* out) {
        long c = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
        if (c == 0) _exit(0);
        out->v[0] = Raw(c);
        clone_args args{};
        args.flags = CLONE_NEWUSER;
        args.exit_signal = SIGCHLD;
        long c3 = syscall(SYS_clone3, &args, sizeof(args));
        if (c3 == 0) _exit(0);
        out->v[1] = Raw(c3);
        pid_t f = fork();
        if (f == 0) _exit(0);
        out->v[2] = f;
        while (waitpid(-1, nullptr, 0) > 0) {
        }
        out->v[3] = Raw(unshare(CLONE_NEWUTS));
        int ns = open("/proc/self/ns/uts", O_RDONLY);
        out->v[4] = ns;
        out->v[5] = Raw(setns(ns, CLONE_NEWUTS));
      },
      &run);
  ASSERT_GT(run.values.v[0], 0);
  ASSERT_GT(run.values.v[1], 0);
  auto clones = OfKind(events, v1::EVENT_KIND_CLONE);
  ASSERT_EQ(clones.size(), 1u) << "fork() without namespace flags is no CLONE event";
  EXPECT_EQ(clones[0].return_value(), run.values.v[0]);
  EXPECT_EQ(clones[0].target_pid(), run.values.v[0]);
  EXPECT_TRUE(clones[0].args(0) & CLONE_NEWUSER);
  auto clone3s = OfKind(events, v1::EVENT_KIND_CLONE3);
  ASSERT_EQ(clone3s.size(), 1u);
  EXPECT_EQ(clone3s[0].return_value(), run.values.v[1]);
  EXPECT_TRUE(clone3s[0].args(2) & CLONE_NEWUSER) << "clone3 flags read from clone_args";

  std::vector<int> forked;
  for (const auto& e : OfKind(events, v1::EVENT_KIND_PROCESS_FORK)) {
    forked.push_back(e.target_pid());
  }
  EXPECT_THAT(forked,
              ::testing::UnorderedElementsAre(run.values.v[0], run.values.v[1], run.values.v[2]));

  auto unshares = OfKind(events, v1::EVENT_KIND_UNSHARE);
  ASSERT_EQ(unshares.size(), 1u);
  EXPECT_EQ(unshares[0].args(0), static_cast<uint64_t>(CLONE_NEWUTS));
  EXPECT_EQ(unshares[0].return_value(), run.values.v[3]);
  auto setnses = OfKind(events, v1::EVENT_KIND_SETNS);
  ASSERT_EQ(setnses.size(), 1u);
  EXPECT_EQ(setnses[0].args(0), static_cast<uint64_t>(run.values.v[4]));
  EXPECT_EQ(setnses[0].args(1), static_cast<uint64_t>(CLONE_NEWUTS));
  EXPECT_EQ(setnses[0].return_value(), run.values.v[5]);
}

TEST_P(ProbesTest, CapsetAndLockingCarryArgumentsAndResults) {
  ChildRun run;
  auto events = Observe(
      [](SharedValues* out) {
        __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2] = {};
        syscall(SYS_capget, &hdr, data);
        out->v[0] = Raw(syscall(SYS_capset, &hdr, data));
        static char buf[8192] __attribute__((aligned(4096)));
        out->v[1] = reinterpret_cast<int64_t>(buf);
        // Through syscall(2): AddressSanitizer's mlock interceptors do nothing (docs/fuzzing.md).
        out->v[2] = Raw(syscall(SYS_mlock, buf, 4096));
        out->v[3] = Raw(syscall(SYS_mlock2, buf + 4096, 4096, 1 /* MLOCK_ONFAULT */));
        out->v[4] = Raw(syscall(SYS_munlock, buf, 8192));
        out->v[5] = Raw(syscall(SYS_mlockall, MCL_FUTURE));
        out->v[6] = Raw(syscall(SYS_munlockall));
      },
      &run);
  auto capsets = OfKind(events, v1::EVENT_KIND_CAPSET);
  ASSERT_EQ(capsets.size(), 1u);
  EXPECT_EQ(capsets[0].return_value(), run.values.v[0]);
  const uint64_t buf = run.values.v[1];
  auto one = [&](v1::EventKind kind) {
    auto v = OfKind(events, kind);
    EXPECT_EQ(v.size(), 1u) << v1::EventKind_Name(kind);
    if (!v.empty()) return v[0];
    // None seen (already a failure): an event with zero arguments, so the checks below
    // fail on values instead of reading past an empty argument list.
    v1::RuntimeEvent none;
    none.mutable_args()->Resize(6, 0);
    return none;
  };
  auto mlock_ev = one(v1::EVENT_KIND_MLOCK);
  EXPECT_EQ(mlock_ev.args(0), buf);
  EXPECT_EQ(mlock_ev.args(1), 4096u);
  EXPECT_EQ(mlock_ev.return_value(), run.values.v[2]);
  auto mlock2_ev = one(v1::EVENT_KIND_MLOCK2);
  EXPECT_EQ(mlock2_ev.args(0), buf + 4096);
  EXPECT_EQ(mlock2_ev.args(2), 1u);
  EXPECT_EQ(mlock2_ev.return_value(), run.values.v[3]);
  auto munlock_ev = one(v1::EVENT_KIND_MUNLOCK);
  EXPECT_EQ(munlock_ev.args(1), 8192u);
  EXPECT_EQ(munlock_ev.return_value(), run.values.v[4]);
  auto mlockall_ev = one(v1::EVENT_KIND_MLOCKALL);
  EXPECT_EQ(mlockall_ev.args(0), static_cast<uint64_t>(MCL_FUTURE));
  EXPECT_EQ(mlockall_ev.return_value(), run.values.v[5]);
  EXPECT_EQ(one(v1::EVENT_KIND_MUNLOCKALL).return_value(), run.values.v[6]);
}

TEST_P(ProbesTest, ExecCarriesPathForFailedAndSuccessfulAttempts) {
  ChildRun run;
  auto events = Observe(
      [](SharedValues* out) {
        char* argv[] = {const_cast<char*>("true"), nullptr};
        out->v[0] = Raw(execve("/nonexistent/vigil-exec", argv, environ));
        out->v[1] =
            Raw(syscall(SYS_execveat, AT_FDCWD, "/nonexistent/vigil-execat", argv, environ, 0));
        execve("/bin/true", argv, environ);
        _exit(42);
      },
      &run);
  EXPECT_EQ(WEXITSTATUS(run.wait_status), 0) << "/bin/true did not run";
  auto execs = OfKind(events, v1::EVENT_KIND_EXECVE);
  ASSERT_EQ(execs.size(), 2u);
  EXPECT_EQ(execs[0].path(), "/nonexistent/vigil-exec");
  EXPECT_EQ(execs[0].return_value(), -ENOENT);
  EXPECT_EQ(execs[1].path(), "/bin/true");
  EXPECT_EQ(execs[1].return_value(), 0);
  EXPECT_EQ(execs[1].comm(), "true") << "reported after the new image took over";
  auto execats = OfKind(events, v1::EVENT_KIND_EXECVEAT);
  ASSERT_EQ(execats.size(), 1u);
  EXPECT_EQ(execats[0].path(), "/nonexistent/vigil-execat");
  EXPECT_EQ(execats[0].return_value(), run.values.v[1]);
  auto process_execs = OfKind(events, v1::EVENT_KIND_PROCESS_EXEC);
  ASSERT_EQ(process_execs.size(), 1u);
  EXPECT_EQ(process_execs[0].path(), "/bin/true");
}

TEST_P(ProbesTest, BpfMemfdAndMountAreReported) {
  ChildRun run;
  auto events = Observe(
      [](SharedValues* out) {
        out->v[0] = Raw(syscall(SYS_bpf, 999, nullptr, 0));
        out->v[1] = Raw(syscall(SYS_memfd_create, "vigil-probe-memfd", MFD_CLOEXEC));
        out->v[2] = Raw(mount("none", "/nonexistent/vigil-mnt", "tmpfs", 0, nullptr));
      },
      &run);
  auto bpfs = OfKind(events, v1::EVENT_KIND_BPF);
  ASSERT_EQ(bpfs.size(), 1u);
  EXPECT_EQ(bpfs[0].args(0), 999u);
  EXPECT_EQ(bpfs[0].return_value(), run.values.v[0]);
  EXPECT_LT(bpfs[0].return_value(), 0);
  auto memfds = OfKind(events, v1::EVENT_KIND_MEMFD_CREATE);
  ASSERT_EQ(memfds.size(), 1u);
  EXPECT_EQ(memfds[0].path(), "vigil-probe-memfd");
  EXPECT_EQ(memfds[0].return_value(), run.values.v[1]);
  EXPECT_GE(memfds[0].return_value(), 0);
  auto mounts = OfKind(events, v1::EVENT_KIND_MOUNT);
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].path(), "/nonexistent/vigil-mnt");
  EXPECT_EQ(mounts[0].return_value(), -ENOENT);
}

TEST_P(ProbesTest, ModuleLoadingIsReportedOrItsMissingHookIs) {
  bool has_hook = access("/sys/kernel/tracing/events/syscalls/sys_exit_finit_module", F_OK) == 0;
  if (!has_hook) {
    // This kernel has no module support: the hook is reported as refused, not silently gone.
    auto status = source_->Status();
    EXPECT_THAT(status.refused_hooks(), ::testing::Contains(::testing::HasSubstr(
                                            "tracepoint/syscalls/sys_exit_finit_module: ENOENT")));
    EXPECT_THAT(status.active_hooks(),
                ::testing::Not(::testing::Contains(::testing::HasSubstr("finit_module"))));
    return;
  }
  ChildRun run;
  auto events = Observe(
      [](SharedValues* out) { out->v[0] = Raw(syscall(SYS_finit_module, -1, "", 0)); }, &run);
  auto mods = OfKind(events, v1::EVENT_KIND_FINIT_MODULE);
  ASSERT_EQ(mods.size(), 1u);
  EXPECT_EQ(mods[0].return_value(), run.values.v[0]);
}

TEST_P(ProbesTest, SocketEventsCarryAddressAndPort) {
  ChildRun run;
  auto events = Observe(
      [](SharedValues* out) {
        int srv = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        out->v[0] = Raw(bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
        out->v[1] = Raw(listen(srv, 7));
        socklen_t len = sizeof(addr);
        getsockname(srv, reinterpret_cast<sockaddr*>(&addr), &len);
        out->v[2] = ntohs(addr.sin_port);
        int cli = socket(AF_INET, SOCK_STREAM, 0);
        out->v[3] = Raw(connect(cli, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
        int ux = socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        std::string name = absl::StrCat("vigil-probe-", getpid());
        std::memcpy(un.sun_path + 1, name.data(), name.size());
        out->v[4] = Raw(bind(ux, reinterpret_cast<sockaddr*>(&un),
                             offsetof(sockaddr_un, sun_path) + 1 + name.size()));
      },
      &run);
  auto binds = OfKind(events, v1::EVENT_KIND_BIND);
  ASSERT_EQ(binds.size(), 2u);
  EXPECT_EQ(binds[0].address(), "127.0.0.1");
  EXPECT_EQ(binds[0].port(), 0u);
  EXPECT_EQ(binds[0].return_value(), 0);
  EXPECT_EQ(binds[1].path(), absl::StrCat("@vigil-probe-", run.pid));
  EXPECT_EQ(binds[1].return_value(), run.values.v[4]);
  auto listens = OfKind(events, v1::EVENT_KIND_LISTEN);
  ASSERT_EQ(listens.size(), 1u);
  EXPECT_EQ(listens[0].args(1), 7u);
  EXPECT_EQ(listens[0].return_value(), 0);
  auto connects = OfKind(events, v1::EVENT_KIND_CONNECT);
  ASSERT_EQ(connects.size(), 1u);
  EXPECT_EQ(connects[0].address(), "127.0.0.1");
  EXPECT_EQ(connects[0].port(), static_cast<uint32_t>(run.values.v[2]));
  EXPECT_EQ(connects[0].return_value(), run.values.v[3]);
}

TEST_P(ProbesTest, NodesOwnPtraceOfAMonitoredProcessIsNotAnEvent) {
  EventLog log(source_);
  int release[2];
  ASSERT_EQ(pipe(release), 0);
  ChildRun run = RunChild(
      [&](SharedValues*) {
        char c;
        close(release[1]);
        (void)!read(release[0], &c, 1);
      },
      [&](int pid) {
        ASSERT_TRUE(source_->Monitor(pid).ok());
        // What the seccomp inspector does: seize, interrupt, wait for the stop, detach.
        ASSERT_EQ(ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), 0) << std::strerror(errno);
        ASSERT_EQ(ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr), 0);
        int st;
        ASSERT_EQ(waitpid(pid, &st, __WALL), pid);
        ASSERT_EQ(ptrace(PTRACE_DETACH, pid, nullptr, nullptr), 0);
        close(release[0]);
        (void)!write(release[1], "x", 1);
        close(release[1]);
      });
  ASSERT_TRUE(log.WaitForExit(run.pid));
  EXPECT_TRUE(log.Of(getpid()).empty()) << "the node itself is never monitored";
  EXPECT_TRUE(log.Of(run.pid, v1::EVENT_KIND_PTRACE).empty());
}

// Starts a child with exactly the pid `pid` (clone3 with set_tid; root) that calls
// prctl(PR_GET_DUMPABLE) once and exits; returns the clone3 result (the pid, or -errno).
long RunWithPid(int pid) {
  pid_t tid = pid;
  clone_args args{};
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uint64_t>(&tid);
  args.set_tid_size = 1;
  long r = syscall(SYS_clone3, &args, sizeof(args));
  if (r == 0) {
    syscall(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0);
    syscall(SYS_exit_group, 0);
  }
  if (r < 0) return -errno;
  waitpid(static_cast<pid_t>(r), nullptr, 0);
  return r;
}

// The probes check a bitmap indexed by pid on every hooked syscall: a monitored process's
// exit must clear its bit, or the next process given the same pid would be monitored.
TEST_P(ProbesTest, PidOfAnExitedMonitoredProcessIsNotMonitoredWhenReused) {
  EventLog log(source_);
  auto dumpable = [](SharedValues*) { syscall(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0); };
  auto monitor = [](int pid) { ASSERT_TRUE(source_->Monitor(pid).ok()); };
  ChildRun first = RunChild(dumpable, monitor);
  ASSERT_TRUE(log.WaitForExit(first.pid));
  ASSERT_EQ(log.Of(first.pid, v1::EVENT_KIND_PRCTL).size(), 1u);
  const size_t first_events = log.Of(first.pid).size();

  ASSERT_EQ(RunWithPid(first.pid), first.pid) << "the pid was taken again meanwhile";
  // Events arrive in order: once a later monitored process's exit is in, anything the
  // reused pid produced would be too.
  ChildRun later = RunChild(dumpable, monitor);
  ASSERT_TRUE(log.WaitForExit(later.pid));
  EXPECT_EQ(log.Of(later.pid, v1::EVENT_KIND_PRCTL).size(), 1u);
  EXPECT_EQ(log.Of(first.pid).size(), first_events)
      << "the process that reused the pid was monitored";
}

TEST_P(ProbesTest, StatusReportsHooksObjectDigestAndProgramTags) {
  auto status = source_->Status();
  EXPECT_THAT(status.active_hooks(),
              ::testing::Contains("tracepoint/syscalls/sys_exit_process_vm_readv"));
  EXPECT_THAT(status.active_hooks(), ::testing::Contains("tracepoint/sched/sched_process_exec"));
  EXPECT_THAT(status.refused_hooks(), ::testing::Contains(::testing::StartsWith("lsm: ")));
  EXPECT_THAT(status.refused_hooks(), ::testing::Contains(::testing::StartsWith("fentry: ")));
  // Each hook kind the kernel refuses is reported with its errno.
  const HookSupport hooks = DetectHookSupport();
  for (const std::string& refused : hooks.refused) {
    EXPECT_THAT(status.refused_hooks(), ::testing::Contains(refused));
  }
  EXPECT_EQ(status.bpf_object_sha256().size(), 64u);
  ASSERT_TRUE(status.program_tags().contains("exit_ptrace"));
  EXPECT_EQ(status.program_tags().at("exit_ptrace").size(), 16u);
  EXPECT_EQ(status.program_tags().size(), static_cast<size_t>(status.active_hooks_size()));
  for (const char* reason : {"ringbuf_full", "stash_full", "monitor_full", "queue_full"}) {
    EXPECT_TRUE(status.dropped_events().contains(reason)) << reason;
  }
}

// Every syscall exit hook this kernel has is attached; the entry hooks are attached exactly
// when asked for. The entry programs read only the arguments their tracepoint record has
// (the kernel refuses a program that reads past it), so none is refused for that.
TEST_P(ProbesTest, SyscallHooksAreAttachedAsConfigured) {
  const bool entry_hooks = GetParam();
  auto status = source_->Status();
  const std::string events = "/sys/kernel/tracing/events/syscalls/";
  int exits = 0, entries = 0;
  for (const auto& [program, tag] : status.program_tags()) {
    std::string_view name = program;
    if (name.substr(0, 5) == "exit_") {
      std::string syscall(name.substr(5));
      ++exits;
      EXPECT_THAT(status.active_hooks(),
                  ::testing::Contains("tracepoint/syscalls/sys_exit_" + syscall));
      EXPECT_EQ(access((events + "sys_exit_" + syscall).c_str(), F_OK), 0) << syscall;
      if (entry_hooks) {
        EXPECT_TRUE(status.program_tags().contains("enter_" + syscall)) << syscall;
        EXPECT_THAT(status.active_hooks(),
                    ::testing::Contains("tracepoint/syscalls/sys_enter_" + syscall));
      }
    }
    if (name.substr(0, 6) == "enter_") ++entries;
  }
  // 28 syscalls, minus the module syscalls this kernel may lack.
  EXPECT_GE(exits, 26);
  EXPECT_EQ(entries, entry_hooks ? exits : 0);
  for (const auto& hook : status.active_hooks()) {
    if (!entry_hooks) {
      EXPECT_THAT(hook, ::testing::Not(::testing::HasSubstr("sys_enter_")));
    }
  }
  for (const auto& refused : status.refused_hooks()) {
    EXPECT_THAT(refused, ::testing::Not(::testing::HasSubstr("EACCES")));
    if (!entry_hooks) {
      EXPECT_THAT(refused, ::testing::Not(::testing::HasSubstr("sys_enter_")));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EntryHooks, ProbesTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "EntryAndExit" : "ExitOnly";
                         });

}  // namespace
}  // namespace vigil::node
