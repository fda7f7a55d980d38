#include "common/http/http_listener.h"

#include <httplib.h>
#include <sys/socket.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vigil {

absl::StatusOr<HostPort> ParseHostPort(const std::string& address, const std::string& what) {
  const size_t colon = address.rfind(':');
  HostPort out;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &out.port) || out.port < 0 || out.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " address \"", address, "\" is not host:port"));
  }
  out.host = address.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(
    std::unique_ptr<httplib::Server> server, const std::string& address, const std::string& what) {
  absl::StatusOr<HostPort> hp = ParseHostPort(address, what);
  if (!hp.ok()) return hp.status();
  std::unique_ptr<HttpListener> self(new HttpListener());
  self->server_ = std::move(server);
  httplib::Server& s = *self->server_;
  // SO_REUSEADDR (a restart may bind while old connections linger) but not cpp-httplib's
  // default SO_REUSEPORT, under which a second process could bind the same port and take
  // a share of the connections.
  s.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (hp->port == 0) {
    self->port_ = s.bind_to_any_port(hp->host);
  } else {
    self->port_ = s.bind_to_port(hp->host, hp->port) ? hp->port : -1;
  }
  if (self->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, " for ", what));
  }
  std::atomic<bool>* exited = &self->exited_;
  self->thread_ = std::thread([&s, exited] {
    s.listen_after_bind();
    exited->store(true);
  });
  // stop() interrupts only a running server: wait until it runs, so destruction right after
  // Start cannot leave the thread blocked in accept.
  while (!s.is_running() && !exited->load()) absl::SleepFor(absl::Milliseconds(1));
  return self;
}

HttpListener::~HttpListener() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace vigil
