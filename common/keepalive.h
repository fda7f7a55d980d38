#pragma once

// HTTP/2 settings of Vigil's long-lived gRPC connections.
//
// Keepalive: each side pings the other every `time` and closes the connection when a ping is
// not answered within `timeout`, so a peer whose network vanished without a FIN or RST (a cable
// pulled, a frozen host, a dropped NAT entry) is noticed within time + timeout instead of at the
// next TCP retransmission timeout. Flow control: a fixed window (ApplyFixedFlowControl).

#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/time/time.h"

namespace vigil {

/// Keepalive settings of one side of a connection.
struct KeepaliveOptions {
  /// Ping the peer this often, whether or not calls are active.
  absl::Duration time = absl::Seconds(10);
  /// Close the connection (failing its calls UNAVAILABLE) when a ping is not acknowledged
  /// within this long. A dead peer is noticed at most time + timeout after it died.
  absl::Duration timeout = absl::Seconds(10);
};

/// Server side: `min_peer_ping_interval` is the shortest interval between a client's pings
/// the server tolerates on a connection that carries no data; a client pinging faster is
/// sent GOAWAY (too_many_pings). It must stay below the clients' keepalive time.
struct ServerKeepaliveOptions {
  KeepaliveOptions keepalive;
  absl::Duration min_peer_ping_interval = absl::Seconds(5);
};

/// Sets the channel arguments of a client that pings per `options`, also on a connection
/// without calls and however long no data was sent.
void ApplyKeepalive(const KeepaliveOptions& options, grpc::ChannelArguments& args);

/// Sets the server arguments: pings per options.keepalive, and accepts the clients' pings as
/// often as options.min_peer_ping_interval.
void ApplyKeepalive(const ServerKeepaliveOptions& options, grpc::ServerBuilder& builder);

/// The HTTP/2 receive window of every stream of Vigil's long-lived connections, fixed.
inline constexpr int kStreamWindowBytes = 1 << 20;

/// Fixed flow control on a connection: each side advertises kStreamWindowBytes per stream
/// instead of having gRPC measure the link's bandwidth-delay product. The measurement sends a
/// ping after each burst a side receives: at one report per interval, a ping and its
/// acknowledgement per report in each direction, each read, answered and timed, on every
/// connection. With a fixed window, the window updates are few too (a side announces more
/// window once half of it is used: every ~100 reports of 5 KB, not after each). A report
/// larger than the window (~1,000 processes) takes one more round trip per MiB. The window is
/// credit, not memory: a stream buffers at most one window of data its reader has not taken.
void ApplyFixedFlowControl(grpc::ChannelArguments& args);
void ApplyFixedFlowControl(grpc::ServerBuilder& builder);

}  // namespace vigil
