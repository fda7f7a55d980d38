#include "node/privsep/privsep.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <set>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/policy/node_self.h"
#include "common/unique_fd.h"
#include "node/procfs/procfs.h"
#include "node/seccomp/seccomp_inspector.h"

namespace vigil::node::privsep {
namespace {

// A child that installs one filter (getppid fails with EPERM) and waits until killed.
class FilteredChild {
 public:
  FilteredChild() {
    int ready[2];
    EXPECT_EQ(pipe(ready), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      sock_filter insns[] = {
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      };
      sock_fprog prog{.len = 4, .filter = insns};
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
          syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
        _exit(1);
      }
      (void)!write(ready[1], "r", 1);
      for (;;) pause();
    }
    close(ready[1]);
    char c = 0;
    EXPECT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
  }
  ~FilteredChild() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

procfs::Status StatusOf(pid_t pid) {
  absl::StatusOr<procfs::Status> st = ReadProcessStatus(pid);
  EXPECT_TRUE(st.ok()) << st.status();
  return st.ok() ? *st : procfs::Status{};
}

std::set<int> OpenFds(pid_t pid) {
  std::set<int> out;
  DirPtr d(opendir(absl::StrCat("/proc/", pid, "/fd").c_str()));
  if (d == nullptr) return out;
  while (dirent* e = readdir(d.get())) {
    int fd = 0;
    if (absl::SimpleAtoi(e->d_name, &fd)) out.insert(fd);
  }
  return out;
}

TEST(PrivsepTest, PrivilegedProcessReadsFiltersWithOnlyItsCapabilities) {
  ASSERT_EQ(geteuid(), 0u) << "reading seccomp filters needs CAP_SYS_ADMIN";
  FilteredChild child;
  // A descriptor the privileged process must not inherit.
  UniqueFd stray(dup(0));
  absl::StatusOr<std::unique_ptr<PrivilegedClient>> client = StartPrivilegedProcess();
  ASSERT_TRUE(client.ok()) << client.status();
  const pid_t server = (*client)->server_pid();
  ASSERT_GT(server, 0);

  absl::StatusOr<std::vector<std::string>> remote = (*client)->ReadSeccompFilters(child.pid());
  ASSERT_TRUE(remote.ok()) << remote.status();
  absl::StatusOr<std::vector<std::string>> local = ReadSeccompFilters(child.pid());
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(remote->size(), 1u);
  EXPECT_EQ(*remote, *local);
  // A process without filters has none; a missing one is NotFound, as in-process.
  absl::StatusOr<std::vector<std::string>> none = (*client)->ReadSeccompFilters(getpid());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  procfs::Status st = StatusOf(server);
  EXPECT_EQ(st.name, kPrivilegedProcessName);
  EXPECT_EQ(st.cap_effective, policy::kNodePrivilegedCapabilities);
  EXPECT_EQ(st.cap_permitted, policy::kNodePrivilegedCapabilities);
  EXPECT_EQ(st.cap_bounding, policy::kNodePrivilegedCapabilities);
  EXPECT_EQ(st.cap_ambient, 0u);
  EXPECT_TRUE(st.no_new_privs);
  EXPECT_EQ(st.seccomp_mode, 0u);  // PTRACE_SECCOMP_GET_FILTER refuses a filtered caller
  EXPECT_EQ(OpenFds(server), (std::set<int>{0, 1, 2, 3}));

  v1::NodeSelfState self = ReadNodeSelfState(server);
  EXPECT_TRUE(self.privilege_separated());
  EXPECT_EQ(self.main().pid(), getpid());
  EXPECT_EQ(self.privileged().pid(), server);
  EXPECT_EQ(self.privileged().capabilities().effective(), policy::kNodePrivilegedCapabilities);
  EXPECT_TRUE(self.privileged().read_error().empty());

  // Closing the channel ends the privileged process cleanly; exited, its state is an error.
  client->reset();
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, server, &info, WEXITED | WNOWAIT), 0);  // a zombie, not yet reaped
  EXPECT_EQ(ReadNodeSelfState(server).privileged().read_error(),
            absl::StrCat("pid ", server, " has exited"));
  int status = 0;
  ASSERT_EQ(waitpid(server, &status, 0), server);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Why no seccomp-based systemd directive may wrap the node: a privileged process that
// inherited any filter is refused the read.
TEST(PrivsepTest, PrivilegedProcessUnderAnInheritedFilterIsRefusedTheRead) {
  ASSERT_EQ(geteuid(), 0u) << "reading seccomp filters needs CAP_SYS_ADMIN";
  FilteredChild target;
  const pid_t parent = fork();
  if (parent == 0) {
    sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    sock_fprog prog{.len = 1, .filter = allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
      _exit(2);
    }
    absl::StatusOr<std::unique_ptr<PrivilegedClient>> client = StartPrivilegedProcess();
    if (!client.ok()) _exit(3);
    absl::StatusOr<std::vector<std::string>> f = (*client)->ReadSeccompFilters(target.pid());
    _exit(absl::IsPermissionDenied(f.status()) ? 0 : 4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(parent, &status, 0), parent);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(PrivsepTest, PrivilegedProcessDiesWithItsParentEvenWhileTheChannelIsOpen) {
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t parent = fork();
  if (parent == 0) {
    absl::StatusOr<std::unique_ptr<PrivilegedClient>> client = StartPrivilegedProcess();
    if (!client.ok()) _exit(1);
    // A second child keeps the channel open, so only the parent's death can end the server.
    const pid_t holder = fork();
    if (holder == 0) {
      for (;;) pause();
    }
    const pid_t pids[2] = {(*client)->server_pid(), holder};
    (void)!write(report[1], pids, sizeof(pids));
    _exit(0);
  }
  close(report[1]);
  pid_t pids[2] = {0, 0};
  ASSERT_EQ(read(report[0], pids, sizeof(pids)), static_cast<ssize_t>(sizeof(pids)));
  close(report[0]);
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pids[0], 0)));
  const int open_errno = errno;
  ASSERT_EQ(waitpid(parent, nullptr, 0), parent);
  // The pidfd turns readable when the server has exited (killed by PR_SET_PDEATHSIG); ESRCH:
  // it was gone already.
  if (pidfd.Valid()) {
    pollfd p{.fd = pidfd.Get(), .events = POLLIN, .revents = 0};
    EXPECT_EQ(poll(&p, 1, 60000), 1);
  } else {
    EXPECT_EQ(open_errno, ESRCH);
  }
  EXPECT_TRUE(kill(pids[1], 0) == 0) << "the channel's other holder is still alive";
  kill(pids[1], SIGKILL);
}

}  // namespace
}  // namespace vigil::node::privsep
