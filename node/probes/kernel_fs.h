#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace vigil::node {

/// What EnsureKernelFilesystems found or did.
struct KernelFilesystems {
  /// Where tracefs is mounted (the probes look up tracepoints under <tracefs>/events).
  std::string tracefs = "/sys/kernel/tracing";
  std::string bpffs = "/sys/fs/bpf";
  /// Whether this call mounted them (they were missing).
  bool mounted_tracefs = false;
  bool mounted_bpffs = false;
};

/// Whether `path` is the root of a mounted filesystem whose statfs(2) f_type is `magic`.
bool IsMountedFs(const std::string& path, long magic);

/// Mounts tracefs at /sys/kernel/tracing and bpffs at /sys/fs/bpf when they are not
/// already there (checked by statfs magic), as the probes need both. Fails when a mount is
/// missing and cannot be made (not root, no such filesystem).
absl::StatusOr<KernelFilesystems> EnsureKernelFilesystems();

}  // namespace vigil::node
