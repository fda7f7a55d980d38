#include "node/procfs/process_sockets.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace vigil::node {
namespace {

absl::Status BadReply(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed sock_diag reply: ", what));
}

std::string UnixName(absl::string_view raw) {
  if (raw.empty()) return "";
  // A path ends at its terminating NUL (which the kernel keeps in the address); an abstract
  // name starts with NUL and may contain more, which /proc/net/unix and ss print as '@'.
  if (raw[0] != '\0') raw = raw.substr(0, raw.find('\0'));
  std::string name(raw);
  for (char& c : name) {
    if (c == '\0') c = '@';
  }
  return procfs::Printable(name);
}

std::string UnixState(uint8_t sk_state) {
  switch (sk_state) {  // include/net/tcp_states.h, as unix sockets use them
    case 1:
      return "connected";
    case 2:
      return "connecting";
    case 7:
      return "unconnected";
    case 10:
      return "listen";
    default:
      return absl::StrCat("state_", sk_state);
  }
}

// Opens a NETLINK_SOCK_DIAG socket in the network namespace `netns_path` names.
absl::StatusOr<UniqueFd> DiagSocketIn(const std::string& netns_path) {
  UniqueFd ns(open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.Valid()) return absl::ErrnoToStatus(errno, netns_path);
  struct stat target {
  }, own{};
  bool same = fstat(ns.Get(), &target) == 0 && stat("/proc/thread-self/ns/net", &own) == 0 &&
              target.st_dev == own.st_dev && target.st_ino == own.st_ino;
  int sock = -1, err = 0;
  auto open_socket = [&] {
    sock = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (sock < 0) err = errno;
  };
  if (same) {
    open_socket();
  } else {
    // A socket belongs to the network namespace of the thread that creates it, and
    // setns(CLONE_NEWNET) moves the calling thread only: a thread of its own creates the
    // socket there, and the node's other threads stay where they are.
    std::thread([&] {
      if (setns(ns.Get(), CLONE_NEWNET) != 0) {
        err = errno;
        return;
      }
      open_socket();
    }).join();
  }
  if (sock < 0) return absl::ErrnoToStatus(err, absl::StrCat("sock_diag in ", netns_path));
  return UniqueFd(sock);
}

void AddEntry(const procfs::SocketEntry& e, v1::Socket* out) {
  out->set_protocol(e.protocol);
  out->set_state(e.state);
  out->set_local_address(e.local_address);
  out->set_local_port(e.local_port);
  out->set_remote_address(e.remote_address);
  out->set_remote_port(e.remote_port);
  out->set_inode(e.inode);
}

// The kernel's name for the protocol of a socket descriptor (getxattr
// "system.sockprotoname"), in the spelling of the socket tables: "tcp6", "netlink".
std::string ProtocolName(const std::string& fd_path) {
  char buf[64] = {};
  ssize_t n = getxattr(fd_path.c_str(), "system.sockprotoname", buf, sizeof(buf) - 1);
  if (n <= 0) return "unknown";
  std::string name = absl::AsciiStrToLower(absl::string_view(buf, strnlen(buf, n)));
  if (absl::StartsWith(name, "unix")) return "unix";  // "UNIX", "UNIX-STREAM"
  if (absl::StartsWith(name, "ping")) name = "icmp" + name.substr(4);
  if (absl::EndsWith(name, "v6")) name = name.substr(0, name.size() - 2) + "6";
  return procfs::Printable(name);
}

}  // namespace

absl::StatusOr<bool> ParseUnixDiagReplies(absl::string_view replies,
                                          std::vector<procfs::SocketEntry>* out) {
  while (!replies.empty()) {
    nlmsghdr h{};
    if (replies.size() < sizeof(h)) return BadReply("truncated header");
    memcpy(&h, replies.data(), sizeof(h));
    if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > replies.size()) return BadReply("length");
    absl::string_view body = replies.substr(NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN);
    replies.remove_prefix(std::min<size_t>(NLMSG_ALIGN(h.nlmsg_len), replies.size()));
    if (h.nlmsg_type == NLMSG_DONE) return true;
    if (h.nlmsg_type == NLMSG_ERROR) {
      int error = 0;
      if (body.size() < sizeof(error)) return BadReply("truncated error");
      memcpy(&error, body.data(), sizeof(error));
      if (error == 0) continue;  // an acknowledgement, not an error
      if (error > 0 || error == INT_MIN) return BadReply("error code");
      return absl::ErrnoToStatus(-error, "sock_diag");
    }
    if (h.nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
    unix_diag_msg m{};
    if (body.size() < sizeof(m)) return BadReply("truncated unix_diag_msg");
    memcpy(&m, body.data(), sizeof(m));
    procfs::SocketEntry e;
    e.protocol = "unix";
    e.inode = m.udiag_ino;
    e.state = UnixState(m.udiag_state);
    absl::string_view attrs = body.substr(std::min<size_t>(NLMSG_ALIGN(sizeof(m)), body.size()));
    while (attrs.size() >= sizeof(rtattr)) {
      rtattr a{};
      memcpy(&a, attrs.data(), sizeof(a));
      if (a.rta_len < sizeof(a) || a.rta_len > attrs.size()) return BadReply("attribute length");
      absl::string_view payload = attrs.substr(RTA_LENGTH(0), a.rta_len - RTA_LENGTH(0));
      if (a.rta_type == UNIX_DIAG_NAME) {
        e.local_address = UnixName(payload);
      } else if (a.rta_type == UNIX_DIAG_PEER && payload.size() >= sizeof(uint32_t)) {
        uint32_t peer = 0;
        memcpy(&peer, payload.data(), sizeof(peer));
        e.peer_inode = peer;
      } else if (a.rta_type == UNIX_DIAG_ICONS) {
        for (size_t at = 0; at + sizeof(uint32_t) <= payload.size(); at += sizeof(uint32_t)) {
          uint32_t pending = 0;
          memcpy(&pending, payload.data() + at, sizeof(pending));
          e.pending_inodes.push_back(pending);
        }
      }
      attrs.remove_prefix(std::min<size_t>(RTA_ALIGN(a.rta_len), attrs.size()));
    }
    out->push_back(std::move(e));
  }
  return false;
}

absl::StatusOr<std::vector<procfs::SocketEntry>> DumpUnixSockets(const std::string& netns_path) {
  ASSIGN_OR_RETURN(UniqueFd owned_sock, DiagSocketIn(netns_path));
  const int sock = owned_sock.Get();
  timeval timeout{5, 0};  // a dump never stalls; this only bounds a kernel that misbehaves
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  struct {
    nlmsghdr h;
    unix_diag_req req;
  } request{};
  request.h.nlmsg_len = sizeof(request);
  request.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.h.nlmsg_seq = 1;
  request.req.sdiag_family = AF_UNIX;
  request.req.udiag_states = ~0u;
  request.req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(sock, &request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof(kernel)) != static_cast<ssize_t>(sizeof(request))) {
    return absl::ErrnoToStatus(errno, "sock_diag request");
  }
  std::vector<procfs::SocketEntry> out;
  std::string buf(64 * 1024, '\0');
  for (;;) {
    ssize_t n = recv(sock, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "sock_diag reply");
    }
    if (n == 0) return BadReply("end of stream before NLMSG_DONE");
    ASSIGN_OR_RETURN(bool done, ParseUnixDiagReplies(
                                    absl::string_view(buf.data(), static_cast<size_t>(n)), &out));
    if (done) break;
  }
  absl::flat_hash_map<uint64_t, std::string> names;
  // A client whose connection is not yet accepted has for peer a socket in no table; the
  // listener lists such clients, so they get the listener's name.
  absl::flat_hash_map<uint64_t, std::string> waiting_on;
  for (const procfs::SocketEntry& e : out) {
    names[e.inode] = e.local_address;
    for (uint64_t client : e.pending_inodes) waiting_on[client] = e.local_address;
  }
  for (procfs::SocketEntry& e : out) {
    if (auto it = names.find(e.peer_inode); e.peer_inode != 0 && it != names.end()) {
      e.remote_address = it->second;
    } else if (auto w = waiting_on.find(e.inode); w != waiting_on.end()) {
      e.remote_address = w->second;
    }
  }
  return out;
}

void ReadProcessSockets(const std::string& dir,
                        const absl::flat_hash_map<uint64_t, int>& fd_by_inode,
                        google::protobuf::RepeatedPtrField<v1::Socket>* out,
                        std::vector<absl::Status>* problems) {
  absl::flat_hash_set<uint64_t> found;
  auto take = [&](const std::vector<procfs::SocketEntry>& entries) {
    for (const procfs::SocketEntry& e : entries) {
      if (fd_by_inode.contains(e.inode) && found.insert(e.inode).second) AddEntry(e, out->Add());
    }
  };
  auto table = [&](absl::string_view name) -> absl::StatusOr<std::vector<procfs::SocketEntry>> {
    std::string path = absl::StrCat(dir, "/net/", name);
    ASSIGN_OR_RETURN(std::string text, procfs::ReadFile(path));
    auto entries = name == "unix" ? procfs::ParseNetUnix(text) : procfs::ParseNetInet(text, name);
    if (!entries.ok()) {
      return absl::Status(entries.status().code(),
                          absl::StrCat(path, ": ", entries.status().message()));
    }
    return entries;
  };
  // The common tables first; the rest only while some socket is still unaccounted for.
  for (const char* name : {"tcp", "tcp6", "udp", "udp6", "unix", "raw", "raw6", "udplite",
                           "udplite6", "icmp", "icmp6"}) {
    if (found.size() == fd_by_inode.size()) break;
    if (absl::string_view(name) == "unix") {
      auto diag = DumpUnixSockets(absl::StrCat(dir, "/ns/net"));
      if (diag.ok()) {
        take(*diag);
        continue;
      }
      // Without sock_diag, the text table: an inode listed twice means a path with a
      // newline imitated an entry, and neither entry can be trusted.
      auto entries = table(name);
      if (!entries.ok()) {
        problems->push_back(entries.status());
        continue;
      }
      absl::flat_hash_map<uint64_t, int> times;
      for (const procfs::SocketEntry& e : *entries) ++times[e.inode];
      std::vector<procfs::SocketEntry> unique;
      std::vector<uint64_t> ambiguous;
      for (procfs::SocketEntry& e : *entries) {
        if (times[e.inode] == 1) {
          unique.push_back(std::move(e));
        } else if (fd_by_inode.contains(e.inode)) {
          ambiguous.push_back(e.inode);
          times[e.inode] = 0;  // report each inode once
        }
      }
      for (uint64_t inode : ambiguous) {
        problems->push_back(absl::DataLossError(absl::StrCat(
            dir, "/net/unix: socket ", inode, " is listed twice (a path imitates an entry)")));
      }
      take(unique);
      continue;
    }
    auto entries = table(name);
    if (entries.ok()) {
      take(*entries);
    } else if (!absl::IsNotFound(entries.status())) {  // IPv6 or UDP-Lite may be absent
      problems->push_back(entries.status());
    }
  }
  std::vector<std::pair<int, uint64_t>> rest;  // by descriptor, for a stable order
  for (const auto& [inode, fd] : fd_by_inode) {
    if (!found.contains(inode)) rest.push_back({fd, inode});
  }
  std::sort(rest.begin(), rest.end());
  for (const auto& [fd, inode] : rest) {
    procfs::SocketEntry e;
    e.protocol = ProtocolName(absl::StrCat(dir, "/fd/", fd));
    e.state = "unknown";
    e.inode = inode;
    AddEntry(e, out->Add());
  }
}

}  // namespace vigil::node
