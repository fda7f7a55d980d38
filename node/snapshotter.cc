#include "node/snapshotter.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "node/procfs.h"
#include "node/seccomp_inspector.h"

namespace vigil::node {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// Numeric entries of a directory (fds, tids), sorted.
absl::StatusOr<std::vector<int>> NumericEntries(const std::string& dir) {
  DirPtr d(opendir(dir.c_str()));
  if (d == nullptr) return absl::ErrnoToStatus(errno, dir);
  std::vector<int> out;
  while (dirent* e = readdir(d.get())) {
    int n = 0;
    if (absl::SimpleAtoi(e->d_name, &n) && n >= 0) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A parse error does not name the file; a read error already does.
absl::Status WithPath(const std::string& path, const absl::Status& st) {
  return absl::Status(st.code(), absl::StrCat(path, ": ", st.message()));
}

void AddGap(int pid, const absl::Status& st, std::vector<std::string>* gaps) {
  gaps->push_back(absl::StrCat("pid ", pid, ": ", procfs::Printable(st.message())));
}

int64_t ClockNanos(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Anonymous memory for the report: no backing file, or a memfd (whose inode lives on an
// internal tmpfs). The kernel's own [vdso]/[vsyscall] pages are in every process and not
// writable by it, so they are left out.
bool IsAnonymousForReport(const procfs::Mapping& m) {
  if (m.path == "[vdso]" || m.path == "[vsyscall]") return false;
  return m.anonymous() || m.path.rfind("/memfd:", 0) == 0;
}

}  // namespace

Snapshotter::Snapshotter(SnapshotOptions options, FileHashCache* hashes)
    : options_(std::move(options)),
      hashes_(hashes),
      boot_unix_nano_(ClockNanos(CLOCK_REALTIME) - ClockNanos(CLOCK_BOOTTIME)),
      ticks_per_second_(sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100) {}

std::string Snapshotter::Path(int pid, absl::string_view file) const {
  return absl::StrCat(options_.proc_root, "/", pid, "/", file);
}

absl::StatusOr<v1::ProcessSnapshot> Snapshotter::Snapshot(int pid,
                                                          std::vector<std::string>* gaps) const {
  auto stat_text = procfs::ReadFile(Path(pid, "stat"));
  if (!stat_text.ok()) return absl::NotFoundError(stat_text.status().message());
  auto stat = procfs::ParseStat(*stat_text);
  if (!stat.ok()) return stat.status();

  v1::ProcessSnapshot s;
  std::vector<std::string> local_gaps;
  s.set_pid(pid);
  s.set_ppid(stat->ppid);
  s.set_comm(procfs::Printable(stat->comm));
  s.set_started_unix_nano(boot_unix_nano_ + static_cast<int64_t>(stat->start_time_ticks) *
                                                (1000000000 / ticks_per_second_));
  if (auto comm = procfs::ReadFile(Path(pid, "comm")); comm.ok()) {
    std::string c = *comm;
    if (!c.empty() && c.back() == '\n') c.pop_back();
    s.set_comm(procfs::Printable(c));
  }

  ReadCredentialsAndState(pid, &s, &local_gaps);
  if (stat->state == 'Z') {
    local_gaps.push_back(absl::StrCat("pid ", pid, ": zombie (exited, not yet reaped)"));
  } else {
    if (auto exe = procfs::ReadLink(Path(pid, "exe")); exe.ok()) {
      s.set_exe_path(procfs::Printable(*exe));
      if (auto h = hashes_->HashHex(Path(pid, "exe")); h.ok()) {
        s.set_exe_sha256(*h);
      } else {
        AddGap(pid, h.status(), &local_gaps);
      }
    } else {
      AddGap(pid, exe.status(), &local_gaps);
    }
    if (auto cmd = procfs::ReadFile(Path(pid, "cmdline"), 1 << 20); cmd.ok()) {
      for (const std::string& a : procfs::SplitCmdline(*cmd)) s.add_cmdline(procfs::Printable(a));
    } else {
      AddGap(pid, cmd.status(), &local_gaps);
    }
    ReadMemory(pid, &s, &local_gaps);
    ReadFiles(pid, &s, &local_gaps);
    InspectSeccomp(pid, &s);
  }
  if (auto cg = procfs::ReadFile(Path(pid, "cgroup")); cg.ok()) {
    std::string path = procfs::ParseCgroupV2Path(*cg);
    s.set_container_id(procfs::ContainerIdFromCgroup(path));
    s.set_cgroup(procfs::Printable(path));
  } else {
    AddGap(pid, cg.status(), &local_gaps);
  }
  ReadNamespaces(pid, &s, &local_gaps);
  ReadChildren(pid, &s, &local_gaps);

  // A process that exited (or whose pid was reused) while we read it yields a mix of two
  // processes or a page of gaps: report it as gone instead.
  auto again = procfs::ReadFile(Path(pid, "stat"));
  if (!again.ok()) return absl::NotFoundError(absl::StrCat("pid ", pid, " exited"));
  auto stat2 = procfs::ParseStat(*again);
  if (!stat2.ok() || stat2->start_time_ticks != stat->start_time_ticks) {
    return absl::NotFoundError(absl::StrCat("pid ", pid, " exited"));
  }
  gaps->insert(gaps->end(), local_gaps.begin(), local_gaps.end());
  return s;
}

void Snapshotter::ReadCredentialsAndState(int pid, v1::ProcessSnapshot* s,
                                          std::vector<std::string>* gaps) const {
  auto text = procfs::ReadFile(Path(pid, "status"));
  absl::StatusOr<procfs::Status> st =
      text.ok() ? procfs::ParseStatus(*text) : absl::StatusOr<procfs::Status>(text.status());
  if (!text.ok()) {
    AddGap(pid, text.status(), gaps);
  } else if (!st.ok()) {
    AddGap(pid, WithPath(Path(pid, "status"), st.status()), gaps);
  } else {
    v1::Credentials* c = s->mutable_credentials();
    c->set_uid_real(st->uid[0]);
    c->set_uid_effective(st->uid[1]);
    c->set_uid_saved(st->uid[2]);
    c->set_uid_fs(st->uid[3]);
    c->set_gid_real(st->gid[0]);
    c->set_gid_effective(st->gid[1]);
    c->set_gid_saved(st->gid[2]);
    c->set_gid_fs(st->gid[3]);
    for (uint32_t g : st->groups) c->add_supplementary_gids(g);
    v1::Capabilities* caps = s->mutable_capabilities();
    caps->set_inheritable(st->cap_inheritable);
    caps->set_permitted(st->cap_permitted);
    caps->set_effective(st->cap_effective);
    caps->set_bounding(st->cap_bounding);
    caps->set_ambient(st->cap_ambient);
    v1::SeccompState* sec = s->mutable_seccomp();
    sec->set_mode(st->seccomp_mode);
    sec->set_filter_count(st->seccomp_filters);
    sec->set_no_new_privs(st->no_new_privs);
    s->set_vm_locked_kib(st->vm_locked_kib);
  }
  for (const char* file : {"uid_map", "gid_map"}) {
    auto map_text = procfs::ReadFile(Path(pid, file));
    auto lines = map_text.ok() ? procfs::ParseIdMap(*map_text)
                               : absl::StatusOr<std::vector<procfs::IdMapLine>>(map_text.status());
    if (!lines.ok()) {
      AddGap(pid, lines.status(), gaps);
      continue;
    }
    auto* out = absl::string_view(file) == "uid_map" ? s->mutable_credentials()->mutable_uid_map()
                                                     : s->mutable_credentials()->mutable_gid_map();
    for (const procfs::IdMapLine& l : *lines) {
      v1::IdMapping* m = out->Add();
      m->set_inside(l.inside);
      m->set_outside(l.outside);
      m->set_count(l.count);
    }
  }
}

void Snapshotter::ReadMemory(int pid, v1::ProcessSnapshot* s,
                             std::vector<std::string>* gaps) const {
  auto text = procfs::ReadFile(Path(pid, "smaps"));
  auto maps = text.ok() ? procfs::ParseSmaps(*text)
                        : absl::StatusOr<std::vector<procfs::Mapping>>(text.status());
  if (!maps.ok()) {
    AddGap(pid, maps.status(), gaps);
    return;
  }
  v1::MemoryState* mem = s->mutable_memory();
  std::set<std::pair<uint64_t, uint64_t>> files_seen;  // (device, inode)
  for (const procfs::Mapping& m : *maps) {
    if (!m.executable()) continue;
    if (IsAnonymousForReport(m)) {
      v1::MemoryRegion* r = mem->add_anonymous_executable();
      r->set_start(m.start);
      r->set_end(m.end);
      r->set_permissions(procfs::Printable(m.permissions));
      r->set_writable(m.writable());
      r->set_size_kib(m.size_kib);
      // VM_LOCKED locks every page of the mapping; smaps' Locked: would undercount pages
      // shared with a forked child (it is proportional).
      r->set_locked_kib(m.vm_locked ? m.size_kib : m.locked_kib);
      r->set_name(procfs::Printable(m.path));
      continue;
    }
    if (m.anonymous()) continue;  // [vdso], [vsyscall]
    uint64_t dev = makedev(m.dev_major, m.dev_minor);
    if (!files_seen.insert({dev, m.inode}).second) continue;
    v1::MappedFile* f = mem->add_executable_files();
    f->set_path(procfs::Printable(m.path));
    f->set_inode(m.inode);
    f->set_device(dev);
    // map_files reaches the mapped file itself, whatever mount namespace the process is in
    // and even when the path was deleted or replaced.
    std::string link = Path(pid, absl::StrFormat("map_files/%x-%x", m.start, m.end));
    if (auto h = hashes_->HashHex(link); h.ok()) {
      f->set_sha256(*h);
    } else {
      AddGap(pid, h.status(), gaps);
    }
  }
}

void Snapshotter::ReadFiles(int pid, v1::ProcessSnapshot* s, std::vector<std::string>* gaps) const {
  auto fds = NumericEntries(Path(pid, "fd"));
  if (!fds.ok()) {
    AddGap(pid, fds.status(), gaps);
    return;
  }
  absl::flat_hash_set<uint64_t> socket_inodes;
  for (int fd : *fds) {
    auto target = procfs::ReadLink(Path(pid, absl::StrCat("fd/", fd)));
    if (!target.ok()) continue;  // closed meanwhile: not a gap
    if (auto ino = procfs::ParseSocketLink(*target)) {
      socket_inodes.insert(*ino);
      continue;
    }
    for (const SensitivePath& sp : options_.sensitive_paths) {
      if (fnmatch(sp.glob.c_str(), target->c_str(), 0) != 0) continue;
      v1::OpenFile* f = s->add_sensitive_files();
      f->set_fd(fd);
      f->set_path(procfs::Printable(*target));
      f->set_classification(sp.classification);
      auto info = procfs::ReadFile(Path(pid, absl::StrCat("fdinfo/", fd)));
      auto flags =
          info.ok() ? procfs::ParseFdInfoFlags(*info) : absl::StatusOr<uint32_t>(info.status());
      if (flags.ok()) {
        f->set_flags(*flags);
      }
      break;
    }
  }
  if (socket_inodes.empty()) return;
  // /proc/<pid>/net/* describes the process's network namespace.
  for (const char* proto : {"tcp", "tcp6", "udp", "udp6", "unix"}) {
    auto table = procfs::ReadFile(Path(pid, absl::StrCat("net/", proto)));
    if (!table.ok()) {
      // IPv6 may be disabled: a missing table is not a gap.
      if (!absl::IsNotFound(table.status())) AddGap(pid, table.status(), gaps);
      continue;
    }
    auto entries = absl::string_view(proto) == "unix" ? procfs::ParseNetUnix(*table)
                                                      : procfs::ParseNetInet(*table, proto);
    if (!entries.ok()) {
      AddGap(pid, WithPath(Path(pid, absl::StrCat("net/", proto)), entries.status()), gaps);
      continue;
    }
    for (const procfs::SocketEntry& e : *entries) {
      if (!socket_inodes.contains(e.inode)) continue;
      v1::Socket* out = s->add_sockets();
      out->set_protocol(e.protocol);
      out->set_state(e.state);
      out->set_local_address(e.local_address);
      out->set_local_port(e.local_port);
      out->set_remote_address(e.remote_address);
      out->set_remote_port(e.remote_port);
      out->set_inode(e.inode);
    }
  }
}

void Snapshotter::ReadNamespaces(int pid, v1::ProcessSnapshot* s,
                                 std::vector<std::string>* gaps) const {
  for (const char* ns : {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}) {
    auto target = procfs::ReadLink(Path(pid, absl::StrCat("ns/", ns)));
    if (!target.ok()) {
      if (!absl::IsNotFound(target.status())) AddGap(pid, target.status(), gaps);
      continue;
    }
    if (auto ino = procfs::ParseNamespaceLink(*target); ino.ok()) {
      (*s->mutable_namespaces())[ns] = *ino;
    } else {
      AddGap(pid, ino.status(), gaps);
    }
  }
  auto mountinfo = procfs::ReadFile(Path(pid, "mountinfo"));
  auto ro = mountinfo.ok() ? procfs::ParseRootReadOnly(*mountinfo)
                           : absl::StatusOr<bool>(mountinfo.status());
  if (ro.ok()) {
    s->set_root_read_only(*ro);
  } else {
    AddGap(pid, mountinfo.ok() ? WithPath(Path(pid, "mountinfo"), ro.status()) : ro.status(), gaps);
  }
}

void Snapshotter::ReadChildren(int pid, v1::ProcessSnapshot* s,
                               std::vector<std::string>* gaps) const {
  auto tids = NumericEntries(Path(pid, "task"));
  if (!tids.ok()) {
    AddGap(pid, tids.status(), gaps);
    return;
  }
  std::set<int> children;
  for (int tid : *tids) {
    auto text = procfs::ReadFile(Path(pid, absl::StrCat("task/", tid, "/children")));
    if (!text.ok()) continue;  // the thread exited meanwhile
    if (auto pids = procfs::ParsePidList(*text); pids.ok()) {
      children.insert(pids->begin(), pids->end());
    } else {
      AddGap(pid, pids.status(), gaps);
    }
  }
  for (int c : children) s->add_children(c);
}

void Snapshotter::InspectSeccomp(int pid, v1::ProcessSnapshot* s) const {
  if (options_.seccomp_syscalls.empty()) return;
  v1::SeccompState* sec = s->mutable_seccomp();
  if (pid == getpid()) {
    // A process cannot ptrace itself; the node's own state is measured, not inspected.
    sec->set_inspection_error("the node does not inspect its own filters");
    return;
  }
  // The inspector records its own failure in inspection_error; nothing more to add here.
  (void)InspectSeccompFilters(pid, options_.seccomp_syscalls, sec);
}

}  // namespace vigil::node
