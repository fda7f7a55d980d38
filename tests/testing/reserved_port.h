#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace vigil::testing {

/// A TCP port on 127.0.0.1 that stays this object's while it lives: a socket bound to it with
/// SO_REUSEPORT and never listening. The kernel hands the port to no other port-0 bind or
/// outgoing connection, and plain binds fail, but a server that sets SO_REUSEPORT as the
/// same user (gRPC does by default, so vigil-verifier does) can listen on it, stop, and
/// listen on it again. Connections only ever reach that listener.
class ReservedPort {
 public:
  static absl::StatusOr<ReservedPort> Create();
  ReservedPort() = default;
  ReservedPort(ReservedPort&& other) noexcept;
  ReservedPort& operator=(ReservedPort&& other) noexcept;
  ReservedPort(const ReservedPort&) = delete;
  ReservedPort& operator=(const ReservedPort&) = delete;
  ~ReservedPort();

  int port() const { return port_; }
  /// "127.0.0.1:<port>".
  std::string address() const;

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace vigil::testing
