#pragma once

// Pure parsers of /proc files, plus thin readers. Every parser takes the file's contents as
// untrusted text (a process controls its comm, cmdline and the paths it maps) and returns an
// error rather than crashing on anything malformed.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vigil::node::procfs {

/// The fields of /proc/<pid>/status the snapshot reports.
struct Status {
  std::string name;
  /// The "State:" letter ('R', 'S', 'Z', ...); '?' when the line is missing.
  char state = '?';
  int ppid = 0;
  uint32_t uid[4] = {0, 0, 0, 0};  // real, effective, saved, fs
  uint32_t gid[4] = {0, 0, 0, 0};
  std::vector<uint32_t> groups;
  uint64_t cap_inheritable = 0;
  uint64_t cap_permitted = 0;
  uint64_t cap_effective = 0;
  uint64_t cap_bounding = 0;
  uint64_t cap_ambient = 0;
  bool no_new_privs = false;
  uint32_t seccomp_mode = 0;
  uint32_t seccomp_filters = 0;
  uint64_t vm_locked_kib = 0;
  /// Whether the VmLck line was there (a process without memory has none).
  bool vm_locked_known = false;
};

/// Parses /proc/<pid>/status. Fails when a required line (Name, PPid, Uid, Gid, the five
/// Cap* sets, NoNewPrivs, Seccomp) is missing or malformed.
absl::StatusOr<Status> ParseStatus(absl::string_view text);

/// The fields of /proc/<pid>/stat the snapshot uses.
struct Stat {
  int pid = 0;
  std::string comm;
  char state = '?';
  int ppid = 0;
  /// Field 9: the task's PF_* flags.
  uint32_t flags = 0;
  /// Field 22: clock ticks after boot at which the process started.
  uint64_t start_time_ticks = 0;
  /// Fields 26-28 and 48 (start_code, end_code, start_stack, arg_start): addresses of the
  /// current program image. execve(2) keeps the pid and start time but replaces them (with
  /// address randomization, almost surely with other values), so they tell a process that
  /// exec'd apart from one that did not. Zero when the reader may not see them.
  uint64_t image[4] = {0, 0, 0, 0};

  /// PF_KTHREAD: a kernel thread (no executable, memory map or files of its own).
  bool kernel_thread() const { return (flags & 0x00200000u) != 0; }
  /// Zombie or dead: the task exited and only its status remains until it is reaped.
  bool exited() const { return state == 'Z' || state == 'X' || state == 'x'; }
};

/// Parses /proc/<pid>/stat. comm may contain spaces and ')' so it is delimited by the first
/// '(' and the last ')'.
absl::StatusOr<Stat> ParseStat(absl::string_view text);

/// One line of /proc/<pid>/maps.
struct Mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  std::string permissions;  // "r-xp"
  uint64_t offset = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  /// Path or pseudo-path ("[heap]", "/memfd:jit (deleted)"); empty for anonymous memory.
  std::string path;
  /// smaps only: "Size:" and "Locked:" in KiB. The kernel's Locked: is proportional (the
  /// locked pages' PSS), so pages shared with a forked child count half; `vm_locked` (the
  /// "lo" VmFlag, VM_LOCKED) says whether the whole mapping is locked.
  uint64_t size_kib = 0;
  uint64_t locked_kib = 0;
  bool vm_locked = false;

  bool executable() const { return permissions.size() > 2 && permissions[2] == 'x'; }
  bool writable() const { return permissions.size() > 1 && permissions[1] == 'w'; }
  /// Not backed by a file: no inode (anonymous, [heap], [stack], [vdso]...).
  bool anonymous() const { return inode == 0; }
};

/// Parses /proc/<pid>/maps or smaps text fed in pieces of any size, so that a process with
/// tens of thousands of mappings (smaps grows by about 1 KiB per mapping) is read without
/// holding the whole file. A maps line starts a mapping; smaps' "Key: value" lines that
/// follow it set its Size:, Locked: and VmFlags fields.
class MapsParser {
 public:
  /// `on_mapping` receives each mapping once its last line has been seen.
  explicit MapsParser(std::function<void(Mapping&&)> on_mapping);

  /// Parses the complete lines of `chunk` (with what an earlier chunk left unfinished).
  absl::Status Feed(absl::string_view chunk);
  /// Parses what is left (a last line without its newline) and emits the last mapping.
  absl::Status Finish();

 private:
  absl::Status Line(absl::string_view line);

  std::function<void(Mapping&&)> on_mapping_;
  std::string partial_;
  std::optional<Mapping> current_;
};

/// Reads /proc/<pid>/maps or smaps at `path` in pieces through MapsParser. The error names
/// the path.
absl::Status ForEachMapping(const std::string& path,
                            const std::function<void(Mapping&&)>& on_mapping);

/// Parses /proc/<pid>/maps.
absl::StatusOr<std::vector<Mapping>> ParseMaps(absl::string_view text);

/// Parses /proc/<pid>/smaps: the maps header lines with their Size: and Locked: fields.
absl::StatusOr<std::vector<Mapping>> ParseSmaps(absl::string_view text);

/// The cgroup v2 path ("0::/path" line) of /proc/<pid>/cgroup; empty when there is none.
std::string ParseCgroupV2Path(absl::string_view text);

/// The cgroup a process is in, from /proc/<pid>/cgroup: its cgroup v2 path when that is not
/// the root. A host that still mounts cgroup v1 hierarchies may leave v2 unused (every
/// process at "0::/"); then the path in the name=systemd hierarchy, or else the first v1
/// path that is not the root. Otherwise the v2 path ("/"), or "" without any line.
std::string ParseCgroupPath(absl::string_view text);

/// The container id in the cgroup v2 path or, failing that, in any v1 hierarchy's path of
/// /proc/<pid>/cgroup (ContainerIdFromCgroup); empty when none has one.
std::string ContainerIdFromCgroupFile(absl::string_view text);

/// The container id (64 lowercase hex) that docker, containerd, CRI-O or podman put in a
/// cgroup path ("docker-<id>.scope", "cri-containerd-<id>.scope", "crio-<id>.scope",
/// "libpod-<id>.scope", "/docker/<id>", "/kubepods/.../<id>"); empty when none is found.
std::string ContainerIdFromCgroup(absl::string_view cgroup_path);

/// One line of /proc/<pid>/uid_map or gid_map.
struct IdMapLine {
  uint32_t inside = 0;
  uint32_t outside = 0;
  uint32_t count = 0;
};

/// Parses /proc/<pid>/uid_map or gid_map.
absl::StatusOr<std::vector<IdMapLine>> ParseIdMap(absl::string_view text);

/// The inode number in a namespace link target such as "mnt:[4026531841]".
absl::StatusOr<uint64_t> ParseNamespaceLink(absl::string_view target);

/// The inode in a file descriptor link target "socket:[12345]"; nullopt for other targets.
std::optional<uint64_t> ParseSocketLink(absl::string_view target);

/// Whether "/" is mounted read-only in the mount namespace /proc/<pid>/mountinfo describes:
/// the last mount whose mount point is "/" (the one on top) has "ro" in its per-mount or
/// superblock options. Fails when no "/" mount is listed.
absl::StatusOr<bool> ParseRootReadOnly(absl::string_view mountinfo);

/// A socket from /proc/<pid>/net/{tcp,tcp6,udp,udp6,unix}.
struct SocketEntry {
  std::string protocol;  // "tcp", "tcp6", "udp", "udp6", "unix"
  std::string state;     // "listen", "established", ... ; "unconnected", "connected" for unix
  std::string local_address;
  uint32_t local_port = 0;
  std::string remote_address;
  uint32_t remote_port = 0;
  uint64_t inode = 0;
  /// unix sockets from sock_diag: the peer's inode (0 when none or unknown).
  uint64_t peer_inode = 0;
  /// unix listeners from sock_diag: the inodes of the clients whose connections wait to be
  /// accepted.
  std::vector<uint64_t> pending_inodes;
};

/// Parses /proc/net/tcp, tcp6, udp, udp6, udplite, udplite6, raw, raw6, icmp or icmp6
/// (`protocol` names which: a trailing '6' means IPv6). Addresses are decoded to their
/// textual form ("127.0.0.1", "::1"); for raw sockets the port is the IP protocol number.
/// A socket other than TCP is "established" when connected, "unconnected" otherwise.
absl::StatusOr<std::vector<SocketEntry>> ParseNetInet(absl::string_view text,
                                                      absl::string_view protocol);

/// Parses /proc/net/unix. The socket's path (if bound) is its local address, escaped with
/// Printable; an abstract name starts with '@'. The kernel prints a bound path's bytes
/// raw, so a path with a newline continues on the next line: a line that is not an entry
/// continues the previous entry's path. A continuation that itself looks like an entry
/// cannot be told from one; callers that find an inode twice must not trust either entry.
absl::StatusOr<std::vector<SocketEntry>> ParseNetUnix(absl::string_view text);

/// The open flags (octal "flags:" line) of /proc/<pid>/fdinfo/<fd>.
absl::StatusOr<uint32_t> ParseFdInfoFlags(absl::string_view text);

/// /proc/<pid>/cmdline split at NUL bytes (a trailing NUL does not make an empty argument).
std::vector<std::string> SplitCmdline(absl::string_view text);

/// Pids in /proc/<pid>/task/<tid>/children (space separated).
absl::StatusOr<std::vector<int>> ParsePidList(absl::string_view text);

/// Reads a whole /proc file (whose stat size is 0), up to `max_bytes`. The error names the
/// path and the errno. A longer file is an error, unless `truncated` is given: then its
/// first `max_bytes` are returned and *truncated says whether there was more.
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 64 << 20,
                                     bool* truncated = nullptr);

/// readlink(2) of `path`, with the error naming the path.
absl::StatusOr<std::string> ReadLink(const std::string& path);

/// vigil::EscapeUntrusted (common/escape.h): a process-controlled string made valid UTF-8 for
/// a proto3 string field and safe to log.
std::string Printable(absl::string_view s);

}  // namespace vigil::node::procfs
