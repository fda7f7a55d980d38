// The loader copes with a machine where tracefs and bpffs are not mounted: it mounts them
// and the probes load. Each test runs in a child with a private mount namespace whose
// tracefs and bpffs have been unmounted, so the host's mounts are not touched.
#include "node/probes/kernel_fs.h"

#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "node/probes/bpf_event_source.h"

namespace vigil::node {
namespace {

// Unmounts every filesystem stacked at `path` (lazily), so none is left there.
bool UnmountAll(const char* path, long magic) {
  for (int i = 0; i < 16 && IsMountedFs(path, magic); ++i) {
    if (umount2(path, MNT_DETACH) != 0) return false;
  }
  return !IsMountedFs(path, magic);
}

// Runs `body` in a child inside a private mount namespace without tracefs and bpffs at
// their usual places. The child's exit status is `body`'s result: 0 on success, otherwise
// the number of the first failed step (printed to stderr with its reason).
int InBareMountNamespace(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0) _exit(100);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(101);
    if (!UnmountAll("/sys/kernel/tracing", TRACEFS_MAGIC)) _exit(102);
    if (!UnmountAll("/sys/fs/bpf", BPF_FS_MAGIC)) _exit(103);
    std::fflush(nullptr);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

TEST(KernelFsTest, MountsTracefsAndBpffsWhenMissingAndOnlyThen) {
  int result = InBareMountNamespace([] {
    if (IsMountedFs("/sys/kernel/tracing", TRACEFS_MAGIC)) return 1;
    if (IsMountedFs("/sys/fs/bpf", BPF_FS_MAGIC)) return 2;
    auto first = EnsureKernelFilesystems();
    if (!first.ok()) {
      std::fprintf(stderr, "%s\n", first.status().ToString().c_str());
      return 3;
    }
    if (!first->mounted_tracefs || !first->mounted_bpffs) return 4;
    if (!IsMountedFs("/sys/kernel/tracing", TRACEFS_MAGIC)) return 5;
    if (!IsMountedFs("/sys/fs/bpf", BPF_FS_MAGIC)) return 6;
    if (!std::filesystem::exists("/sys/kernel/tracing/events/sched/sched_process_exec")) return 7;
    // A second call finds them and mounts nothing more.
    auto second = EnsureKernelFilesystems();
    if (!second.ok() || second->mounted_tracefs || second->mounted_bpffs) return 8;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

TEST(KernelFsTest, ProbesLoadOnAMachineWithoutTracefsOrBpffs) {
  int result = InBareMountNamespace([] {
    auto source = BpfEventSource::Start(ProbeOptions{});
    if (!source.ok()) {
      std::fprintf(stderr, "%s\n", source.status().ToString().c_str());
      return 1;
    }
    v1::ProbeStatus status = (*source)->Status();
    // Every exit hook and the sched tracepoints: the tracepoints were found under the
    // tracefs the loader mounted.
    if (status.active_hooks_size() < 26 + 3) return 2;
    if (!IsMountedFs("/sys/kernel/tracing", TRACEFS_MAGIC)) return 3;
    if (!IsMountedFs("/sys/fs/bpf", BPF_FS_MAGIC)) return 4;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

TEST(KernelFsTest, IsMountedFsTellsFilesystemsApart) {
  EXPECT_TRUE(IsMountedFs("/proc", PROC_SUPER_MAGIC));
  EXPECT_FALSE(IsMountedFs("/proc", TRACEFS_MAGIC));
  EXPECT_FALSE(IsMountedFs("/nonexistent/vigil", PROC_SUPER_MAGIC));
}

}  // namespace
}  // namespace vigil::node
