#pragma once

// The fixed-format protocol between vigil-node's main process and its privileged process,
// over an AF_UNIX SOCK_SEQPACKET socketpair (one message per packet, host byte order).
//
// Request (exactly kRequestBytes): uint32 kind, int32 pid.
// Response: a header packet (exactly kResponseHeaderBytes: uint32 code, uint32 parts), then
// `parts` packets. code 0 (OK): one packet per seccomp filter, most recently installed
// first, each a whole number of 8-byte cBPF instructions (1 to kMaxFilterInstructions).
// Any other code is an absl::StatusCode and is followed by exactly one packet, the error
// text (at most kMaxErrorBytes).

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vigil::node::privsep {

/// The one request kind: read the seccomp filters of `pid`.
inline constexpr uint32_t kReadSeccompFilters = 1;

inline constexpr size_t kRequestBytes = 8;
inline constexpr size_t kResponseHeaderBytes = 8;
/// BPF_MAXINSNS: the kernel's limit for one classic-BPF filter.
inline constexpr size_t kMaxFilterInstructions = 4096;
inline constexpr size_t kMaxFilterBytes = kMaxFilterInstructions * 8;
/// More filters than the kernel's per-task instruction budget (32768, +4 per filter) lets a
/// task stack.
inline constexpr uint32_t kMaxFilters = 8192;
inline constexpr size_t kMaxErrorBytes = 1024;
/// PID_MAX_LIMIT on 64-bit kernels.
inline constexpr int32_t kMaxPid = 4194304;

struct Request {
  uint32_t kind = 0;
  int32_t pid = 0;
};

struct ResponseHeader {
  uint32_t code = 0;
  uint32_t parts = 0;
};

std::string EncodeRequest(const Request& request);

/// Refuses a packet of any size but kRequestBytes, an unknown kind, and a pid outside
/// 1..kMaxPid. `packet_bytes` is the packet's real length (recv with MSG_TRUNC), which may
/// exceed what `bytes` holds.
absl::StatusOr<Request> DecodeRequest(absl::string_view bytes, size_t packet_bytes);

std::string EncodeResponseHeader(const ResponseHeader& header);

/// Refuses a header of the wrong size, a code that is no absl::StatusCode, more than
/// kMaxFilters parts for OK and anything but one part for an error.
absl::StatusOr<ResponseHeader> DecodeResponseHeader(absl::string_view bytes, size_t packet_bytes);

/// Whether a filter packet is 1 to kMaxFilterInstructions whole instructions.
absl::Status CheckFilterPacket(size_t packet_bytes);

/// One received packet: its first bytes (at most what the receiver asked for) and its real
/// length.
struct Packet {
  std::string bytes;
  size_t length = 0;
};

/// Sends `bytes` as one packet (MSG_NOSIGNAL).
absl::Status SendPacket(int fd, absl::string_view bytes);

/// Receives one packet, keeping at most `max_bytes` of it. Unavailable when the peer closed
/// its end.
absl::StatusOr<Packet> ReceivePacket(int fd, size_t max_bytes);

}  // namespace vigil::node::privsep
