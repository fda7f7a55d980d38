#pragma once

// HTTP/2 keepalive for Vigil's long-lived gRPC connections: each side pings the other every
// `time` and closes the connection when a ping is not answered within `timeout`, so a peer
// whose network vanished without a FIN or RST (a cable pulled, a frozen host, a dropped NAT
// entry) is noticed within time + timeout instead of at the next TCP retransmission timeout.

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

}  // namespace vigil
