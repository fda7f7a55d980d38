#pragma once

// The sockets one process holds, matched from its descriptors ("socket:[inode]") to the
// socket tables of its own network namespace.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "node/procfs/procfs.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// Parses replies to a NETLINK_SOCK_DIAG dump of AF_UNIX sockets that asked for names,
/// peers and pending connections (UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS),
/// appending one entry per socket to `out`: an abstract name starts with '@' (its NUL bytes
/// shown as '@', as in /proc/net/unix and ss), every name is escaped with
/// procfs::Printable, and `peer_inode` and `pending_inodes` are set. Returns true
/// once the dump's end (NLMSG_DONE) is seen; an NLMSG_ERROR reply is returned as an error.
absl::StatusOr<bool> ParseUnixDiagReplies(absl::string_view replies,
                                          std::vector<procfs::SocketEntry>* out);

/// Every unix socket of the network namespace that `netns_path` (/proc/<pid>/ns/net) names,
/// from sock_diag: unlike /proc/net/unix it cannot be misread when a socket's path contains
/// a newline, and it gives each socket's peer. `remote_address` is set to the name of the
/// peer (a connection not yet accepted takes its listener's name). Needs CAP_SYS_ADMIN
/// over that namespace.
absl::StatusOr<std::vector<procfs::SocketEntry>> DumpUnixSockets(const std::string& netns_path);

/// Appends to `out` the sockets behind `fd_by_inode` (socket inode -> one descriptor
/// holding it) of the process whose procfs directory is `dir`. Sockets are looked up in the
/// TCP, UDP, UDP-Lite, raw and ping tables of `dir`/net, and in its namespace's unix
/// sockets (sock_diag, or /proc/net/unix when sock_diag is refused). For a unix socket the
/// remote address is the name its peer is bound to (a client connected to a listening
/// socket sees the listener's path). A socket found in none (another family such as
/// netlink or packet, or a socket of another network namespace) is still listed, with the
/// protocol the kernel names for it and state "unknown". What cannot be read is appended to
/// `problems`.
void ReadProcessSockets(const std::string& dir,
                        const absl::flat_hash_map<uint64_t, int>& fd_by_inode,
                        google::protobuf::RepeatedPtrField<v1::Socket>* out,
                        std::vector<absl::Status>* problems);

}  // namespace vigil::node
