#include "node/scope/scope_tracker.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "node/probes/event_source.h"
#include "node/procfs/procfs.h"
#include "node/scope/scope_rules.h"

namespace vigil::node {
namespace {

constexpr size_t kMaxCmdlineBytes = 16 << 10;
constexpr int kMaxReplays = 2;  // snapshot rounds an unattributed event waits
constexpr size_t kRecentExits = 4096;
constexpr int64_t kInProgress = -EINPROGRESS;

constexpr const char* kNoProbesGap =
    "no probes (--no-probes or refused): the scope comes from process snapshots alone; "
    "processes that start and exit between two reports, files written and read, and "
    "connections opened and closed between two reports are not observed";

bool IsOpen(v1::EventKind k) {
  return k == v1::EVENT_KIND_OPEN || k == v1::EVENT_KIND_OPENAT || k == v1::EVENT_KIND_OPENAT2 ||
         k == v1::EVENT_KIND_CREAT;
}

// The argument holding a file event's directory descriptor, or -1 (relative to the cwd).
int DirFdArg(v1::EventKind k) {
  switch (k) {
    case v1::EVENT_KIND_OPENAT:
    case v1::EVENT_KIND_OPENAT2:
    case v1::EVENT_KIND_UNLINKAT:
    case v1::EVENT_KIND_MKDIRAT:
      return 0;
    case v1::EVENT_KIND_RENAMEAT:
    case v1::EVENT_KIND_RENAMEAT2:
      return 2;
    default:
      return -1;
  }
}

bool IsRoot(const v1::ProcessSnapshot& s) {
  for (const std::string& m : s.matched_by()) {
    if (!absl::StartsWith(m, "inherited:") && m != "probe") return true;
  }
  return false;
}

bool ProbeOnly(const v1::ProcessSnapshot& s) {
  return s.matched_by_size() > 0 && std::all_of(s.matched_by().begin(), s.matched_by().end(),
                                                [](const std::string& m) { return m == "probe"; });
}

std::optional<bool> SharesMountNamespace(const v1::ProcessSnapshot& s) {
  if (!s.has_node_namespaces()) return std::nullopt;
  const auto& shared = s.node_namespaces().shared();
  return std::find(shared.begin(), shared.end(), "mnt") != shared.end();
}

std::vector<std::string> Argv(const google::protobuf::RepeatedPtrField<std::string>& cmdline) {
  return std::vector<std::string>(cmdline.begin(), cmdline.end());
}

}  // namespace

ScopeTracker::ScopeTracker(ScopeLimits limits, FileHashCache* hashes, DpkgDatabase* dpkg,
                           std::string proc_root)
    : limits_(limits), hashes_(hashes), dpkg_(dpkg), proc_root_(std::move(proc_root)) {}

ScopeTracker::~ScopeTracker() = default;

void ScopeTracker::SetSensitivePaths(std::vector<SensitivePath> paths) {
  absl::MutexLock lock(&mu_);
  sensitive_ = std::move(paths);
}

void ScopeTracker::set_probes(bool on) {
  absl::MutexLock lock(&mu_);
  probes_ = on;
}

size_t ScopeTracker::workload_count() const {
  absl::MutexLock lock(&mu_);
  return workloads_.size();
}

ScopeTracker::Observed ScopeTracker::Resolve(const v1::RuntimeEvent& event) const {
  Observed o;
  o.event = event;
  const std::string dir = absl::StrCat(proc_root_, "/", event.pid());
  if (event.kind() == v1::EVENT_KIND_PROCESS_EXEC) {
    const std::string exe_link = dir + "/exe";
    if (auto exe = procfs::ReadLink(exe_link); exe.ok()) {
      o.exe = procfs::Printable(*exe);
      if (hashes_ != nullptr) {
        if (auto sha = hashes_->HashHex(exe_link); sha.ok()) o.sha256 = *sha;
      }
    } else {
      o.exe = event.path();  // gone already: the name it was executed by
    }
    if (auto cmd = procfs::ReadFile(dir + "/cmdline", kMaxCmdlineBytes); cmd.ok()) {
      for (std::string& a : procfs::SplitCmdline(*cmd)) o.cmdline.push_back(procfs::Printable(a));
    }
    return o;
  }
  if (IsFileEvent(event) && !event.path().empty() && event.path()[0] != '/') {
    // A relative name: relative to the directory descriptor, or to the working directory.
    const int arg = DirFdArg(event.kind());
    const int32_t dirfd =
        arg >= 0 && arg < event.args_size() ? static_cast<int32_t>(event.args(arg)) : AT_FDCWD;
    const std::string base = dirfd == AT_FDCWD ? dir + "/cwd" : absl::StrCat(dir, "/fd/", dirfd);
    if (auto d = procfs::ReadLink(base); d.ok() && !d->empty() && (*d)[0] == '/') {
      o.event.set_path(absl::StrCat(procfs::Printable(*d), *d == "/" ? "" : "/", event.path()));
    }
  }
  return o;
}

void ScopeTracker::ObserveEvent(const v1::RuntimeEvent& event) {
  Observed o = Resolve(event);
  absl::MutexLock lock(&mu_);
  if (Apply(o)) return;
  if (unattributed_.size() >= limits_.max_unattributed_events) {
    ++events_unattributed_;
    return;
  }
  unattributed_.push_back(std::move(o));
}

bool ScopeTracker::Apply(const Observed& o) {
  const v1::RuntimeEvent& e = o.event;
  auto it = pid_workload_.find(e.pid());
  if (it == pid_workload_.end()) return false;
  WorkloadScopeState* w = it->second;
  const int64_t t = e.time_unix_nano();
  switch (e.kind()) {
    case v1::EVENT_KIND_PROCESS_FORK: {
      const ScopeProcessEntry* parent = w->Live(e.pid());
      ScopeProcessEntry* child =
          w->AddProcess(e.target_pid(), e.pid(), parent ? parent->exe : std::string(),
                        parent ? parent->lineage : std::vector<std::string>(), t);
      if (child != nullptr) {
        child->inherited_image = true;
        if (parent != nullptr) child->cmdline = parent->cmdline;
      }
      pid_workload_[e.target_pid()] = w;
      break;
    }
    case v1::EVENT_KIND_PROCESS_EXEC: {
      ScopeProcessEntry* p = w->Live(e.pid());
      if (p == nullptr) p = w->AddProcess(e.pid(), e.ppid(), o.exe, {}, t);
      w->Exec(p, o.exe, o.sha256, o.cmdline, t);
      break;
    }
    case v1::EVENT_KIND_PROCESS_EXIT:
      w->ProcessExited(e.pid(), t);
      pid_workload_.erase(e.pid());
      // A snapshot read before this exit and applied after it must not revive the process.
      if (exit_order_.size() >= kRecentExits) {
        recent_exits_.erase(exit_order_.front());
        exit_order_.pop_front();
      }
      if (recent_exits_.insert_or_assign(e.pid(), t).second) exit_order_.push_back(e.pid());
      break;
    case v1::EVENT_KIND_CONNECT:
      if (e.return_value() != 0 && e.return_value() != kInProgress) break;
      if (!e.address().empty()) {
        const bool v6 = absl::StrContains(e.address(), ':');
        w->AddEndpoint("outbound", v6 ? "inet6" : "inet", e.address(), e.port(), 0, t);
      } else if (!e.path().empty()) {
        w->AddEndpoint("outbound", "unix", e.path(), 0, 0, t);
      }
      break;
    default:
      if (IsFileEvent(e)) ApplyFileEvent(w, e);
      break;
  }
  return true;
}

void ScopeTracker::ApplyFileEvent(WorkloadScopeState* w, const v1::RuntimeEvent& e) {
  if (e.path().empty()) return;
  const int64_t t = e.time_unix_nano();
  const v1::EventKind k = e.kind();
  if (IsOpen(k)) {
    const uint64_t flags = e.args_size() > 4 ? e.args(4) : 0;
    const uint32_t mode = e.args_size() > 5 ? static_cast<uint32_t>(e.args(5)) : 0;
    const bool writing =
        k == v1::EVENT_KIND_CREAT || (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
    if (writing) {
      w->AddWrite(e.path(), false, t);
    } else if (auto c = scope::ClassifyRead(e.path(), mode, sensitive_); c.has_value()) {
      w->AddFileRead(e.path(), c->classification, c->reason, mode, /*count=*/true, t);
    }
    return;
  }
  w->AddWrite(e.path(), k == v1::EVENT_KIND_MKDIR || k == v1::EVENT_KIND_MKDIRAT, t);
}

WorkloadScopeState* ScopeTracker::WorkloadFor(const v1::ProcessSnapshot& root) {
  std::string key = absl::StrCat(root.exe_path(), std::string(1, '\0'), root.cgroup(),
                                 std::string(1, '\0'), root.container_id());
  auto it = workloads_.find(key);
  if (it != workloads_.end()) return it->second.get();
  if (workloads_.size() >= limits_.max_workloads) return nullptr;
  auto w = std::make_unique<WorkloadScopeState>(&limits_, root.exe_path(), root.cgroup(),
                                                root.container_id());
  return workloads_.emplace(std::move(key), std::move(w)).first->second.get();
}

void ScopeTracker::ObserveSnapshots(
    const google::protobuf::RepeatedPtrField<v1::ProcessSnapshot>& snapshots, int64_t now) {
  absl::MutexLock lock(&mu_);
  std::map<int, WorkloadScopeState*> attributed;
  std::set<std::string> left_out;
  for (const v1::ProcessSnapshot& s : snapshots) {
    const bool probe_only = ProbeOnly(s);
    if (!IsRoot(s) && !(probe_only && !pid_workload_.contains(s.pid()))) continue;
    WorkloadScopeState* w = WorkloadFor(s);
    if (w == nullptr) {
      left_out.insert(s.exe_path());
      continue;
    }
    std::vector<std::string> matched(s.matched_by().begin(), s.matched_by().end());
    w->SetRoot(s.pid(), s.exe_sha256(), matched, SharesMountNamespace(s), now);
    attributed[s.pid()] = w;
  }
  workloads_left_out_ = left_out.size();
  // Descendants: the workload the events attributed them to, else their parent's.
  for (bool changed = true; changed;) {
    changed = false;
    for (const v1::ProcessSnapshot& s : snapshots) {
      if (attributed.contains(s.pid())) continue;
      WorkloadScopeState* w = nullptr;
      if (auto known = pid_workload_.find(s.pid()); known != pid_workload_.end()) {
        w = known->second;
      } else if (auto parent = attributed.find(s.ppid()); parent != attributed.end()) {
        w = parent->second;
      }
      if (w == nullptr) continue;
      attributed[s.pid()] = w;
      changed = true;
    }
  }
  std::map<WorkloadScopeState*, std::set<int>> live;
  for (const v1::ProcessSnapshot& s : snapshots) {
    auto a = attributed.find(s.pid());
    if (a == attributed.end()) continue;
    if (auto gone = recent_exits_.find(s.pid());
        gone != recent_exits_.end() && s.started_unix_nano() <= gone->second) {
      continue;  // read before its exit event arrived
    }
    pid_workload_[s.pid()] = a->second;
    live[a->second].insert(s.pid());
    ApplySnapshot(a->second, s, now);
  }
  if (!probes_) {
    // Without exit events, a process missing from the snapshots has exited.
    for (auto& [key, w] : workloads_) w->ExitAllBut(live[w.get()], now);
    for (auto it = pid_workload_.begin(); it != pid_workload_.end();) {
      auto next = std::next(it);
      if (!live[it->second].contains(it->first)) pid_workload_.erase(it);
      it = next;
    }
  }
  // Events that waited for their process's workload.
  std::deque<Observed> waiting;
  waiting.swap(unattributed_);
  for (Observed& o : waiting) {
    if (Apply(o)) continue;
    if (++o.replays >= kMaxReplays) {
      ++events_unattributed_;
      continue;
    }
    unattributed_.push_back(std::move(o));
  }
}

void ScopeTracker::ApplySnapshot(WorkloadScopeState* w, const v1::ProcessSnapshot& s, int64_t now) {
  const std::string& exe = s.exe_path();
  std::vector<std::string> argv = Argv(s.cmdline());
  ScopeProcessEntry* p = w->Live(s.pid());
  if (p == nullptr) {
    const ScopeProcessEntry* parent = w->Live(s.ppid());
    std::vector<std::string> lineage = parent ? parent->lineage : std::vector<std::string>();
    if (lineage.empty() || lineage.back() != exe) lineage.push_back(exe);
    p = w->AddProcess(s.pid(), s.ppid(), exe, std::move(lineage),
                      s.started_unix_nano() != 0 ? s.started_unix_nano() : now);
    if (p != nullptr) w->SetCmdline(p, argv);
    // A run of `exe`, unless it is a fork that kept its parent's image.
    const bool forked_image = parent != nullptr && parent->exe == exe;
    if (forked_image) {
      w->AddExecutable(exe, s.exe_sha256(), /*executed=*/false, now);
    } else {
      w->Exec(nullptr, exe, s.exe_sha256(), argv, now);
    }
  } else if (p->exe != exe) {
    w->Exec(p, exe, s.exe_sha256(), argv, now);  // an exec the events did not show
  } else {
    // Still the image it had: a forked child that has not exec'd yet keeps its parent's (and
    // stays marked inherited, so the exec event that follows is its one lineage step).
    w->AddExecutable(exe, s.exe_sha256(), /*executed=*/false, now);
    if (auto interp = scope::InterpreterByExecutable(exe); interp.has_value()) {
      w->AddInterpreter(interp->kind, exe, "executable", scope::ScriptsFromArgv(interp->kind, argv),
                        now);
    }
  }
  if (p != nullptr) {
    p->ppid = s.ppid();
    if (s.started_unix_nano() != 0) p->started = s.started_unix_nano();
  }
  for (const v1::MappedFile& f : s.memory().executable_files()) {
    if (f.path() == exe) continue;
    w->AddLibrary(f.path(), f.sha256(), now);
    if (auto interp = scope::InterpreterByLibrary(f.path()); interp.has_value()) {
      w->AddInterpreter(interp->kind, exe, absl::StrCat("library:", f.path()), {}, now);
    }
  }
  for (const v1::Socket& sock : s.sockets()) {
    if (sock.state() == "listen") {
      w->AddEndpoint("listen", sock.protocol(), sock.local_address(), sock.local_port(),
                     sock.inode(), now);
    }
  }
  for (const v1::Socket& sock : s.sockets()) {
    const bool inet =
        absl::StartsWith(sock.protocol(), "tcp") || absl::StartsWith(sock.protocol(), "udp");
    if (inet && sock.state() == "established" && !w->ListensOn(sock.local_port())) {
      w->AddEndpoint("outbound", sock.protocol(), sock.remote_address(), sock.remote_port(),
                     sock.inode(), now);
    } else if (sock.protocol() == "unix" && sock.state() == "connected" &&
               !sock.remote_address().empty()) {
      w->AddEndpoint("outbound", "unix", sock.remote_address(), 0, sock.inode(), now);
    }
  }
  for (const v1::OpenFile& f : s.sensitive_files()) {
    std::string reason = "policy";
    for (const SensitivePath& sp : sensitive_) {
      if (auto c = scope::ClassifyRead(f.path(), 0, {sp});
          c.has_value() && absl::StartsWith(c->reason, "policy:")) {
        reason = c->reason;
        break;
      }
    }
    struct stat st {};
    const std::string fd = absl::StrCat(proc_root_, "/", s.pid(), "/fd/", f.fd());
    const uint32_t mode = stat(fd.c_str(), &st) == 0 ? st.st_mode : 0;
    w->AddFileRead(f.path(), f.classification(), reason, mode, /*count=*/false, now);
  }
  w->Touch(now);
}

void ScopeTracker::AppendScopes(v1::RuntimeReport* report, std::vector<std::string>* gaps) {
  absl::MutexLock lock(&mu_);
  if (workloads_left_out_ > 0) {
    gaps->push_back(absl::StrCat("scope: ", workloads_left_out_,
                                 " workload(s) not tracked: the bound of ", limits_.max_workloads,
                                 " workloads is reached"));
  }
  if (events_unattributed_ > 0) {
    gaps->push_back(absl::StrCat("scope: ", events_unattributed_,
                                 " event(s) of processes never attributed to a workload were "
                                 "dropped (a root that exited before its first snapshot)"));
  }
  std::vector<std::string> workload_gaps;
  if (!probes_) workload_gaps.push_back(kNoProbesGap);
  for (const auto& [key, w] : workloads_) {
    *report->add_scopes() = w->ToProto(dpkg_, workload_gaps);
  }
}

}  // namespace vigil::node
