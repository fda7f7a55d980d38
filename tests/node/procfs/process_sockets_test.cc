#include "node/procfs/process_sockets.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace vigil::node {
namespace {

// Builds netlink replies as the kernel sends them.
class Replies {
 public:
  void Socket(uint32_t ino, uint8_t state, const std::string& name, uint32_t peer,
              const std::vector<uint32_t>& pending = {}) {
    std::string body(NLMSG_ALIGN(sizeof(unix_diag_msg)), '\0');
    unix_diag_msg m{};
    m.udiag_family = AF_UNIX;
    m.udiag_type = SOCK_STREAM;
    m.udiag_state = state;
    m.udiag_ino = ino;
    memcpy(body.data(), &m, sizeof(m));
    if (!name.empty()) Attr(&body, UNIX_DIAG_NAME, name);
    if (peer != 0) Attr(&body, UNIX_DIAG_PEER, std::string(reinterpret_cast<char*>(&peer), 4));
    if (!pending.empty()) {
      Attr(&body, UNIX_DIAG_ICONS,
           std::string(reinterpret_cast<const char*>(pending.data()), 4 * pending.size()));
    }
    Message(SOCK_DIAG_BY_FAMILY, body);
  }
  void Done() { Message(NLMSG_DONE, std::string(4, '\0')); }
  void Error(int error) { ErrorCode(-error); }
  // An NLMSG_ERROR whose nlmsgerr.error is `code` as is (the kernel sends -errno).
  void ErrorCode(int code) {
    std::string body(sizeof(nlmsgerr), '\0');
    memcpy(body.data(), &code, sizeof(code));
    Message(NLMSG_ERROR, body);
  }
  const std::string& bytes() const { return bytes_; }

 private:
  static void Attr(std::string* body, uint16_t type, const std::string& payload) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = RTA_LENGTH(payload.size());
    std::string attr(RTA_ALIGN(a.rta_len), '\0');
    memcpy(attr.data(), &a, sizeof(a));
    memcpy(attr.data() + RTA_LENGTH(0), payload.data(), payload.size());
    *body += attr;
  }
  void Message(uint16_t type, const std::string& body) {
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_len = NLMSG_LENGTH(body.size());
    std::string msg(NLMSG_ALIGN(h.nlmsg_len), '\0');
    memcpy(msg.data(), &h, sizeof(h));
    memcpy(msg.data() + NLMSG_HDRLEN, body.data(), body.size());
    bytes_ += msg;
  }
  std::string bytes_;
};

TEST(UnixDiagTest, ParsesNamesStatesAndPeers) {
  Replies r;
  r.Socket(100, 10, std::string("/run/agent\nctl.sock\0", 20), 0, {200, 201});  // path, NUL
  r.Socket(101, 1, std::string("\0abs\0x", 6), 102);                            // abstract
  r.Socket(102, 1, "", 101);                                                    // unnamed
  r.Socket(103, 7, "", 0);
  r.Done();
  std::vector<procfs::SocketEntry> got;
  auto done = ParseUnixDiagReplies(r.bytes(), &got);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(*done);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].inode, 100u);
  EXPECT_EQ(got[0].state, "listen");
  EXPECT_EQ(got[0].local_address, "/run/agent\\x0actl.sock");
  EXPECT_EQ(got[0].pending_inodes, (std::vector<uint64_t>{200, 201}));
  EXPECT_EQ(got[1].local_address, "@abs@x");
  EXPECT_EQ(got[1].state, "connected");
  EXPECT_EQ(got[1].peer_inode, 102u);
  EXPECT_EQ(got[2].local_address, "");
  EXPECT_EQ(got[3].state, "unconnected");
  for (const auto& e : got) EXPECT_EQ(e.protocol, "unix");
}

TEST(UnixDiagTest, ReportsKernelErrorsAndRejectsTruncatedReplies) {
  Replies err;
  err.Error(EPERM);
  std::vector<procfs::SocketEntry> got;
  EXPECT_TRUE(absl::IsPermissionDenied(ParseUnixDiagReplies(err.bytes(), &got).status()));
  Replies partial;
  partial.Socket(100, 10, "/x", 0);
  auto more = ParseUnixDiagReplies(partial.bytes(), &got);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);  // no NLMSG_DONE yet
  for (size_t cut : {size_t{3}, size_t{NLMSG_HDRLEN + 2}, partial.bytes().size() - 1}) {
    EXPECT_FALSE(ParseUnixDiagReplies(partial.bytes().substr(0, cut), &got).ok()) << cut;
  }
}

TEST(UnixDiagTest, AnAcknowledgementIsNoErrorAndAMalformedErrorCodeIsRefused) {
  Replies replies;
  replies.ErrorCode(0);  // NLMSG_ERROR with error 0 acknowledges a request
  replies.Socket(100, 10, "/x", 0);
  replies.Done();
  std::vector<procfs::SocketEntry> got;
  auto done = ParseUnixDiagReplies(replies.bytes(), &got);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(*done);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].inode, 100u);
  for (int code : {5, INT_MIN}) {  // a positive code, and one that cannot be negated
    Replies bad;
    bad.ErrorCode(code);
    EXPECT_TRUE(absl::IsInvalidArgument(ParseUnixDiagReplies(bad.bytes(), &got).status())) << code;
  }
}

uint64_t InodeOf(int fd) {
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0);
  return st.st_ino;
}

// An abstract listening socket named `name` and a client connected to it.
struct Pair {
  int listener = -1, client = -1;
};
Pair ListenAndConnect(const std::string& name) {
  Pair p;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path + 1, name.data(), name.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + name.size();
  p.listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  p.client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(bind(p.listener, reinterpret_cast<sockaddr*>(&a), len), 0);
  EXPECT_EQ(listen(p.listener, 1), 0);
  EXPECT_EQ(connect(p.client, reinterpret_cast<sockaddr*>(&a), len), 0);
  return p;
}

TEST(UnixDiagTest, DumpsTheSocketsOfTheNamedNamespaceWithPeerNames) {
  const std::string name = absl::StrCat("vigil-diag-", getpid());
  Pair p = ListenAndConnect(name);
  auto socks = DumpUnixSockets("/proc/self/ns/net");
  ASSERT_TRUE(socks.ok()) << socks.status();
  const procfs::SocketEntry* listener = nullptr;
  const procfs::SocketEntry* client = nullptr;
  for (const auto& e : *socks) {
    if (e.inode == InodeOf(p.listener)) listener = &e;
    if (e.inode == InodeOf(p.client)) client = &e;
  }
  ASSERT_NE(listener, nullptr);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(listener->state, "listen");
  EXPECT_EQ(listener->local_address, "@" + name);
  EXPECT_EQ(client->state, "connected");
  EXPECT_EQ(client->local_address, "");
  // The connection waits in the listener's queue; the client's peer is in no table, the
  // listener lists the client, whose remote is the listener's name.
  EXPECT_EQ(listener->pending_inodes, std::vector<uint64_t>{InodeOf(p.client)});
  EXPECT_EQ(client->remote_address, "@" + name);
  close(p.listener);
  close(p.client);
}

TEST(UnixDiagTest, ReadsAnotherNetworkNamespace) {
  int report[2], hold[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
  const std::string name = absl::StrCat("vigil-diag-netns-", getpid());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(report[0]);
    close(hold[1]);
    if (unshare(CLONE_NEWNET) != 0) _exit(1);
    Pair p = ListenAndConnect(name);
    uint64_t ino = InodeOf(p.listener);
    if (write(report[1], &ino, sizeof(ino)) != sizeof(ino)) _exit(2);
    char c;
    (void)read(hold[0], &c, 1);
    _exit(0);
  }
  close(report[1]);
  close(hold[0]);
  uint64_t ino = 0;
  ASSERT_EQ(read(report[0], &ino, sizeof(ino)), static_cast<ssize_t>(sizeof(ino)));
  auto theirs = DumpUnixSockets(absl::StrCat("/proc/", child, "/ns/net"));
  auto ours = DumpUnixSockets("/proc/self/ns/net");
  close(hold[1]);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  ASSERT_TRUE(ours.ok()) << ours.status();
  bool found = false;
  for (const auto& e : *theirs) found |= e.inode == ino && e.local_address == "@" + name;
  EXPECT_TRUE(found);
  for (const auto& e : *ours) EXPECT_NE(e.inode, ino);
  EXPECT_FALSE(DumpUnixSockets("/proc/999999999/ns/net").ok());
}

TEST(ProcessSocketsTest, ASocketInNoTableIsListedWithTheKernelsProtocolName) {
  int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  ASSERT_GE(nl, 0);
  absl::flat_hash_map<uint64_t, int> fds = {{InodeOf(nl), nl}};
  google::protobuf::RepeatedPtrField<v1::Socket> out;
  std::vector<absl::Status> problems;
  ReadProcessSockets("/proc/self", fds, &out, &problems);
  close(nl);
  for (const auto& p : problems) ADD_FAILURE() << p;
  ASSERT_EQ(out.size(), 1);
  EXPECT_EQ(out[0].protocol(), "netlink");
  EXPECT_EQ(out[0].state(), "unknown");
  EXPECT_EQ(out[0].inode(), fds.begin()->first);
}

}  // namespace
}  // namespace vigil::node
