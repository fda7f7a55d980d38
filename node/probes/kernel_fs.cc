#include "node/probes/kernel_fs.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace vigil::node {
namespace {

// Mounts `fstype` at `path` unless a filesystem with `magic` is already there.
absl::StatusOr<bool> EnsureMounted(const std::string& path, const char* fstype, long magic) {
  if (IsMountedFs(path, magic)) return false;
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("creating ", path, " for ", fstype, ": ", std::strerror(errno)));
  }
  if (::mount(fstype, path.c_str(), fstype, MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    int err = errno;
    // Another process may have mounted it between the check and our mount.
    if (err == EBUSY && IsMountedFs(path, magic)) return false;
    return absl::FailedPreconditionError(
        absl::StrCat("mounting ", fstype, " at ", path, ": ", std::strerror(err)));
  }
  spdlog::info("mounted {} at {}", fstype, path);
  return true;
}

}  // namespace

bool IsMountedFs(const std::string& path, long magic) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return false;
  return static_cast<long>(fs.f_type) == magic;
}

absl::StatusOr<KernelFilesystems> EnsureKernelFilesystems() {
  KernelFilesystems k;
  auto tracefs = EnsureMounted(k.tracefs, "tracefs", TRACEFS_MAGIC);
  if (!tracefs.ok()) return tracefs.status();
  k.mounted_tracefs = *tracefs;
  auto bpffs = EnsureMounted(k.bpffs, "bpf", BPF_FS_MAGIC);
  if (!bpffs.ok()) return bpffs.status();
  k.mounted_bpffs = *bpffs;
  return k;
}

}  // namespace vigil::node
