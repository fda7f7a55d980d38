#include "node/scope/workload_scope.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "node/scope/scope_rules.h"

namespace vigil::node {
namespace {

// Distinct sockets remembered per endpoint, so a socket seen by several snapshots counts once.
constexpr size_t kRecentInstances = 64;
// At most this many argv entries and exec lineage steps per process (the lineage keeps the
// first ones and the latest).
constexpr size_t kMaxArgs = 16;
constexpr size_t kMaxArgBytes = 256;
constexpr size_t kMaxLineage = 16;

void SetSeen(const SeenRange& s, auto* item) {
  item->set_first_seen_unix_nano(s.first);
  item->set_last_seen_unix_nano(s.last);
}

// Whether dpkg can be asked about `path`: an absolute path of a file that still exists
// under that name.
bool Packageable(const std::string& path) {
  return !path.empty() && path[0] == '/' && !absl::EndsWith(path, " (deleted)");
}

}  // namespace

WorkloadScopeState::WorkloadScopeState(const ScopeLimits* limits, std::string root_exe,
                                       std::string cgroup, std::string container_id)
    : limits_(limits),
      root_exe_(std::move(root_exe)),
      cgroup_(std::move(cgroup)),
      container_id_(std::move(container_id)) {}

std::string WorkloadScopeState::Cut(absl::string_view s) const {
  return std::string(s.substr(0, limits_->max_string_bytes));
}

void WorkloadScopeState::SetRoot(int pid, const std::string& sha256,
                                 const std::vector<std::string>& matched_by,
                                 std::optional<bool> host_mount_namespace, int64_t t) {
  root_pid_ = pid;
  if (!sha256.empty()) root_sha256_ = sha256;
  for (const std::string& m : matched_by) {
    if (matched_by_.size() < kMaxArgs) matched_by_.insert(Cut(m));
  }
  if (host_mount_namespace.has_value()) host_mount_namespace_ = host_mount_namespace;
  seen_.Touch(t);
}

void WorkloadScopeState::RootExited(int pid) {
  if (pid == root_pid_) root_pid_ = 0;
}

ScopeProcessEntry* WorkloadScopeState::Live(int pid) {
  for (auto it = processes_.rbegin(); it != processes_.rend(); ++it) {
    if (it->pid == pid && it->exited == 0) return &*it;
  }
  return nullptr;
}

ScopeProcessEntry* WorkloadScopeState::AddProcess(int pid, int ppid, std::string exe,
                                                  std::vector<std::string> lineage,
                                                  int64_t started) {
  if (processes_.size() >= limits_->max_processes) {
    // Make room: the process that exited first goes.
    auto victim = processes_.end();
    for (auto it = processes_.begin(); it != processes_.end(); ++it) {
      if (it->exited != 0 && (victim == processes_.end() || it->exited < victim->exited)) {
        victim = it;
      }
    }
    Truncated("processes");
    if (victim == processes_.end()) return nullptr;
    processes_.erase(victim);
  }
  ScopeProcessEntry& p = processes_.emplace_back();
  p.pid = pid;
  p.ppid = ppid;
  p.exe = Cut(exe);
  p.lineage = std::move(lineage);
  if (p.lineage.size() > kMaxLineage) p.lineage.resize(kMaxLineage);
  p.started = started;
  seen_.Touch(started);
  return &p;
}

void WorkloadScopeState::ProcessExited(int pid, int64_t t) {
  if (ScopeProcessEntry* p = Live(pid); p != nullptr) p->exited = t;
  RootExited(pid);
  seen_.Touch(t);
}

void WorkloadScopeState::ExitAllBut(const std::set<int>& pids, int64_t t) {
  for (ScopeProcessEntry& p : processes_) {
    if (p.exited == 0 && !pids.contains(p.pid)) {
      p.exited = t;
      RootExited(p.pid);
    }
  }
}

void WorkloadScopeState::SetCmdline(ScopeProcessEntry* p, std::vector<std::string> cmdline) const {
  if (cmdline.size() > kMaxArgs) cmdline.resize(kMaxArgs);
  for (std::string& a : cmdline) a = a.substr(0, kMaxArgBytes);
  p->cmdline = std::move(cmdline);
}

void WorkloadScopeState::Exec(ScopeProcessEntry* p, const std::string& exe,
                              const std::string& sha256, std::vector<std::string> cmdline,
                              int64_t t) {
  std::string path = Cut(exe);
  bool counted = true;
  if (p != nullptr) {
    // A snapshot saw this image first; the exec event that started it came later.
    counted =
        p->inherited_image || p->exe != path || p->lineage.empty() || p->lineage.back() != path;
    if (counted) {
      if (p->lineage.size() >= kMaxLineage) p->lineage.pop_back();  // keep the latest
      p->lineage.push_back(path);
    }
    p->exe = path;
    p->inherited_image = false;
    if (!cmdline.empty()) SetCmdline(p, cmdline);
  }
  AddExecutable(path, sha256, counted, t);
  if (auto interp = scope::InterpreterByExecutable(path); interp.has_value()) {
    AddInterpreter(interp->kind, path, "executable", scope::ScriptsFromArgv(interp->kind, cmdline),
                   t);
  }
}

void WorkloadScopeState::AddExecutable(const std::string& path, const std::string& sha256,
                                       bool executed, int64_t t) {
  Executable* e = Slot(executables_, Cut(path), limits_->max_executables, "executables");
  if (e == nullptr) return;
  if (!sha256.empty()) e->sha256 = sha256;
  if (executed) ++e->count;
  e->seen.Touch(t);
  seen_.Touch(t);
}

void WorkloadScopeState::AddInterpreter(const std::string& kind, const std::string& executable,
                                        const std::string& recognised_by,
                                        const std::vector<std::string>& scripts, int64_t t) {
  Interpreter* i = Slot(interpreters_, std::make_tuple(kind, Cut(executable), Cut(recognised_by)),
                        limits_->max_interpreters, "interpreters");
  if (i == nullptr) return;
  for (const std::string& s : scripts) {
    auto& list = i->scripts;
    if (std::find(list.begin(), list.end(), s) != list.end()) continue;
    if (list.size() >= limits_->max_scripts) {
      Truncated("interpreters");
      continue;
    }
    list.push_back(Cut(s));
  }
  i->seen.Touch(t);
  seen_.Touch(t);
}

void WorkloadScopeState::AddLibrary(const std::string& path, const std::string& sha256, int64_t t) {
  Library* l = Slot(libraries_, Cut(path), limits_->max_libraries, "libraries");
  if (l == nullptr) return;
  if (!sha256.empty()) l->sha256 = sha256;
  l->seen.Touch(t);
  seen_.Touch(t);
}

void WorkloadScopeState::AddWrite(const std::string& path, bool directory_entry, int64_t t) {
  absl::string_view p = path;
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  size_t slash = p.rfind('/');
  std::string dir = slash == absl::string_view::npos ? "." : std::string(p.substr(0, slash));
  if (dir.empty()) dir = "/";
  std::string name(slash == absl::string_view::npos ? p : p.substr(slash + 1));
  if (directory_entry) name += "/";
  Directory* slot = Slot(storage_, Cut(dir), limits_->max_storage_dirs, "storage");
  if (slot == nullptr) return;
  Directory& d = *slot;
  ++d.writes;
  d.seen.Touch(t);
  seen_.Touch(t);
  name = Cut(name);
  if (std::find(d.files.begin(), d.files.end(), name) == d.files.end()) {
    if (d.files.size() < limits_->max_files_per_dir) {
      d.files.push_back(name);
    } else {
      Truncated("storage");
    }
  }
  std::optional<std::string> db, companion;
  if (auto c = scope::SqliteCompanion(name); c.has_value()) {
    db = c->first;
    companion = c->second;
  } else if (scope::LooksLikeSqlite(name)) {
    db = name;
  }
  if (!db.has_value()) return;
  auto sq = d.sqlite.find(*db);
  if (sq == d.sqlite.end()) {
    if (d.sqlite.size() >= limits_->max_sqlite_per_dir) {
      Truncated("storage");
      return;
    }
    sq = d.sqlite.emplace(*db, std::set<std::string>{}).first;
  }
  if (companion.has_value()) sq->second.insert(*companion);
}

void WorkloadScopeState::AddEndpoint(const std::string& direction, const std::string& protocol,
                                     const std::string& address, uint32_t port, uint64_t instance,
                                     int64_t t) {
  Endpoint* slot = Slot(endpoints_, std::make_tuple(direction, Cut(address), port),
                        limits_->max_endpoints, "endpoints");
  if (slot == nullptr) return;
  Endpoint& e = *slot;
  // A snapshot names the transport ("tcp", "udp6"); an event only the family ("inet").
  if (e.protocol.empty() || absl::StartsWith(e.protocol, "inet")) e.protocol = protocol;
  if (instance == 0) {
    ++e.count;
  } else if (std::find(e.instances.begin(), e.instances.end(), instance) == e.instances.end()) {
    ++e.count;
    if (e.instances.size() >= kRecentInstances) e.instances.erase(e.instances.begin());
    e.instances.push_back(instance);
  }
  e.seen.Touch(t);
  seen_.Touch(t);
}

bool WorkloadScopeState::ListensOn(uint32_t port) const {
  for (const auto& [key, e] : endpoints_) {
    if (std::get<0>(key) == "listen" && std::get<2>(key) == port) return true;
  }
  return false;
}

void WorkloadScopeState::AddFileRead(const std::string& path, const std::string& classification,
                                     const std::string& reason, uint32_t mode, bool count,
                                     int64_t t) {
  bool inserted = false;
  FileRead* slot = Slot(files_read_, Cut(path), limits_->max_files_read, "files_read", &inserted);
  if (slot == nullptr) return;
  count |= inserted;
  FileRead& f = *slot;
  f.classification = classification;
  f.reason = reason;
  if (mode != 0) f.mode = mode & 07777;
  if (count) ++f.count;
  f.seen.Touch(t);
  seen_.Touch(t);
}

v1::WorkloadScope WorkloadScopeState::ToProto(DpkgDatabase* dpkg,
                                              const std::vector<std::string>& gaps) const {
  v1::WorkloadScope out;
  out.set_root_exe_path(root_exe_);
  out.set_root_exe_sha256(root_sha256_);
  out.set_cgroup(cgroup_);
  out.set_container_id(container_id_);
  for (const std::string& m : matched_by_) out.add_matched_by(m);
  out.set_root_pid(root_pid_);
  out.set_first_seen_unix_nano(seen_.first);
  out.set_last_seen_unix_nano(seen_.last);
  const bool packages = dpkg != nullptr && host_mount_namespace_.value_or(false);
  auto package = [&](const std::string& path, auto* item) {
    if (!packages || !Packageable(path)) return;
    if (auto ref = dpkg->Owner(path); ref.has_value()) *item->mutable_package() = *ref;
  };
  for (const ScopeProcessEntry& p : processes_) {
    v1::ScopeProcess* sp = out.add_processes();
    sp->set_pid(p.pid);
    sp->set_ppid(p.ppid);
    sp->set_exe_path(p.exe);
    for (const std::string& l : p.lineage) sp->add_exec_lineage(l);
    for (const std::string& a : p.cmdline) sp->add_cmdline(a);
    sp->set_started_unix_nano(p.started);
    sp->set_exited_unix_nano(p.exited);
  }
  for (const auto& [path, e] : executables_) {
    v1::ScopeExecutable* se = out.add_executables();
    se->set_path(path);
    se->set_sha256(e.sha256);
    package(path, se);
    se->set_exec_count(e.count);
    SetSeen(e.seen, se);
  }
  for (const auto& [key, i] : interpreters_) {
    const auto& [kind, executable, recognised_by] = key;
    v1::ScopeInterpreter* si = out.add_interpreters();
    si->set_kind(kind);
    si->set_executable(executable);
    si->set_recognised_by(recognised_by);
    for (const std::string& s : i.scripts) si->add_scripts(s);
    absl::string_view lib = recognised_by;
    package(absl::ConsumePrefix(&lib, "library:") ? std::string(lib) : executable, si);
    SetSeen(i.seen, si);
  }
  for (const auto& [path, l] : libraries_) {
    v1::ScopeLibrary* sl = out.add_libraries();
    sl->set_path(path);
    sl->set_sha256(l.sha256);
    package(path, sl);
    SetSeen(l.seen, sl);
  }
  for (const auto& [dir, d] : storage_) {
    v1::ScopeStorage* ss = out.add_storage();
    ss->set_directory(dir);
    for (const std::string& f : d.files) ss->add_files(f);
    ss->set_write_count(d.writes);
    for (const auto& [db, companions] : d.sqlite) {
      v1::SqliteDatabase* sd = ss->add_sqlite_databases();
      sd->set_name(db);
      for (const std::string& c : companions) sd->add_companions(c);
    }
    SetSeen(d.seen, ss);
  }
  for (const auto& [key, e] : endpoints_) {
    v1::ScopeEndpoint* se = out.add_endpoints();
    se->set_direction(std::get<0>(key));
    se->set_protocol(e.protocol);
    se->set_address(std::get<1>(key));
    se->set_port(std::get<2>(key));
    se->set_count(e.count);
    SetSeen(e.seen, se);
  }
  for (const auto& [path, f] : files_read_) {
    v1::ScopeFileRead* sf = out.add_files_read();
    sf->set_path(path);
    sf->set_classification(f.classification);
    sf->set_reason(f.reason);
    sf->set_mode(f.mode);
    sf->set_count(f.count);
    SetSeen(f.seen, sf);
  }
  for (const auto& [category, n] : truncated_) (*out.mutable_truncated())[category] = n;
  for (const std::string& g : gaps) out.add_gaps(g);
  if (dpkg != nullptr && !host_mount_namespace_.value_or(false)) {
    out.add_gaps(host_mount_namespace_.has_value()
                     ? "the workload runs in its own mount namespace: its files are not looked "
                       "up in the node's dpkg database (no package is reported)"
                     : "whether the workload shares the node's mount namespace is unknown: no "
                       "package is reported");
  } else if (packages && !dpkg->error().empty()) {
    out.add_gaps(dpkg->error());
  }
  return out;
}

}  // namespace vigil::node
