#include "node/privsep/protocol.h"

#include <errno.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vigil::node::privsep {
namespace {

template <typename T>
std::string Pack(const T& value) {
  std::string out(sizeof(T), '\0');
  std::memcpy(out.data(), &value, sizeof(T));
  return out;
}

absl::Status CheckSize(absl::string_view what, absl::string_view bytes, size_t packet_bytes,
                       size_t expected) {
  if (packet_bytes != expected || bytes.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " of ", packet_bytes, " bytes (expected ", expected, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeRequest(const Request& request) {
  static_assert(sizeof(Request) == kRequestBytes);
  return Pack(request);
}

absl::StatusOr<Request> DecodeRequest(absl::string_view bytes, size_t packet_bytes) {
  if (absl::Status s = CheckSize("request", bytes, packet_bytes, kRequestBytes); !s.ok()) return s;
  Request r;
  std::memcpy(&r, bytes.data(), sizeof(r));
  if (r.kind != kReadSeccompFilters) {
    return absl::InvalidArgumentError(absl::StrCat("unknown request kind ", r.kind));
  }
  if (r.pid <= 0 || r.pid > kMaxPid) {
    return absl::InvalidArgumentError(absl::StrCat("bad pid ", r.pid));
  }
  return r;
}

std::string EncodeResponseHeader(const ResponseHeader& header) {
  static_assert(sizeof(ResponseHeader) == kResponseHeaderBytes);
  return Pack(header);
}

absl::StatusOr<ResponseHeader> DecodeResponseHeader(absl::string_view bytes, size_t packet_bytes) {
  if (absl::Status s = CheckSize("response header", bytes, packet_bytes, kResponseHeaderBytes);
      !s.ok()) {
    return s;
  }
  ResponseHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.code > static_cast<uint32_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::InvalidArgumentError(absl::StrCat("response code ", h.code));
  }
  if (h.code == 0 ? h.parts > kMaxFilters : h.parts != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("response of code ", h.code, " with ", h.parts, " parts"));
  }
  return h;
}

absl::Status CheckFilterPacket(size_t packet_bytes) {
  if (packet_bytes == 0 || packet_bytes % 8 != 0 || packet_bytes > kMaxFilterBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter of ", packet_bytes, " bytes (expected 8 to ", kMaxFilterBytes, " in steps of 8)"));
  }
  return absl::OkStatus();
}

absl::Status SendPacket(int fd, absl::string_view bytes) {
  for (;;) {
    ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(bytes.size())) return absl::OkStatus();
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "send to the node's other process");
    return absl::InternalError("short send to the node's other process");
  }
}

absl::StatusOr<Packet> ReceivePacket(int fd, size_t max_bytes) {
  Packet p;
  p.bytes.resize(max_bytes);
  for (;;) {
    // MSG_TRUNC: the packet's real length, even when it is longer than the buffer.
    ssize_t n = recv(fd, p.bytes.data(), p.bytes.size(), MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "receive from the node's other process");
    if (n == 0 && max_bytes > 0) {
      return absl::UnavailableError("the node's other process closed the channel");
    }
    p.length = static_cast<size_t>(n);
    p.bytes.resize(std::min(p.length, max_bytes));
    return p;
  }
}

}  // namespace vigil::node::privsep
