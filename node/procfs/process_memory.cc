#include "node/procfs/process_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/unique_fd.h"

namespace vigil::node {
namespace {

FileId IdOf(const procfs::Mapping& m) { return {makedev(m.dev_major, m.dev_minor), m.inode}; }

bool SharedWritable(const procfs::Mapping& m) {
  return m.writable() && m.permissions.size() > 3 && m.permissions[3] == 's';
}

}  // namespace

uint64_t InternalShmDevice() {
  static const uint64_t device = [] {
    UniqueFd fd(memfd_create("vigil-shm-device", MFD_CLOEXEC));
    if (!fd.Valid()) return uint64_t{0};
    struct stat st {};
    return fstat(fd.Get(), &st) == 0 ? static_cast<uint64_t>(st.st_dev) : uint64_t{0};
  }();
  return device;
}

bool IsAnonymousMemory(const procfs::Mapping& m, uint64_t shm_device) {
  if (m.path == "[vdso]" || m.path == "[vsyscall]") return false;
  if (m.anonymous()) return true;
  if (shm_device != 0 && makedev(m.dev_major, m.dev_minor) == shm_device) return true;
  // memfds on hugetlbfs and hugetlb shared memory live on other internal mounts; the kernel
  // names them, and no file on a mounted filesystem is called so with " (deleted)".
  return absl::StartsWith(m.path, "/memfd:") || absl::StartsWith(m.path, "/SYSV") ||
         m.path == "/anon_hugepage (deleted)";
}

void ReadExecutableMemory(const MemorySource& src, FileHashCache* hashes, v1::MemoryState* mem,
                          std::vector<absl::Status>* problems) {
  std::vector<procfs::Mapping> executable;
  // Objects the process maps shared and writable: writes through such a mapping reach every
  // other mapping of the object, an executable one included.
  absl::flat_hash_set<FileId> written = src.files_open_for_writing;
  absl::Status st = procfs::ForEachMapping(
      absl::StrCat(src.dir, src.may_be_locked ? "/smaps" : "/maps"), [&](procfs::Mapping&& m) {
        if (m.inode != 0 && SharedWritable(m)) written.insert(IdOf(m));
        if (m.executable()) executable.push_back(std::move(m));
      });
  if (!st.ok()) {
    problems->push_back(st);
    return;
  }
  const uint64_t shm_device = InternalShmDevice();
  absl::flat_hash_set<FileId> files_seen;
  for (const procfs::Mapping& m : executable) {
    const bool alias = m.inode != 0 && written.contains(IdOf(m));
    if (IsAnonymousMemory(m, shm_device)) {
      v1::MemoryRegion* r = mem->add_anonymous_executable();
      r->set_start(m.start);
      r->set_end(m.end);
      r->set_permissions(procfs::Printable(m.permissions));
      r->set_writable(m.writable());
      r->set_writable_alias(alias);
      r->set_size_kib(m.size_kib);
      // VM_LOCKED locks every page of the mapping; smaps' Locked: would undercount pages
      // shared with a forked child (it is proportional).
      r->set_locked_kib(m.vm_locked ? m.size_kib : m.locked_kib);
      r->set_name(procfs::Printable(m.path));
      continue;
    }
    if (m.anonymous()) continue;  // [vdso], [vsyscall]
    if (!files_seen.insert(IdOf(m)).second) continue;
    v1::MappedFile* f = mem->add_executable_files();
    f->set_inode(m.inode);
    f->set_device(IdOf(m).first);
    f->set_writable_alias(alias);
    // map_files reaches the mapped file itself, whatever mount namespace the process is in
    // and even when the path was deleted or replaced.
    std::string link = absl::StrFormat("%s/%x-%x", src.map_files_dir, m.start, m.end);
    FileHashRequest want;
    want.bypass_cache = alias;  // its contents can change without its mtime changing
    auto exact = procfs::ReadLink(link);
    f->set_path(procfs::Printable(exact.ok() ? *exact : m.path));
    absl::StatusOr<std::string> h = hashes->HashHex(link, want);
    if (!h.ok() && !absl::EndsWith(m.path, " (deleted)")) {
      // Without map_files (the main thread exited, or a reader without CAP_SYS_ADMIN or
      // CAP_CHECKPOINT_RESTORE, which may read the links but not open them): the path as
      // maps prints it, which is relative to the process's root when the node cannot reach
      // that root's mount and to the node's root otherwise, accepted only if it still names
      // the mapped file.
      want.identity = IdOf(m);
      for (const std::string& path : {absl::StrCat(src.dir, "/root", m.path), m.path}) {
        if (h.ok()) break;
        h = hashes->HashHex(path, want);
      }
    }
    if (h.ok()) {
      f->set_sha256(*h);
    } else {
      problems->push_back(h.status());
    }
  }
}

}  // namespace vigil::node
