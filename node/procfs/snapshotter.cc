#include "node/procfs/snapshotter.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "node/procfs/process_memory.h"
#include "node/procfs/process_sockets.h"
#include "node/seccomp/seccomp_inspector.h"

namespace vigil::node {
namespace {

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

absl::StatusOr<procfs::Status> ReadStatus(const std::string& dir) {
  std::string path = absl::StrCat(dir, "/status");
  ASSIGN_OR_RETURN(std::string text, procfs::ReadFile(path));
  auto st = procfs::ParseStatus(text);
  if (!st.ok()) return WithPath(path, st.status());
  return st;
}

bool SameSeccomp(const procfs::Status& a, const procfs::Status& b) {
  return a.seccomp_mode == b.seccomp_mode && a.seccomp_filters == b.seccomp_filters &&
         a.no_new_privs == b.no_new_privs;
}

bool SameSecurityState(const procfs::Status& a, const procfs::Status& b) {
  return std::equal(a.uid, a.uid + 4, b.uid) && std::equal(a.gid, a.gid + 4, b.gid) &&
         a.groups == b.groups && a.cap_inheritable == b.cap_inheritable &&
         a.cap_permitted == b.cap_permitted && a.cap_effective == b.cap_effective &&
         a.cap_bounding == b.cap_bounding && a.cap_ambient == b.cap_ambient && SameSeccomp(a, b);
}

// Namespaces a thread can leave on its own (unshare(2) or setns(2) in one thread); a
// multithreaded process cannot change its user namespace, and pid and time namespaces
// change for children only.
constexpr const char* kThreadNamespaces[] = {"mnt", "net", "ipc", "uts", "cgroup"};
constexpr const char* kNamespaces[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};

// The stat fields that change when a process exits or execs.
bool SameImage(const procfs::Stat& a, const procfs::Stat& b) {
  return a.exited() == b.exited() && std::equal(a.image, a.image + 4, b.image);
}

}  // namespace

void FillIds(const procfs::Status& st, v1::Credentials* c) {
  c->set_uid_real(st.uid[0]);
  c->set_uid_effective(st.uid[1]);
  c->set_uid_saved(st.uid[2]);
  c->set_uid_fs(st.uid[3]);
  c->set_gid_real(st.gid[0]);
  c->set_gid_effective(st.gid[1]);
  c->set_gid_saved(st.gid[2]);
  c->set_gid_fs(st.gid[3]);
  for (uint32_t g : st.groups) c->add_supplementary_gids(g);
}

void FillCapabilities(const procfs::Status& st, v1::Capabilities* caps) {
  caps->set_inheritable(st.cap_inheritable);
  caps->set_permitted(st.cap_permitted);
  caps->set_effective(st.cap_effective);
  caps->set_bounding(st.cap_bounding);
  caps->set_ambient(st.cap_ambient);
}

void FillSeccompStatus(const procfs::Status& st, v1::SeccompState* sec) {
  sec->set_mode(st.seccomp_mode);
  sec->set_filter_count(st.seccomp_filters);
  sec->set_no_new_privs(st.no_new_privs);
}

Snapshotter::Snapshotter(SnapshotOptions options, FileHashCache* hashes)
    : options_(std::move(options)),
      hashes_(hashes),
      boot_unix_nano_(ClockNanos(CLOCK_REALTIME) - ClockNanos(CLOCK_BOOTTIME)),
      ticks_per_second_(sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100) {}

void Snapshotter::SetPolicyTargets(std::vector<std::string> seccomp_syscalls,
                                   std::vector<SensitivePath> sensitive_paths) {
  options_.seccomp_syscalls = std::move(seccomp_syscalls);
  options_.sensitive_paths = std::move(sensitive_paths);
}

std::string Snapshotter::Path(int pid, absl::string_view file) const {
  return absl::StrCat(options_.proc_root, "/", pid, "/", file);
}

absl::StatusOr<v1::ProcessSnapshot> Snapshotter::Snapshot(int pid,
                                                          std::vector<std::string>* gaps) const {
  const std::string stat_path = Path(pid, "stat");
  constexpr int kAttempts = 3;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto stat_text = procfs::ReadFile(stat_path);
    if (!stat_text.ok()) {
      return absl::NotFoundError(
          absl::StrCat("no such process (", stat_text.status().message(), ")"));
    }
    auto stat = procfs::ParseStat(*stat_text);
    if (!stat.ok()) return WithPath(stat_path, stat.status());
    if (stat->kernel_thread()) {
      return absl::FailedPreconditionError(
          absl::StrCat(procfs::Printable(stat->comm),
                       " is a kernel thread: it has no executable, memory map or files to "
                       "snapshot"));
    }
    const Target t = FindTarget(pid, *stat);
    std::vector<std::string> local_gaps;
    ASSIGN_OR_RETURN(v1::ProcessSnapshot s, SnapshotOnce(t, *stat, &local_gaps));

    // A process that exited (or whose pid was reused) while we read it yields a mix of two
    // processes or a page of gaps: report it as gone instead. An exited process keeps its
    // pid and start time until it is reaped, so exiting is checked on its own.
    const auto gone = absl::NotFoundError("exited while it was read");
    auto again = procfs::ReadFile(stat_path);
    if (!again.ok()) return gone;
    auto stat2 = procfs::ParseStat(*again);
    if (!stat2.ok() || stat2->start_time_ticks != stat->start_time_ticks) return gone;
    if (stat2->exited() && !t.zombie && !FirstRunningThread(pid).has_value()) return gone;
    // execve(2) replaced the program, or the main thread exited, meanwhile: read again.
    if (!SameImage(*stat, *stat2)) continue;
    gaps->insert(gaps->end(), local_gaps.begin(), local_gaps.end());
    return s;
  }
  return absl::UnavailableError(
      absl::StrCat("replaced its program (execve) each of the ", kAttempts, " times it was read"));
}

std::optional<int> Snapshotter::FirstRunningThread(int pid) const {
  auto tids = NumericEntries(Path(pid, "task"));
  for (int tid : tids.ok() ? *tids : std::vector<int>()) {
    auto text = procfs::ReadFile(Path(pid, absl::StrCat("task/", tid, "/stat")));
    auto ts = text.ok() ? procfs::ParseStat(*text) : absl::StatusOr<procfs::Stat>(text.status());
    if (ts.ok() && !ts->exited()) return tid;
  }
  return std::nullopt;
}

Snapshotter::Target Snapshotter::FindTarget(int pid, const procfs::Stat& stat) const {
  Target t{pid, pid, absl::StrCat(options_.proc_root, "/", pid), false, false};
  if (!stat.exited()) return t;
  // The main thread is a zombie: the process lives on while another thread runs.
  std::optional<int> tid = FirstRunningThread(pid);
  if (!tid.has_value()) {
    t.zombie = true;
    return t;
  }
  t.tid = *tid;
  t.dir = Path(pid, absl::StrCat("task/", *tid));
  t.main_thread_exited = true;
  return t;
}

absl::StatusOr<v1::ProcessSnapshot> Snapshotter::SnapshotOnce(
    const Target& t, const procfs::Stat& stat, std::vector<std::string>* gaps) const {
  const int pid = t.pid;
  v1::ProcessSnapshot s;
  s.set_pid(pid);
  s.set_ppid(stat.ppid);
  s.set_comm(procfs::Printable(stat.comm));
  s.set_started_unix_nano(boot_unix_nano_ + static_cast<int64_t>(stat.start_time_ticks) *
                                                (1000000000 / ticks_per_second_));
  if (auto comm = procfs::ReadFile(Path(pid, "comm")); comm.ok()) {
    std::string c = *comm;
    if (!c.empty() && c.back() == '\n') c.pop_back();
    s.set_comm(procfs::Printable(c));
  }
  s.set_main_thread_exited(t.main_thread_exited);

  std::optional<procfs::Status> status = ReadCredentialsAndState(t, &s, gaps);
  if (auto cg = procfs::ReadFile(t.dir + "/cgroup"); cg.ok()) {
    s.set_container_id(procfs::ContainerIdFromCgroupFile(*cg));
    s.set_cgroup(procfs::Printable(procfs::ParseCgroupPath(*cg)));
  } else {
    AddGap(pid, cg.status(), gaps);
  }
  if (t.zombie) {
    gaps->push_back(absl::StrCat("pid ", pid,
                                 ": zombie (exited, not yet reaped by its parent): only its ids, "
                                 "capabilities, seccomp state and cgroup remain"));
    return s;
  }

  if (auto exe = procfs::ReadLink(t.dir + "/exe"); exe.ok()) {
    s.set_exe_path(procfs::Printable(*exe));
    if (auto h = hashes_->HashHex(t.dir + "/exe"); h.ok()) {
      s.set_exe_sha256(*h);
    } else {
      AddGap(pid, h.status(), gaps);
    }
  } else {
    AddGap(pid, exe.status(), gaps);
  }
  constexpr size_t kMaxCmdline = 1 << 20;
  bool truncated = false;
  if (auto cmd = procfs::ReadFile(t.dir + "/cmdline", kMaxCmdline, &truncated); cmd.ok()) {
    for (const std::string& a : procfs::SplitCmdline(*cmd)) s.add_cmdline(procfs::Printable(a));
    if (truncated) {
      gaps->push_back(absl::StrCat("pid ", pid, ": ", t.dir, "/cmdline: longer than ", kMaxCmdline,
                                   " bytes; its first ", kMaxCmdline, " are reported"));
    }
  } else {
    AddGap(pid, cmd.status(), gaps);
  }

  std::vector<OpenFd> fds = ReadFds(t, gaps);
  MemorySource mem;
  mem.dir = t.dir;
  mem.map_files_dir = Path(pid, "map_files");
  mem.may_be_locked = !status.has_value() || !status->vm_locked_known || status->vm_locked_kib > 0;
  for (const OpenFd& f : fds) {
    struct stat st {};
    if (f.writable && ::stat(absl::StrCat(t.dir, "/fd/", f.fd).c_str(), &st) == 0) {
      mem.files_open_for_writing.insert({st.st_dev, st.st_ino});
    }
  }
  std::vector<absl::Status> problems;
  ReadExecutableMemory(mem, hashes_, s.mutable_memory(), &problems);
  for (const absl::Status& p : problems) AddGap(pid, p, gaps);
  ReadFiles(t, fds, &s, gaps);
  InspectSeccomp(pid, t.tid, s.mutable_seccomp());
  ReadNamespaces(t, &s, gaps);
  if (status.has_value()) ReadThreads(t, *status, &s, gaps);
  ReadChildren(pid, &s, gaps);
  return s;
}

std::optional<procfs::Status> Snapshotter::ReadCredentialsAndState(
    const Target& t, v1::ProcessSnapshot* s, std::vector<std::string>* gaps) const {
  auto st = ReadStatus(t.dir);
  if (!st.ok()) AddGap(t.pid, st.status(), gaps);
  if (st.ok()) {
    FillIds(*st, s->mutable_credentials());
    FillCapabilities(*st, s->mutable_capabilities());
    FillSeccompStatus(*st, s->mutable_seccomp());
    s->set_vm_locked_kib(st->vm_locked_kib);
  }
  for (const char* file : {"uid_map", "gid_map"}) {
    auto map_text = procfs::ReadFile(absl::StrCat(t.dir, "/", file));
    auto lines = map_text.ok() ? procfs::ParseIdMap(*map_text)
                               : absl::StatusOr<std::vector<procfs::IdMapLine>>(map_text.status());
    if (!lines.ok()) {
      AddGap(t.pid, lines.status(), gaps);
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
  if (!st.ok()) return std::nullopt;
  return *std::move(st);
}

std::vector<Snapshotter::OpenFd> Snapshotter::ReadFds(const Target& t,
                                                      std::vector<std::string>* gaps) const {
  std::vector<OpenFd> out;
  auto fds = NumericEntries(t.dir + "/fd");
  if (!fds.ok()) {
    AddGap(t.pid, fds.status(), gaps);
    return out;
  }
  for (int fd : *fds) {
    std::string link = absl::StrCat(t.dir, "/fd/", fd);
    auto target = procfs::ReadLink(link);
    if (!target.ok()) continue;  // closed meanwhile: not a gap
    // The link's own mode carries the descriptor's access mode (S_IWUSR: open for writing);
    // only files (a path, memfds included) can alias executable memory.
    struct stat st {};
    bool writable = !target->empty() && (*target)[0] == '/' && lstat(link.c_str(), &st) == 0 &&
                    (st.st_mode & S_IWUSR) != 0;
    out.push_back({fd, *std::move(target), writable});
  }
  return out;
}

void Snapshotter::ReadFiles(const Target& t, const std::vector<OpenFd>& fds, v1::ProcessSnapshot* s,
                            std::vector<std::string>* gaps) const {
  absl::flat_hash_map<uint64_t, int> fd_by_inode;
  for (const OpenFd& f : fds) {
    if (auto ino = procfs::ParseSocketLink(f.target)) {
      fd_by_inode.emplace(*ino, f.fd);
      continue;
    }
    for (const SensitivePath& sp : options_.sensitive_paths) {
      if (fnmatch(sp.glob.c_str(), f.target.c_str(), 0) != 0) continue;
      v1::OpenFile* o = s->add_sensitive_files();
      o->set_fd(f.fd);
      o->set_path(procfs::Printable(f.target));
      o->set_classification(sp.classification);
      auto info = procfs::ReadFile(absl::StrCat(t.dir, "/fdinfo/", f.fd));
      auto flags =
          info.ok() ? procfs::ParseFdInfoFlags(*info) : absl::StatusOr<uint32_t>(info.status());
      if (flags.ok()) o->set_flags(*flags);
      break;
    }
  }
  if (fd_by_inode.empty()) return;
  std::vector<absl::Status> problems;
  ReadProcessSockets(t.dir, fd_by_inode, s->mutable_sockets(), &problems);
  for (const absl::Status& p : problems) AddGap(t.pid, p, gaps);
}

void Snapshotter::ReadNamespaces(const Target& t, v1::ProcessSnapshot* s,
                                 std::vector<std::string>* gaps) const {
  for (const char* ns : kNamespaces) {
    auto target = procfs::ReadLink(absl::StrCat(t.dir, "/ns/", ns));
    if (!target.ok()) {
      if (!absl::IsNotFound(target.status())) AddGap(t.pid, target.status(), gaps);
      continue;
    }
    if (auto ino = procfs::ParseNamespaceLink(*target); ino.ok()) {
      (*s->mutable_namespaces())[ns] = *ino;
    } else {
      AddGap(t.pid, ino.status(), gaps);
    }
  }
  // Which of them the node holds too (it runs in the host's namespaces): what hostPID,
  // hostIPC and hostNetwork look like from outside a container. A procfs without "self" (a
  // test's fake) says nothing.
  v1::SharedNamespaces shared;
  bool shared_read = !s->namespaces().empty();
  for (const char* ns : kNamespaces) {
    auto own = s->namespaces().find(ns);
    if (!shared_read || own == s->namespaces().end()) continue;
    auto target = procfs::ReadLink(absl::StrCat(options_.proc_root, "/self/ns/", ns));
    absl::StatusOr<uint64_t> ino = target.ok() ? procfs::ParseNamespaceLink(*target)
                                               : absl::StatusOr<uint64_t>(target.status());
    if (!ino.ok()) {
      if (!absl::IsNotFound(ino.status())) AddGap(t.pid, ino.status(), gaps);
      shared_read = false;
    } else if (*ino == own->second) {
      shared.add_shared(ns);
    }
  }
  if (shared_read) *s->mutable_node_namespaces() = std::move(shared);
  // statvfs through the root link sees the process's own root mount, whatever its mount
  // namespace, pivot_root or chroot; mountinfo is the fallback (it lists no "/" for a
  // process chrooted into a directory that is not a mount point).
  struct statvfs vfs {};
  std::string root = t.dir + "/root";
  if (statvfs(root.c_str(), &vfs) == 0) {
    s->set_root_read_only((vfs.f_flag & ST_RDONLY) != 0);
    return;
  }
  absl::Status root_error = absl::ErrnoToStatus(errno, root);
  std::string path = t.dir + "/mountinfo";
  auto mountinfo = procfs::ReadFile(path);
  auto ro = mountinfo.ok() ? procfs::ParseRootReadOnly(*mountinfo)
                           : absl::StatusOr<bool>(mountinfo.status());
  if (ro.ok()) {
    s->set_root_read_only(*ro);
  } else {
    AddGap(t.pid, root_error, gaps);
    AddGap(t.pid, mountinfo.ok() ? WithPath(path, ro.status()) : ro.status(), gaps);
  }
}

void Snapshotter::ReadThreads(const Target& t, const procfs::Status& main, v1::ProcessSnapshot* s,
                              std::vector<std::string>* gaps) const {
  auto tids = NumericEntries(Path(t.pid, "task"));
  if (!tids.ok()) {
    AddGap(t.pid, tids.status(), gaps);
    return;
  }
  if (tids->size() < 2) return;
  for (int tid : *tids) {
    if (tid == t.tid) continue;
    std::string dir = Path(t.pid, absl::StrCat("task/", tid));
    auto st = ReadStatus(dir);
    if (!st.ok()) {
      if (!absl::IsNotFound(st.status())) AddGap(t.pid, st.status(), gaps);
      continue;  // not found: the thread exited meanwhile
    }
    if (st->state == 'Z' || st->state == 'X') continue;
    bool differs = !SameSecurityState(*st, main);
    google::protobuf::Map<std::string, uint64_t> ns;
    for (const char* name : kThreadNamespaces) {
      auto target = procfs::ReadLink(absl::StrCat(dir, "/ns/", name));
      auto ino = target.ok() ? procfs::ParseNamespaceLink(*target)
                             : absl::StatusOr<uint64_t>(target.status());
      if (!ino.ok()) continue;
      ns[name] = *ino;
      auto it = s->namespaces().find(name);
      differs |= it != s->namespaces().end() && it->second != *ino;
    }
    if (!differs) continue;
    v1::ThreadState* th = s->add_divergent_threads();
    th->set_tid(tid);
    th->set_comm(procfs::Printable(st->name));
    if (auto comm = procfs::ReadFile(dir + "/comm"); comm.ok()) {
      std::string c = *comm;
      if (!c.empty() && c.back() == '\n') c.pop_back();
      th->set_comm(procfs::Printable(c));
    }
    FillIds(*st, th->mutable_credentials());
    FillCapabilities(*st, th->mutable_capabilities());
    FillSeccompStatus(*st, th->mutable_seccomp());
    if (!SameSeccomp(*st, main)) InspectSeccomp(t.pid, tid, th->mutable_seccomp());
    *th->mutable_namespaces() = std::move(ns);
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

void Snapshotter::InspectSeccomp(int pid, int tid, v1::SeccompState* sec) const {
  if (options_.seccomp_syscalls.empty()) return;
  if (pid == getpid()) {
    // A process cannot ptrace itself; the node's own state is measured, not inspected.
    sec->set_inspection_error("the node does not inspect its own filters");
    return;
  }
  // The inspector records its own failure in inspection_error; nothing more to add here.
  (void)InspectSeccompFilters(tid, options_.seccomp_syscalls, options_.filter_reader, sec);
}

}  // namespace vigil::node
