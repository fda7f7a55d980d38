#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace vigil {

/// "host:port" split; "[v6]:port" loses its brackets.
struct HostPort {
  std::string host;
  int port = 0;
};

/// INVALID_ARGUMENT naming `what` (e.g. "metrics") unless `address` is host:port with a port
/// in 0..65535.
absl::StatusOr<HostPort> ParseHostPort(const std::string& address, const std::string& what);

/// Serves a configured cpp-httplib server (plain, or an httplib::SSLServer) on a thread of
/// its own until destroyed.
class HttpListener {
 public:
  /// Binds `address` (port 0 picks one) and starts serving `server`, whose routes are set.
  /// INVALID_ARGUMENT for a malformed address, UNAVAILABLE when it cannot be bound (both name
  /// `what`).
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(
      std::unique_ptr<httplib::Server> server, const std::string& address, const std::string& what);
  /// Stops accepting, finishes the requests being served and joins the thread.
  ~HttpListener();

  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  /// The bound port.
  int port() const { return port_; }

 private:
  HttpListener() = default;

  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::atomic<bool> exited_{false};
  std::thread thread_;
};

}  // namespace vigil
