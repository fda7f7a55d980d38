#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/string_view.h"
#include "node/scope/dpkg_db.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// Bounds of the scope the node keeps. Per workload, per category: an item beyond its bound
/// is left out and counted in WorkloadScope.truncated under the category's name.
struct ScopeLimits {
  /// Workloads tracked at once; a further one is left out (a gap says how many).
  size_t max_workloads = 16;
  size_t max_processes = 128;  // exited processes are evicted oldest first to make room
  size_t max_executables = 128;
  size_t max_interpreters = 32;
  size_t max_scripts = 16;  // per interpreter
  size_t max_libraries = 256;
  size_t max_storage_dirs = 128;
  size_t max_files_per_dir = 32;
  size_t max_sqlite_per_dir = 8;
  size_t max_endpoints = 128;
  size_t max_files_read = 128;
  /// Events held until the process they name is attributed to a workload (its root's first
  /// snapshot); beyond it they are dropped and counted.
  size_t max_unattributed_events = 1024;
  /// Longer paths and arguments are cut to this many bytes.
  size_t max_string_bytes = 1024;
};

/// When an item was first and last observed (ns since the epoch).
struct SeenRange {
  int64_t first = 0;
  int64_t last = 0;
  void Touch(int64_t t) {
    if (first == 0 || t < first) first = t;
    if (t > last) last = t;
  }
};

/// One process of a workload, as accumulated.
struct ScopeProcessEntry {
  int pid = 0;
  int ppid = 0;
  std::string exe;
  std::vector<std::string> lineage;
  std::vector<std::string> cmdline;
  int64_t started = 0;
  int64_t exited = 0;
  /// Forked and not exec'd since: `exe` is its parent's image.
  bool inherited_image = false;
};

/// The accumulated scope of one workload: each Add* records one observation, within the
/// limits. Not thread-safe (the ScopeTracker locks around it).
class WorkloadScopeState {
 public:
  WorkloadScopeState(const ScopeLimits* limits, std::string root_exe, std::string cgroup,
                     std::string container_id);

  const std::string& root_exe() const { return root_exe_; }
  const std::string& cgroup() const { return cgroup_; }
  const std::string& container_id() const { return container_id_; }

  /// The root as last seen by a snapshot.
  void SetRoot(int pid, const std::string& sha256, const std::vector<std::string>& matched_by,
               std::optional<bool> host_mount_namespace, int64_t t);
  void RootExited(int pid);
  void Touch(int64_t t) { seen_.Touch(t); }

  /// The live process `pid`, nullptr when it is not tracked.
  ScopeProcessEntry* Live(int pid);
  /// Starts tracking process `pid` (a fork or a first snapshot); nullptr when the bound is
  /// reached and no exited process can be evicted.
  ScopeProcessEntry* AddProcess(int pid, int ppid, std::string exe,
                                std::vector<std::string> lineage, int64_t started);
  void ProcessExited(int pid, int64_t t);
  /// Live processes not in `pids` (ordered) are marked exited at `t`.
  void ExitAllBut(const std::set<int>& pids, int64_t t);

  /// Sets `p`'s argv, bounded (16 arguments of 256 bytes).
  void SetCmdline(ScopeProcessEntry* p, std::vector<std::string> cmdline) const;
  /// `p` ran `exe` (a new image): lineage, argv, executables and interpreters. An exec that
  /// `p` already shows (its image, seen first by a snapshot) is not counted again; `p` may
  /// be nullptr (the run of a process that is not tracked).
  void Exec(ScopeProcessEntry* p, const std::string& exe, const std::string& sha256,
            std::vector<std::string> cmdline, int64_t t);
  void AddExecutable(const std::string& path, const std::string& sha256, bool executed, int64_t t);
  void AddInterpreter(const std::string& kind, const std::string& executable,
                      const std::string& recognised_by, const std::vector<std::string>& scripts,
                      int64_t t);
  void AddLibrary(const std::string& path, const std::string& sha256, int64_t t);
  /// A write (open for writing, creat, rename target, unlink, mkdir) of `path`;
  /// `directory_entry` marks a directory created.
  void AddWrite(const std::string& path, bool directory_entry, int64_t t);
  /// An endpoint; `instance` (a socket inode, or 0 for an event) counts distinct sockets
  /// seen by snapshots once each.
  void AddEndpoint(const std::string& direction, const std::string& protocol,
                   const std::string& address, uint32_t port, uint64_t instance, int64_t t);
  void AddFileRead(const std::string& path, const std::string& classification,
                   const std::string& reason, uint32_t mode, bool count, int64_t t);
  /// Whether the workload listens on `port` (to tell accepted connections from outbound).
  bool ListensOn(uint32_t port) const;
  void Truncated(const std::string& category) { ++truncated_[category]; }

  /// The scope as reported; packages looked up in `dpkg` (nullptr: none) when the workload
  /// shares the node's mount namespace. `gaps` are added to the scope's own.
  v1::WorkloadScope ToProto(DpkgDatabase* dpkg, const std::vector<std::string>& gaps) const;

 private:
  struct Executable {
    std::string sha256;
    uint64_t count = 0;
    SeenRange seen;
  };
  struct Interpreter {
    std::vector<std::string> scripts;
    SeenRange seen;
  };
  struct Library {
    std::string sha256;
    SeenRange seen;
  };
  struct Directory {
    std::vector<std::string> files;
    uint64_t writes = 0;
    std::map<std::string, std::set<std::string>> sqlite;  // database -> companions seen
    SeenRange seen;
  };
  struct Endpoint {
    std::string protocol;
    uint64_t count = 0;
    std::vector<uint64_t> instances;  // the last kRecentInstances sockets counted
    SeenRange seen;
  };
  struct FileRead {
    std::string classification;
    std::string reason;
    uint32_t mode = 0;
    uint64_t count = 0;
    SeenRange seen;
  };
  std::string Cut(absl::string_view s) const;
  /// The entry for `key` in `map`, inserted when absent and the map holds fewer than
  /// `limit` entries (`*inserted` then set); nullptr, and one more item left out under
  /// `category`, when it is full.
  template <typename Map>
  typename Map::mapped_type* Slot(Map& map, typename Map::key_type key, size_t limit,
                                  const char* category, bool* inserted = nullptr) {
    auto it = map.find(key);
    if (it != map.end()) return &it->second;
    if (map.size() >= limit) {
      Truncated(category);
      return nullptr;
    }
    if (inserted != nullptr) *inserted = true;
    return &map.emplace(std::move(key), typename Map::mapped_type{}).first->second;
  }

  const ScopeLimits* limits_;
  std::string root_exe_, cgroup_, container_id_;
  std::string root_sha256_;
  std::set<std::string> matched_by_;
  int root_pid_ = 0;
  std::optional<bool> host_mount_namespace_;
  SeenRange seen_;
  std::list<ScopeProcessEntry> processes_;  // in order of first observation
  std::map<std::string, Executable> executables_;
  // (kind, executable, recognised_by)
  std::map<std::tuple<std::string, std::string, std::string>, Interpreter> interpreters_;
  std::map<std::string, Library> libraries_;
  std::map<std::string, Directory> storage_;
  // (direction, address, port)
  std::map<std::tuple<std::string, std::string, uint32_t>, Endpoint> endpoints_;
  std::map<std::string, FileRead> files_read_;
  std::map<std::string, uint64_t> truncated_;
};

}  // namespace vigil::node
