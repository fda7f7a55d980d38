#include "node/privsep/protocol.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "node/privsep/privileged_client.h"
#include "node/privsep/privileged_server.h"

namespace vigil::node::privsep {
namespace {

std::string RawRequest(uint32_t kind, int32_t pid) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &kind, 4);
  std::memcpy(out.data() + 4, &pid, 4);
  return out;
}

struct BadRequest {
  const char* name;
  std::string bytes;
  size_t packet_bytes;
};

class DecodeRequestRefuses : public testing::TestWithParam<BadRequest> {};

TEST_P(DecodeRequestRefuses, Malformed) {
  absl::StatusOr<Request> r = DecodeRequest(GetParam().bytes, GetParam().packet_bytes);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
}

INSTANTIATE_TEST_SUITE_P(
    ProtocolTest, DecodeRequestRefuses,
    testing::Values(BadRequest{"Empty", "", 0}, BadRequest{"Short", std::string(7, '\1'), 7},
                    BadRequest{"Long", RawRequest(1, 5) + "x", 9},
                    // A longer packet the receiver cut to its buffer: the real length counts.
                    BadRequest{"TruncatedLong", RawRequest(1, 5), 4096},
                    BadRequest{"UnknownKind", RawRequest(2, 5), 8},
                    BadRequest{"KindZero", RawRequest(0, 5), 8},
                    BadRequest{"PidZero", RawRequest(1, 0), 8},
                    BadRequest{"PidNegative", RawRequest(1, -1), 8},
                    BadRequest{"PidBeyondPidMax", RawRequest(1, kMaxPid + 1), 8}),
    [](const testing::TestParamInfo<BadRequest>& info) { return info.param.name; });

TEST(ProtocolTest, RequestRoundTrips) {
  std::string bytes = EncodeRequest({.kind = kReadSeccompFilters, .pid = 4242});
  absl::StatusOr<Request> r = DecodeRequest(bytes, bytes.size());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, kReadSeccompFilters);
  EXPECT_EQ(r->pid, 4242);
}

TEST(ProtocolTest, ResponseHeaderRefusesBadCodesAndPartCounts) {
  auto decode = [](uint32_t code, uint32_t parts) {
    std::string b = EncodeResponseHeader({.code = code, .parts = parts});
    return DecodeResponseHeader(b, b.size());
  };
  EXPECT_TRUE(decode(0, 0).ok());
  EXPECT_TRUE(decode(0, kMaxFilters).ok());
  EXPECT_FALSE(decode(0, kMaxFilters + 1).ok());
  EXPECT_TRUE(decode(5, 1).ok());
  EXPECT_FALSE(decode(5, 0).ok());
  EXPECT_FALSE(decode(5, 2).ok());
  EXPECT_FALSE(decode(17, 1).ok());
  std::string b = EncodeResponseHeader({});
  EXPECT_FALSE(DecodeResponseHeader(b, b.size() + 1).ok());
}

TEST(ProtocolTest, FilterPacketsAreWholeInstructionsWithinTheKernelLimit) {
  EXPECT_TRUE(CheckFilterPacket(8).ok());
  EXPECT_TRUE(CheckFilterPacket(kMaxFilterBytes).ok());
  EXPECT_FALSE(CheckFilterPacket(0).ok());
  EXPECT_FALSE(CheckFilterPacket(12).ok());
  EXPECT_FALSE(CheckFilterPacket(kMaxFilterBytes + 8).ok());
}

// A server thread over a real socketpair, reading "filters" from a fake.
class ServerTest : public testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
    client_end_.Reset(fds[0]);
    server_end_.Reset(fds[1]);
    server_ = std::thread([this] {
      exit_code_ = ServeRequests(server_end_.Get(), [this](int pid) {
        asked_.push_back(pid);
        return Reader(pid);
      });
    });
  }
  void TearDown() override {
    client_end_.Reset();
    if (server_.joinable()) server_.join();
    EXPECT_EQ(exit_code_, 0);  // the server ended because the client closed its end
  }

  // The fake: pid 7 has two filters, pid 8 is gone, pid 9 returns a broken filter.
  static absl::StatusOr<std::vector<std::string>> Reader(int pid) {
    if (pid == 7) return std::vector<std::string>{std::string(16, 'a'), std::string(8, 'b')};
    if (pid == 9) return std::vector<std::string>{std::string(5, 'c')};
    return absl::NotFoundError("pid 8: no such process");
  }

  // Sends raw bytes and reads the header (and the error text, if any).
  std::pair<ResponseHeader, std::string> SendRaw(const std::string& bytes) {
    EXPECT_TRUE(SendPacket(client_end_.Get(), bytes).ok());
    absl::StatusOr<Packet> head = ReceivePacket(client_end_.Get(), 64);
    EXPECT_TRUE(head.ok()) << head.status();
    absl::StatusOr<ResponseHeader> h = DecodeResponseHeader(head->bytes, head->length);
    EXPECT_TRUE(h.ok()) << h.status();
    std::string text;
    if (h->code != 0) text = ReceivePacket(client_end_.Get(), kMaxErrorBytes)->bytes;
    return {*h, text};
  }

  UniqueFd client_end_, server_end_;
  std::thread server_;
  int exit_code_ = -1;
  std::vector<int> asked_;
};

TEST_F(ServerTest, RefusesMalformedRequestsWithoutReadingAnything) {
  for (const std::string& bad : {std::string("abc"), RawRequest(1, 7) + "zz", RawRequest(3, 7),
                                 RawRequest(1, 0), RawRequest(1, -7), std::string(100, '\1')}) {
    auto [h, text] = SendRaw(bad);
    EXPECT_EQ(h.code, static_cast<uint32_t>(absl::StatusCode::kInvalidArgument)) << text;
    EXPECT_EQ(h.parts, 1u);
  }
  EXPECT_TRUE(asked_.empty());
  // Still serving after the refusals.
  auto [h, text] = SendRaw(RawRequest(kReadSeccompFilters, 7));
  EXPECT_EQ(h.code, 0u) << text;
  EXPECT_EQ(h.parts, 2u);
  EXPECT_EQ(ReceivePacket(client_end_.Get(), kMaxFilterBytes)->bytes, std::string(16, 'a'));
  EXPECT_EQ(ReceivePacket(client_end_.Get(), kMaxFilterBytes)->bytes, std::string(8, 'b'));
  EXPECT_EQ(asked_, std::vector<int>{7});
}

TEST_F(ServerTest, ClientGetsFiltersAndTheReadersErrors) {
  PrivilegedClient client(std::move(client_end_), 0);
  absl::StatusOr<std::vector<std::string>> f = client.ReadSeccompFilters(7);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*f, (std::vector<std::string>{std::string(16, 'a'), std::string(8, 'b')}));
  absl::StatusOr<std::vector<std::string>> gone = client.ReadSeccompFilters(8);
  EXPECT_TRUE(absl::IsNotFound(gone.status())) << gone.status();
  EXPECT_EQ(gone.status().message(), "pid 8: no such process");
  // A filter that is no whole number of instructions never leaves the server.
  absl::StatusOr<std::vector<std::string>> broken = client.ReadSeccompFilters(9);
  EXPECT_TRUE(absl::IsInvalidArgument(broken.status())) << broken.status();
  // The server refuses a pid no process has.
  EXPECT_TRUE(absl::IsInvalidArgument(client.ReadSeccompFilters(-1).status()));
  EXPECT_TRUE(client.ReadSeccompFilters(7).ok());  // the channel is still in step
}

// recv(2) returns 0 for an empty packet as for a closed channel: the server cannot tell them
// apart and ends, as it does when the main process goes away.
TEST_F(ServerTest, EmptyPacketEndsTheServer) {
  ASSERT_TRUE(SendPacket(client_end_.Get(), "").ok());
  server_.join();
  EXPECT_TRUE(asked_.empty());
}

TEST(PrivilegedClientTest, ClosesTheChannelOnAResponseThatBreaksTheProtocol) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd server(fds[1]);
  std::thread fake([&] {
    (void)ReceivePacket(server.Get(), 64);
    // OK with one part, then a part of 12 bytes: not a whole number of instructions.
    (void)SendPacket(server.Get(), EncodeResponseHeader({.code = 0, .parts = 1}));
    (void)SendPacket(server.Get(), std::string(12, 'x'));
  });
  PrivilegedClient client(UniqueFd(fds[0]), 0);
  absl::StatusOr<std::vector<std::string>> f = client.ReadSeccompFilters(7);
  fake.join();
  EXPECT_TRUE(absl::IsInternal(f.status())) << f.status();
  EXPECT_TRUE(absl::IsUnavailable(client.ReadSeccompFilters(7).status()));
}

}  // namespace
}  // namespace vigil::node::privsep
