#pragma once

// The executable memory of one process, read from procfs from outside it: anonymous
// executable regions (with whether each is locked and whether the process can write them
// through another mapping or a descriptor) and the files mapped executable, with hashes.

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "node/procfs/file_hash_cache.h"
#include "node/procfs/procfs.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// A file identity as the kernel reports it in maps and stat: device and inode.
using FileId = std::pair<uint64_t, uint64_t>;

/// Where and how to read one process's memory.
struct MemorySource {
  /// The procfs directory of the thread to read (/proc/<pid> or /proc/<pid>/task/<tid>):
  /// its maps or smaps and its root.
  std::string dir;
  /// /proc/<pid>/map_files, which reaches each mapped file itself. The kernel serves it from
  /// the main thread only, so it is unusable once that thread has exited.
  std::string map_files_dir;
  /// Whether any mapping may be locked (VmLck > 0 or unknown). When none can be, the much
  /// cheaper maps is read instead of smaps, which walks every page of every mapping.
  bool may_be_locked = true;
  /// Files the process holds open for writing (from its descriptors).
  absl::flat_hash_set<FileId> files_open_for_writing;
};

/// Whether a mapping is anonymous memory for the report: no backing file, or memory the
/// kernel backs with an inode on its internal shared-memory mount (memfd_create(2),
/// MAP_SHARED|MAP_ANONYMOUS shown as "/dev/zero (deleted)", System V shared memory
/// "/SYSV...", hugetlb "/anon_hugepage (deleted)"). [vdso] and [vsyscall] are not: the
/// kernel maps them into every process and the process cannot write them.
/// `shm_device` is that internal mount's device (0 when unknown).
bool IsAnonymousMemory(const procfs::Mapping& m, uint64_t shm_device);

/// The device of the kernel's internal shared-memory mount, found once by creating a
/// memfd; 0 when that fails.
uint64_t InternalShmDevice();

/// Fills `mem` with the executable mappings of the process `src` describes. A file mapped
/// executable is listed once (by device and inode), with its exact path (the map_files link,
/// since maps escapes a newline in a path as "\012") and the SHA-256 of the mapped file.
/// What cannot be read is appended to `problems`; the rest is still filled.
void ReadExecutableMemory(const MemorySource& src, FileHashCache* hashes, v1::MemoryState* mem,
                          std::vector<absl::Status>* problems);

}  // namespace vigil::node
