// Decoding of raw ring-buffer records into RuntimeEvent, including refusal of malformed ones.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include "bpf/events.h"
#include "node/probes/event_decoder.h"

namespace vigil::node {
namespace {

vigil_event BaseEvent(uint32_t kind) {
  vigil_event e;
  std::memset(&e, 0, sizeof(e));
  e.boot_ns = 1000;
  e.kind = kind;
  e.pid = 10;
  e.tid = 11;
  e.ppid = 1;
  e.uid = 1000;
  e.ret = -13;
  e.target_pid = 42;
  for (int i = 0; i < 6; ++i) e.args[i] = 100 + i;
  std::memcpy(e.comm, "agent", 5);
  return e;
}

std::string_view Bytes(const vigil_event& e) {
  return std::string_view(reinterpret_cast<const char*>(&e), sizeof(e));
}

TEST(EventDecoderTest, DecodesCommonFieldsAndAddsWallClockOffset) {
  vigil_event e = BaseEvent(VIGIL_EV_PTRACE);
  auto out = DecodeEvent(Bytes(e), 5000);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->kind(), v1::EVENT_KIND_PTRACE);
  EXPECT_EQ(out->time_unix_nano(), 6000);
  EXPECT_EQ(out->pid(), 10);
  EXPECT_EQ(out->tid(), 11);
  EXPECT_EQ(out->ppid(), 1);
  EXPECT_EQ(out->uid(), 1000u);
  EXPECT_EQ(out->comm(), "agent");
  EXPECT_EQ(out->return_value(), -13);
  EXPECT_EQ(out->target_pid(), 42);
  ASSERT_EQ(out->args_size(), 6);
  EXPECT_EQ(out->args(5), 105u);
  EXPECT_TRUE(out->path().empty());
}

TEST(EventDecoderTest, DecodesIpv6AndAbstractUnixAddresses) {
  vigil_event e = BaseEvent(VIGIL_EV_CONNECT);
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(8443);
  inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
  std::memcpy(e.data, &sin6, sizeof(sin6));
  e.data_len = sizeof(sin6);
  e.data_kind = VIGIL_DATA_SOCKADDR;
  auto v6 = DecodeEvent(Bytes(e), 0);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->address(), "2001:db8::7");
  EXPECT_EQ(v6->port(), 8443u);

  vigil_event u = BaseEvent(VIGIL_EV_BIND);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path + 1, "agent.sock", 10);
  std::memcpy(u.data, &un, sizeof(un));
  u.data_len = offsetof(sockaddr_un, sun_path) + 11;
  u.data_kind = VIGIL_DATA_SOCKADDR;
  auto ux = DecodeEvent(Bytes(u), 0);
  ASSERT_TRUE(ux.ok());
  EXPECT_EQ(ux->path(), "@agent.sock");
}

TEST(EventDecoderTest, UnterminatedStringIsBoundedByTheRecord) {
  vigil_event e = BaseEvent(VIGIL_EV_MEMFD_CREATE);
  std::memset(e.data, 'a', sizeof(e.data));
  e.data_len = 100000;  // lies about its length
  e.data_kind = VIGIL_DATA_STRING;
  auto out = DecodeEvent(Bytes(e), 0);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->path(), std::string(VIGIL_DATA_LEN, 'a'));
}

// A workload controls its comm, exec paths and socket names. Raw bytes that are not UTF-8
// would make the report carrying the event unparseable at the verifier (proto3 strings must
// be UTF-8), so they are escaped as \xNN exactly like the snapshot's strings.
TEST(EventDecoderTest, WorkloadControlledStringsAreEscapedAndTheEventStaysParseable) {
  vigil_event e = BaseEvent(VIGIL_EV_EXECVE);
  std::memset(e.comm, 0, sizeof(e.comm));
  std::memcpy(e.comm, "x\xff\ny", 4);
  const char path[] = "/tmp/a\xc3(\\";
  std::memcpy(e.data, path, sizeof(path));
  e.data_len = sizeof(path);
  e.data_kind = VIGIL_DATA_STRING;
  auto out = DecodeEvent(Bytes(e), 0);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->comm(), "x\\xff\\x0ay");
  EXPECT_EQ(out->path(), "/tmp/a\\xc3(\\\\");
  v1::RuntimeEvent parsed;
  ASSERT_TRUE(parsed.ParseFromString(out->SerializeAsString()));
  EXPECT_EQ(parsed.comm(), out->comm());

  vigil_event u = BaseEvent(VIGIL_EV_CONNECT);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path + 1, "s\xfe\0k", 4);  // abstract: every byte after the NUL
  std::memcpy(u.data, &un, sizeof(un));
  u.data_len = offsetof(sockaddr_un, sun_path) + 5;
  u.data_kind = VIGIL_DATA_SOCKADDR;
  auto ux = DecodeEvent(Bytes(u), 0);
  ASSERT_TRUE(ux.ok());
  EXPECT_EQ(ux->path(), "@s\\xfe\\x00k");
  ASSERT_TRUE(parsed.ParseFromString(ux->SerializeAsString()));
}

TEST(EventDecoderTest, RefusesTimesOutOfRange) {
  vigil_event e = BaseEvent(VIGIL_EV_PTRACE);
  e.boot_ns = 0x7ffffffffffffffeULL;  // fits in int64 alone, not with the offset added
  EXPECT_EQ(DecodeEvent(Bytes(e), 1796515200000000000LL).status().code(),
            absl::StatusCode::kInvalidArgument);
  e.boot_ns = 0x8000000000000000ULL;  // past int64
  EXPECT_EQ(DecodeEvent(Bytes(e), 0).status().code(), absl::StatusCode::kInvalidArgument);
  e.boot_ns = 1000;
  auto out = DecodeEvent(Bytes(e), -1000);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->time_unix_nano(), 0);
}

TEST(EventDecoderTest, RefusesRecordsOfWrongSizeOrUnknownKind) {
  vigil_event e = BaseEvent(VIGIL_EV_PTRACE);
  EXPECT_FALSE(DecodeEvent(Bytes(e).substr(0, sizeof(e) - 1), 0).ok());
  EXPECT_FALSE(DecodeEvent(std::string(sizeof(e) + 8, '\0'), 0).ok());
  e.kind = 0;
  EXPECT_FALSE(DecodeEvent(Bytes(e), 0).ok());
  e.kind = 9999;
  EXPECT_FALSE(DecodeEvent(Bytes(e), 0).ok());
}

TEST(EventDecoderTest, FormatsAReadableLine) {
  vigil_event e = BaseEvent(VIGIL_EV_PTRACE);
  auto out = DecodeEvent(Bytes(e), 0);
  ASSERT_TRUE(out.ok());
  std::string line = FormatEvent(*out);
  EXPECT_NE(line.find("PTRACE pid=10 tid=11"), std::string::npos) << line;
  EXPECT_NE(line.find("ret=-13 target=42"), std::string::npos) << line;
}

}  // namespace
}  // namespace vigil::node
