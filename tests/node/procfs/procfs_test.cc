#include "node/procfs/procfs.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_format.h"

namespace vigil::node::procfs {
namespace {

constexpr char kStatus[] =
    "Name:\tagent worker\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t4242\n"
    "PPid:\t17\n"
    "Uid:\t1000\t1001\t1002\t1003\n"
    "Gid:\t2000\t2001\t2002\t2003\n"
    "Groups:\t4 24 27 \n"
    "VmLck:\t     128 kB\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t000001ffffffffff\n"
    "CapEff:\t0000000000000400\n"
    "CapBnd:\t000001fffffbfffe\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t1\n"
    "Seccomp:\t2\n"
    "Seccomp_filters:\t3\n";

TEST(ProcfsStatusTest, ParsesEveryReportedField) {
  auto s = ParseStatus(kStatus);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name, "agent worker");
  EXPECT_EQ(s->ppid, 17);
  EXPECT_EQ(s->uid[0], 1000u);
  EXPECT_EQ(s->uid[3], 1003u);
  EXPECT_EQ(s->gid[1], 2001u);
  EXPECT_EQ(s->groups, (std::vector<uint32_t>{4, 24, 27}));
  EXPECT_EQ(s->vm_locked_kib, 128u);
  EXPECT_EQ(s->cap_inheritable, 0u);
  EXPECT_EQ(s->cap_permitted, 0x1ffffffffffu);
  EXPECT_EQ(s->cap_effective, 0x400u);
  EXPECT_EQ(s->cap_bounding, 0x1fffffbfffeu);
  EXPECT_EQ(s->cap_ambient, 0u);
  EXPECT_TRUE(s->no_new_privs);
  EXPECT_EQ(s->seccomp_mode, 2u);
  EXPECT_EQ(s->seccomp_filters, 3u);
}

TEST(ProcfsStatusTest, ReadsTheStateLetter) {
  EXPECT_EQ(ParseStatus(kStatus)->state, 'S');
  std::string zombie = kStatus;
  zombie.replace(zombie.find("S (sleeping)"), 12, "Z (zombie)");
  EXPECT_EQ(ParseStatus(zombie)->state, 'Z');
  std::string none = kStatus;
  none.erase(none.find("State:"), std::string("State:\tS (sleeping)\n").size());
  EXPECT_EQ(ParseStatus(none)->state, '?');
}

TEST(ProcfsStatusTest, RejectsMissingOrMalformedRequiredFields) {
  std::string no_caps = kStatus;
  no_caps.erase(no_caps.find("CapBnd"), std::string("CapBnd:\t000001fffffbfffe\n").size());
  EXPECT_FALSE(ParseStatus(no_caps).ok());
  std::string bad_uid = kStatus;
  bad_uid.replace(bad_uid.find("1001"), 4, "x001");
  EXPECT_FALSE(ParseStatus(bad_uid).ok());
  std::string bad_seccomp = kStatus;
  bad_seccomp.replace(bad_seccomp.find("Seccomp:\t2"), 10, "Seccomp:\t9");
  EXPECT_FALSE(ParseStatus(bad_seccomp).ok());
  EXPECT_FALSE(ParseStatus("").ok());
  EXPECT_FALSE(ParseStatus(std::string("\0\0\xff garbage", 12)).ok());
}

TEST(ProcfsStatTest, CommWithSpacesAndParenthesesIsDelimitedByTheLastParen) {
  std::string text =
      "4242 (evil) 1 (x) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
      "987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n";
  auto st = ParseStat(text);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->pid, 4242);
  EXPECT_EQ(st->comm, "evil) 1 (x");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 17);
  EXPECT_EQ(st->start_time_ticks, 987654u);
}

TEST(ProcfsStatTest, ReadsFlagsAndTheProgramImage) {
  // kthreadd: PF_KTHREAD (0x00200000) in field 9, no image.
  auto kthread = ParseStat(
      "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 18446744073709551615 0 "
      "0 0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
  ASSERT_TRUE(kthread.ok()) << kthread.status();
  EXPECT_TRUE(kthread->kernel_thread());
  EXPECT_FALSE(kthread->exited());
  // A user process: fields 26-28 and 48 are its image; 'Z' is a zombie.
  auto user = ParseStat(
      "4242 (agent) Z 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 "
      "18446744073709551615 94000000000000 94000000100000 140730000000000 0 0 0 0 0 0 0 0 0 17 "
      "1 0 0 0 0 0 94000000200000 94000000300000 94000000400000 140730000001000 140730000002000 "
      "140730000002000 140730000003000 0\n");
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_FALSE(user->kernel_thread());
  EXPECT_TRUE(user->exited());
  EXPECT_EQ(user->flags, 4194560u);
  EXPECT_EQ(user->image[0], 94000000000000u);
  EXPECT_EQ(user->image[1], 94000000100000u);
  EXPECT_EQ(user->image[2], 140730000000000u);
  EXPECT_EQ(user->image[3], 140730000001000u);
  // A kernel that prints fewer fields leaves the image zero; a bad number is an error.
  auto old = ParseStat("1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0\n");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->image[0], 0u);
  EXPECT_FALSE(
      ParseStat("1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0 0 0 0 x\n").ok());
}

TEST(ProcfsStatTest, RejectsTruncatedStat) {
  EXPECT_FALSE(ParseStat("4242 (a) S 17 4242").ok());
  EXPECT_FALSE(ParseStat("4242 a S 17").ok());
  EXPECT_FALSE(ParseStat("").ok());
}

TEST(ProcfsMapsTest, ParsesPathsWithSpacesAndAnonymousRegions) {
  auto maps = ParseMaps(
      "556fa71ce000-556fa71d3000 r-xp 00002000 fe:00 247134                     /usr/bin/cat\n"
      "7f0000000000-7f0000002000 rwxp 00000000 00:00 0 \n"
      "7f0000010000-7f0000011000 r-xs 00000000 00:01 1234 /memfd:jit cache (deleted)\n");
  ASSERT_TRUE(maps.ok()) << maps.status();
  ASSERT_EQ(maps->size(), 3u);
  EXPECT_EQ((*maps)[0].start, 0x556fa71ce000u);
  EXPECT_EQ((*maps)[0].end, 0x556fa71d3000u);
  EXPECT_EQ((*maps)[0].dev_major, 0xfeu);
  EXPECT_EQ((*maps)[0].inode, 247134u);
  EXPECT_EQ((*maps)[0].path, "/usr/bin/cat");
  EXPECT_TRUE((*maps)[0].executable());
  EXPECT_FALSE((*maps)[0].writable());
  EXPECT_TRUE((*maps)[1].anonymous());
  EXPECT_TRUE((*maps)[1].writable());
  EXPECT_EQ((*maps)[1].path, "");
  EXPECT_EQ((*maps)[1].size_kib, 8u);
  EXPECT_EQ((*maps)[2].path, "/memfd:jit cache (deleted)");
}

TEST(ProcfsMapsTest, StreamedInPiecesOfAnySizeGivesTheSameMappings) {
  const std::string smaps =
      "7f0000000000-7f0000004000 rwxp 00000000 00:00 0 \n"
      "Size:                 16 kB\n"
      "Locked:               16 kB\n"
      "THPeligible:    0\n"
      "VmFlags: rd wr ex mr mw me lo ac sd\n"
      "7f0000010000-7f0000011000 r-xp 00001000 fd:01 99 /opt/a b/lib.so\n"
      "Size:                  4 kB\n"
      "Locked:                0 kB";  // no final newline: Finish() takes the last line
  auto whole = ParseSmaps(smaps);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_EQ(whole->size(), 2u);
  for (size_t piece : {1u, 2u, 7u, 64u}) {
    std::vector<Mapping> got;
    MapsParser parser([&got](Mapping&& m) { got.push_back(std::move(m)); });
    for (size_t at = 0; at < smaps.size(); at += piece) {
      ASSERT_TRUE(parser.Feed(absl::string_view(smaps).substr(at, piece)).ok()) << piece;
    }
    ASSERT_TRUE(parser.Finish().ok());
    ASSERT_EQ(got.size(), 2u) << piece;
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(got[i].start, (*whole)[i].start);
      EXPECT_EQ(got[i].path, (*whole)[i].path);
      EXPECT_EQ(got[i].vm_locked, (*whole)[i].vm_locked);
      EXPECT_EQ(got[i].locked_kib, (*whole)[i].locked_kib);
    }
  }
  EXPECT_TRUE((*whole)[0].vm_locked);
  EXPECT_EQ((*whole)[1].path, "/opt/a b/lib.so");
  EXPECT_EQ((*whole)[1].dev_major, 0xfdu);
}

TEST(ProcfsMapsTest, ReadsALargeFileInPieces) {
  // More than one read(2) buffer of maps text, from a real file.
  char tmpl[] = "/tmp/vigil-maps-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  std::string text;
  constexpr int kLines = 5000;
  for (int i = 0; i < kLines; ++i) {
    text += absl::StrFormat("%x-%x r-xp 00000000 00:00 0 \nSize: 4 kB\n", 0x10000 + i * 0x2000,
                            0x11000 + i * 0x2000);
  }
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  int count = 0;
  uint64_t last = 0;
  absl::Status st = ForEachMapping(tmpl, [&](Mapping&& m) {
    ++count;
    last = m.start;
  });
  unlink(tmpl);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(count, kLines);
  EXPECT_EQ(last, 0x10000u + (kLines - 1) * 0x2000u);
  auto missing = ForEachMapping("/proc/999999999/smaps", [](Mapping&&) {});
  EXPECT_TRUE(absl::IsNotFound(missing));
  EXPECT_NE(missing.message().find("/proc/999999999/smaps"), std::string::npos);
}

TEST(ProcfsMapsTest, RejectsMalformedLines) {
  for (const char* bad : {"zzzz-0000 r-xp 0 00:00 0", "1000-0800 r-xp 0 00:00 0",
                          "1000-2000 r-x 0 00:00 0", "1000-2000 r-xp 0 00:00", "garbage"}) {
    EXPECT_FALSE(ParseMaps(bad).ok()) << bad;
  }
}

TEST(ProcfsSmapsTest, AttachesSizeAndLockedToTheirMapping) {
  auto maps = ParseSmaps(
      "7f0000000000-7f0000004000 rwxp 00000000 00:00 0 \n"
      "Size:                 16 kB\n"
      "Rss:                  16 kB\n"
      "Locked:               16 kB\n"
      "VmFlags: rd wr ex mr mw me lo ac sd\n"
      "7f0000010000-7f0000011000 r-xp 00000000 00:00 0 \n"
      "Size:                  4 kB\n"
      "Locked:                0 kB\n");
  ASSERT_TRUE(maps.ok()) << maps.status();
  ASSERT_EQ(maps->size(), 2u);
  EXPECT_EQ((*maps)[0].size_kib, 16u);
  EXPECT_EQ((*maps)[0].locked_kib, 16u);
  EXPECT_TRUE((*maps)[0].vm_locked);
  EXPECT_FALSE((*maps)[1].vm_locked);
  EXPECT_EQ((*maps)[1].size_kib, 4u);
  EXPECT_EQ((*maps)[1].locked_kib, 0u);
  EXPECT_FALSE(ParseSmaps("Size: 4 kB\n").ok());
  EXPECT_FALSE(ParseSmaps("7f0000000000-7f0000004000 rwxp 00000000 00:00 0\nnot a field\n").ok());
}

struct ContainerCase {
  const char* cgroup;
  const char* id;
};

class ContainerIdTest : public ::testing::TestWithParam<ContainerCase> {};

constexpr char kId[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST_P(ContainerIdTest, FindsTheRuntimesContainerId) {
  EXPECT_EQ(ContainerIdFromCgroup(GetParam().cgroup), GetParam().id) << GetParam().cgroup;
}

INSTANTIATE_TEST_SUITE_P(
    Runtimes, ContainerIdTest,
    ::testing::Values(
        ContainerCase{"/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123"
                      "456789abcdef.scope",
                      kId},
        ContainerCase{"/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                      kId},
        ContainerCase{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
                      "cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                      "abcdef.scope",
                      kId},
        ContainerCase{"/kubepods/besteffort/pod7/"
                      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                      kId},
        ContainerCase{"/machine.slice/crio-0123456789abcdef0123456789abcdef0123456789abcdef01234"
                      "56789abcdef.scope",
                      kId},
        ContainerCase{"/machine.slice/libpod-0123456789abcdef0123456789abcdef0123456789abcdef012"
                      "3456789abcdef.scope/container",
                      kId},
        ContainerCase{"/machine.slice/libpod-conmon-0123456789abcdef0123456789abcdef0123456789ab"
                      "cdef0123456789abcdef.scope",
                      ""},
        ContainerCase{"/user.slice/user-0.slice/session-3.scope", ""},
        ContainerCase{"/docker/0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                      ""},
        ContainerCase{"/docker/0123456789abcdef", ""}));

TEST(ProcfsCgroupTest, FallsBackToV1WhenV2IsUnused) {
  constexpr char kHybrid[] =
      "9:name=systemd:/system.slice/docker-"
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n"
      "4:memory:/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
      "3:cpuset:/\n"
      "0::/\n";
  EXPECT_EQ(ParseCgroupPath(kHybrid),
            "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"
            "f.scope");
  EXPECT_EQ(ContainerIdFromCgroupFile(kHybrid), kId);
  // Without name=systemd: the first v1 path that is not the root; a ':' in a path is kept.
  EXPECT_EQ(ParseCgroupPath("5:cpu:/\n4:memory:/batch:7\n0::/\n"), "/batch:7");
  // v2 in use wins; nothing but roots stays "/"; no lines at all is "".
  EXPECT_EQ(ParseCgroupPath("4:memory:/old\n0::/system.slice/agent.service\n"),
            "/system.slice/agent.service");
  EXPECT_EQ(ParseCgroupPath("4:memory:/\n0::/\n"), "/");
  EXPECT_EQ(ParseCgroupPath(""), "");
  EXPECT_EQ(ContainerIdFromCgroupFile("4:memory:/\n0::/user.slice\n"), "");
}

TEST(ProcfsCgroupTest, TakesTheV2Line) {
  EXPECT_EQ(ParseCgroupV2Path("12:cpu:/old\n0::/system.slice/agent.service\n"),
            "/system.slice/agent.service");
  EXPECT_EQ(ParseCgroupV2Path("12:cpu:/old\n"), "");
}

TEST(ProcfsIdMapTest, ParsesLinesAndRejectsGarbage) {
  auto m = ParseIdMap("         0          0 4294967295\n      1000     100000      65536\n");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].count, 4294967295u);
  EXPECT_EQ((*m)[1].inside, 1000u);
  EXPECT_EQ((*m)[1].outside, 100000u);
  EXPECT_FALSE(ParseIdMap("0 0\n").ok());
  EXPECT_FALSE(ParseIdMap("0 0 99999999999\n").ok());
}

TEST(ProcfsLinkTest, ParsesNamespaceAndSocketTargets) {
  auto ino = ParseNamespaceLink("mnt:[4026531841]");
  ASSERT_TRUE(ino.ok());
  EXPECT_EQ(*ino, 4026531841u);
  EXPECT_FALSE(ParseNamespaceLink("mnt:4026531841").ok());
  EXPECT_FALSE(ParseNamespaceLink("mnt:[x]").ok());
  EXPECT_EQ(ParseSocketLink("socket:[51835]"), 51835u);
  EXPECT_EQ(ParseSocketLink("/etc/passwd"), std::nullopt);
  EXPECT_EQ(ParseSocketLink("socket:[]"), std::nullopt);
  EXPECT_EQ(ParseSocketLink("anon_inode:[eventfd]"), std::nullopt);
}

TEST(ProcfsMountinfoTest, TheTopmostRootMountDecides) {
  constexpr char kRw[] =
      "21 26 0:20 / /proc rw,relatime - proc proc ro\n"
      "26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n";
  auto rw = ParseRootReadOnly(kRw);
  ASSERT_TRUE(rw.ok()) << rw.status();
  EXPECT_FALSE(*rw);
  auto ro =
      ParseRootReadOnly(std::string(kRw) + "300 26 254:0 / / ro,relatime - ext4 /dev/vda1 rw\n");
  ASSERT_TRUE(ro.ok());
  EXPECT_TRUE(*ro);
  auto sb_ro = ParseRootReadOnly("40 1 0:30 / / rw master:2 - overlay overlay ro,lowerdir=/a\n");
  ASSERT_TRUE(sb_ro.ok());
  EXPECT_TRUE(*sb_ro);
  EXPECT_TRUE(
      absl::IsNotFound(ParseRootReadOnly("21 26 0:20 / /proc rw - proc proc rw\n").status()));
  EXPECT_FALSE(ParseRootReadOnly("21 26\n").ok());
}

TEST(ProcfsNetTest, DecodesIpv4TcpSockets) {
  auto socks = ParseNetInet(
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
      "inode\n"
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
      "51835 1 0000000000000000 100 0 0 10 0\n"
      "   1: 0100007F:D3A2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 "
      "51900 1 0000000000000000 20 4 30 10 -1\n",
      "tcp");
  ASSERT_TRUE(socks.ok()) << socks.status();
  ASSERT_EQ(socks->size(), 2u);
  EXPECT_EQ((*socks)[0].state, "listen");
  EXPECT_EQ((*socks)[0].local_address, "127.0.0.1");
  EXPECT_EQ((*socks)[0].local_port, 8080u);
  EXPECT_EQ((*socks)[0].inode, 51835u);
  EXPECT_EQ((*socks)[1].state, "established");
  EXPECT_EQ((*socks)[1].local_port, 0xD3A2u);
  EXPECT_EQ((*socks)[1].remote_address, "127.0.0.1");
  EXPECT_EQ((*socks)[1].remote_port, 8080u);
}

TEST(ProcfsNetTest, DecodesIpv6AndUdpSockets) {
  auto tcp6 = ParseNetInet(
      "header\n"
      "   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A "
      "00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0\n",
      "tcp6");
  ASSERT_TRUE(tcp6.ok()) << tcp6.status();
  ASSERT_EQ(tcp6->size(), 1u);
  EXPECT_EQ((*tcp6)[0].local_address, "::1");
  EXPECT_EQ((*tcp6)[0].local_port, 22u);
  EXPECT_EQ((*tcp6)[0].remote_address, "::");
  auto udp = ParseNetInet(
      "header\n"
      "  5: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 "
      "888 2 0 0\n",
      "udp");
  ASSERT_TRUE(udp.ok()) << udp.status();
  EXPECT_EQ((*udp)[0].state, "unconnected");
  EXPECT_EQ((*udp)[0].local_address, "0.0.0.0");
  EXPECT_EQ((*udp)[0].local_port, 68u);
}

TEST(ProcfsNetTest, RejectsMalformedSocketLines) {
  EXPECT_FALSE(ParseNetInet("h\n 0: 0100007F:1F90 00000000:0000 0A\n", "tcp").ok());
  EXPECT_FALSE(ParseNetInet("h\n 0: 0100007F:XXXX 00000000:0000 0A 0:0 0:0 0 0 0 1\n", "tcp").ok());
  EXPECT_FALSE(ParseNetInet("h\n 0: 01007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1\n", "tcp").ok());
  EXPECT_FALSE(
      ParseNetInet("h\n 0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1\n", "tcp6").ok());
  EXPECT_TRUE(ParseNetInet("h\n", "tcp").ok());
}

TEST(ProcfsNetTest, ParsesUnixSocketsWithStateAndPath) {
  auto socks = ParseNetUnix(
      "Num       RefCount Protocol Flags    Type St Inode Path\n"
      "00000000e7a758b8: 00000002 00000000 00010000 0001 01 12345 /run/agent control.sock\n"
      "000000003cdf7848: 00000003 00000000 00000000 0001 03    43\n"
      "000000003cdf7849: 00000002 00000000 00000000 0002 01    44 @abstract\n");
  ASSERT_TRUE(socks.ok()) << socks.status();
  ASSERT_EQ(socks->size(), 3u);
  EXPECT_EQ((*socks)[0].state, "listen");
  EXPECT_EQ((*socks)[0].inode, 12345u);
  EXPECT_EQ((*socks)[0].local_address, "/run/agent control.sock");
  EXPECT_EQ((*socks)[1].state, "connected");
  EXPECT_EQ((*socks)[1].local_address, "");
  EXPECT_EQ((*socks)[2].local_address, "@abstract");
  EXPECT_FALSE(ParseNetUnix("h\n0000: 00000002 00000000 00010000 0001\n").ok());
}

TEST(ProcfsNetTest, AUnixPathWithNewlinesContinuesOnTheNextLines) {
  // bind("/tmp/a\nb\n\nc") and a relative path starting with spaces: the kernel prints the
  // bytes raw. The following entry is still read.
  auto socks = ParseNetUnix(
      "Num       RefCount Protocol Flags    Type St Inode Path\n"
      "00000000e7a758b8: 00000002 00000000 00010000 0001 01 12345 /tmp/a\n"
      "b\n"
      "\n"
      "c\n"
      "00000000e7a758b9: 00000002 00000000 00000000 0002 01 12346   rel\n");
  ASSERT_TRUE(socks.ok()) << socks.status();
  ASSERT_EQ(socks->size(), 2u);
  EXPECT_EQ((*socks)[0].local_address, "/tmp/a\\x0ab\\x0a\\x0ac");
  EXPECT_EQ((*socks)[0].state, "listen");
  EXPECT_EQ((*socks)[1].inode, 12346u);
  EXPECT_EQ((*socks)[1].local_address, "  rel");
  // A path can imitate a whole entry; the inode then appears twice, which callers check.
  auto forged = ParseNetUnix(
      "h\n"
      "00000000e7a758b8: 00000002 00000000 00010000 0001 01 500 @evil\n"
      "0000000000000000: 00000002 00000000 00010000 0001 01 600 /fake\n"
      "00000000e7a758b9: 00000003 00000000 00000000 0001 03 600\n");
  ASSERT_TRUE(forged.ok()) << forged.status();
  ASSERT_EQ(forged->size(), 3u);
  EXPECT_EQ((*forged)[1].inode, (*forged)[2].inode);
  // Continuing an unbound socket (which has no path) is not a continuation.
  EXPECT_FALSE(
      ParseNetUnix("h\n00000000e7a758b9: 00000003 00000000 00000000 0001 03 600\nx\n").ok());
}

TEST(ProcfsNetTest, RawAndPingSocketsAreUnconnectedOrEstablished) {
  auto raw = ParseNetInet(
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
      "inode ref pointer drops\n"
      " 250: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 "
      "94896 2 000000004a6f01cf 0\n"
      " 251: 0100007F:0001 0100007F:0000 01 00000000:00000000 00:00000000 00000000     0        0 "
      "94897 2 000000004a6f01cf 0\n",
      "raw");
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_EQ(raw->size(), 2u);
  EXPECT_EQ((*raw)[0].state, "unconnected");
  EXPECT_EQ((*raw)[0].local_port, 1u);  // IPPROTO_ICMP
  EXPECT_EQ((*raw)[1].state, "established");
  EXPECT_EQ((*raw)[1].protocol, "raw");
}

TEST(ProcfsFdInfoTest, ParsesOctalFlags) {
  auto flags = ParseFdInfoFlags("pos:\t0\nflags:\t0100002\nmnt_id:\t15\nino:\t42\n");
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(*flags, 0100002u);
  EXPECT_FALSE(ParseFdInfoFlags("pos:\t0\n").ok());
  EXPECT_FALSE(ParseFdInfoFlags("flags:\t0109\n").ok());
  // The widest value an unsigned int holds, and one octal digit's worth past it.
  auto widest = ParseFdInfoFlags("flags:\t37777777777\n");
  ASSERT_TRUE(widest.ok()) << widest.status();
  EXPECT_EQ(*widest, UINT32_MAX);
  EXPECT_FALSE(ParseFdInfoFlags("flags:\t77777777777\n").ok());
  EXPECT_FALSE(ParseFdInfoFlags("flags:\t40000000000\n").ok());
}

TEST(ProcfsCmdlineTest, SplitsAtNulBytes) {
  EXPECT_EQ(SplitCmdline(std::string("python3\0-m\0agent\0", 17)),
            (std::vector<std::string>{"python3", "-m", "agent"}));
  EXPECT_EQ(SplitCmdline(std::string("a\0\0b", 4)), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_TRUE(SplitCmdline("").empty());
  EXPECT_EQ(SplitCmdline("no nul"), (std::vector<std::string>{"no nul"}));
}

TEST(ProcfsPidListTest, ParsesChildren) {
  auto pids = ParsePidList("12 13 4242 ");
  ASSERT_TRUE(pids.ok());
  EXPECT_EQ(*pids, (std::vector<int>{12, 13, 4242}));
  EXPECT_TRUE(ParsePidList("").ok());
  EXPECT_FALSE(ParsePidList("12 x").ok());
}

TEST(ProcfsPrintableTest, EscapesNonPrintableBytes) {
  EXPECT_EQ(Printable("ok /path"), "ok /path");
  EXPECT_EQ(Printable(std::string("a\nb\xff\0c", 6)), "a\\x0ab\\xff\\x00c");
  EXPECT_EQ(Printable("back\\slash"), "back\\\\slash");
}

TEST(ProcfsReadTest, ReadsProcFilesAndNamesThePathOnError) {
  auto self = ReadFile("/proc/self/status");
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_TRUE(ParseStatus(*self).ok());
  auto missing = ReadFile("/proc/999999999/status");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_NE(missing.status().message().find("/proc/999999999/status"), std::string::npos);
  auto link = ReadLink("/proc/self/exe");
  ASSERT_TRUE(link.ok());
  EXPECT_FALSE(link->empty());
}

TEST(ProcfsReadTest, ALongerFileIsAnErrorOrItsPrefix) {
  char tmpl[] = "/tmp/vigil-read-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  const std::string text(100, 'x');
  ASSERT_EQ(write(fd, text.data(), text.size()), 100);
  close(fd);
  EXPECT_EQ(*ReadFile(tmpl, 100), text);  // exactly the limit fits
  EXPECT_TRUE(absl::IsResourceExhausted(ReadFile(tmpl, 99).status()));
  bool truncated = true;
  EXPECT_EQ(*ReadFile(tmpl, 100, &truncated), text);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(*ReadFile(tmpl, 10, &truncated), text.substr(0, 10));
  EXPECT_TRUE(truncated);
  unlink(tmpl);
}

}  // namespace
}  // namespace vigil::node::procfs
