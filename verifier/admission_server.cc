#include "verifier/admission_server.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vigil::verifier {
namespace {

struct HostPort {
  std::string host;
  int port = 0;
};

absl::StatusOr<HostPort> SplitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  HostPort out;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &out.port) || out.port < 0 || out.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("admission listener address \"", address, "\" is not host:port"));
  }
  out.host = address.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  return out;
}

// Loads the certificate, key and client CA into `ctx`: TLS 1.2 at least, the key checked
// against the certificate. Returns what failed, naming the file; "" on success.
std::string SetUpTls(const AdmissionServerOptions& options, SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_path.c_str()) != 1) {
    return absl::StrCat("cannot load the admission certificate ", options.cert_path);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.key_path.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return absl::StrCat("cannot load the admission key ", options.key_path,
                        " (or it does not match ", options.cert_path, ")");
  }
  if (!options.client_ca_path.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.client_ca_path.c_str(), nullptr) != 1) {
      return absl::StrCat("cannot load the admission client CA ", options.client_ca_path);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return "";
}

}  // namespace

AdmissionServer::AdmissionServer(const FleetService* fleet, const AdmissionServerOptions& options)
    : reviewer_(fleet, options.review) {}

absl::StatusOr<std::unique_ptr<AdmissionServer>> AdmissionServer::Start(
    const AdmissionServerOptions& options, const FleetService* fleet) {
  absl::StatusOr<HostPort> address = SplitAddress(options.address);
  if (!address.ok()) return address.status();
  std::unique_ptr<AdmissionServer> self(new AdmissionServer(fleet, options));
  std::string tls_error;
  self->server_ = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
    tls_error = SetUpTls(options, &ctx);
    return tls_error.empty();
  });
  if (!self->server_->is_valid()) {
    return absl::FailedPreconditionError(
        tls_error.empty() ? "cannot create the admission listener's TLS context" : tls_error);
  }
  httplib::SSLServer& server = *self->server_;
  server.set_payload_max_length(options.max_body_bytes);
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  AdmissionReviewer* reviewer = &self->reviewer_;
  server.Post(kPath, [reviewer](const httplib::Request& req, httplib::Response& res) {
    const std::string type = req.get_header_value("Content-Type");
    if (!absl::StartsWithIgnoreCase(type, "application/json")) {
      res.status = 415;
      res.set_content("the AdmissionReview must be sent as application/json\n",
                      "text/plain; charset=utf-8");
      return;
    }
    AdmissionHttpResponse answer = reviewer->Review(req.body, absl::Now());
    if (answer.http_status != 200) {
      spdlog::warn("admission webhook: refused a request from {}: {}", req.remote_addr,
                   answer.body.substr(0, answer.body.find('\n')));
    }
    res.status = answer.http_status;
    res.set_content(std::move(answer.body), answer.content_type);
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain; charset=utf-8");
  });
  if (address->port == 0) {
    self->port_ = server.bind_to_any_port(address->host);
  } else if (server.bind_to_port(address->host, address->port)) {
    self->port_ = address->port;
  } else {
    self->port_ = -1;
  }
  if (self->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address, " for the admission webhook"));
  }
  std::atomic<bool>* exited = &self->listener_exited_;
  self->thread_ = std::thread([&server, exited] {
    server.listen_after_bind();
    exited->store(true);
  });
  // stop() only interrupts a server that is running: wait until it is, so destruction
  // right after Start cannot leave the listener thread blocked.
  while (!server.is_running() && !exited->load()) absl::SleepFor(absl::Milliseconds(1));
  return self;
}

AdmissionServer::~AdmissionServer() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace vigil::verifier
