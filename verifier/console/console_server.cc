#include "verifier/console/console_server.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/http/server_tls.h"
#include "common/pki.h"
#include "verifier/console/console_assets.h"
#include "verifier/console/console_json.h"

namespace vigil::verifier::console {
namespace {

// The session cookie. "__Host-" makes browsers insist on Secure, Path=/ and no Domain.
constexpr char kCookie[] = "__Host-vigil_session";
constexpr char kJson[] = "application/json; charset=utf-8";
// The sign-in POST must say this: no cross-site form can, and a cross-site script would
// need a CORS preflight the console never grants.
constexpr char kTokenType[] = "application/jwt";

// Content security: the page's own script and style only, nothing inline, never framed.
const httplib::Headers kSecurityHeaders = {
    {"Content-Security-Policy",
     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
     "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
     "frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Cache-Control", "no-store"},
};

int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

// Attacker-influenced text (hostnames, workload names, reasons) may hold invalid UTF-8.
std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void SendJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(Dump(body), kJson);
}

void SendError(httplib::Response& res, int status, const std::string& message) {
  SendJson(res, status, {{"error", message}});
}

int HttpStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 503;
    default:
      return 500;
  }
}

// A failed call's status as an HTTP error with its message.
void SendStatus(httplib::Response& res, const absl::Status& status) {
  SendError(res, HttpStatus(status), std::string(status.message()));
}

// The value of cookie `name` in the Cookie header ("" when absent).
std::string CookieValue(const httplib::Request& req, const std::string& name) {
  const std::string prefix = name + "=";
  for (absl::string_view part : absl::StrSplit(req.get_header_value("Cookie"), ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::StartsWith(part, prefix)) return std::string(part.substr(prefix.size()));
  }
  return "";
}

// The request body without surrounding whitespace (a pasted token often ends in a newline).
std::string_view TrimmedToken(const std::string& body) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(body);
  return std::string_view(trimmed.data(), trimmed.size());
}

nlohmann::json ViewerJson(const Viewer& viewer) {
  nlohmann::json out{{"role", std::string(SpiffeRoleName(viewer.role))},
                     {"name", viewer.name},
                     {"spiffe_id", viewer.spiffe_id}};
  out["expires_ms"] = viewer.expires == absl::InfiniteFuture()
                          ? nlohmann::json(nullptr)
                          : nlohmann::json(absl::ToUnixMillis(viewer.expires));
  out["by"] = viewer.expires == absl::InfiniteFuture() ? "certificate" : "session";
  return out;
}

// "20261206T151000Z" for file names.
std::string FileTime(absl::Time t) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", t, absl::UTCTimeZone());
}

}  // namespace

// The handlers; each asks Authenticate first.
class ConsoleServer::Routes {
 public:
  explicit Routes(ConsoleServer* server) : s_(server) {}

  void Register(httplib::Server& http) {
    http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      // Read-only: GET (and HEAD) everywhere, and the one sign-in POST.
      if (req.method == "GET" || req.method == "HEAD" ||
          (req.method == "POST" && req.path == "/api/session")) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      res.set_header("Allow", "GET, HEAD");
      SendError(res, 405, "the console is read-only");
      return httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) SendError(res, res.status, absl::StrCat("HTTP ", res.status));
    });
    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      ServeAsset("index.html", res);
    });
    http.Get("/assets/([A-Za-z0-9._-]+)", [](const httplib::Request& req, httplib::Response& res) {
      ServeAsset(req.matches[1].str(), res);
    });
    http.Post("/api/session",
              [this](const httplib::Request& req, httplib::Response& res) { SignIn(req, res); });
    http.Get("/api/whoami", [this](const httplib::Request& req, httplib::Response& res) {
      if (std::optional<Viewer> viewer = Authenticate(req, res)) {
        SendJson(res, 200, ViewerJson(*viewer));
      }
    });
    http.Get("/api/nodes", [this](const httplib::Request& req, httplib::Response& res) {
      if (!Authenticate(req, res)) return;
      SendJson(res, 200, FleetJson(s_->fleet_->ListNodes(), NowMillis()));
    });
    http.Get("/api/nodes/([0-9a-f]{64})",
             [this](const httplib::Request& req, httplib::Response& res) {
               if (!Authenticate(req, res)) return;
               NodeDetail(req.matches[1].str(), res);
             });
    http.Get("/api/events", [this](const httplib::Request& req, httplib::Response& res) {
      if (!Authenticate(req, res)) return;
      StreamEvents(req, res);
    });
    http.Get("/api/oscal", [this](const httplib::Request& req, httplib::Response& res) {
      if (!Authenticate(req, res)) return;
      Oscal(req, res);
    });
  }

 private:
  static void ServeAsset(const std::string& name, httplib::Response& res) {
    const Asset* asset = FindAsset(name);
    if (asset == nullptr) {
      SendError(res, 404, "no such file");
      return;
    }
    res.set_content(std::string(asset->contents()), AssetContentType(name));
  }

  // The viewer, from a verified client certificate or a live session; otherwise answers
  // 401/403 and returns nullopt.
  std::optional<Viewer> Authenticate(const httplib::Request& req, httplib::Response& res) {
    if (req.ssl != nullptr) {
      X509* cert = SSL_get0_peer_certificate(req.ssl);
      if (cert != nullptr && SSL_get_verify_result(req.ssl) == X509_V_OK) {
        std::string uri;
        absl::StatusOr<SpiffeId> id = ConsoleReaderIdentity(cert, s_->options_.trust_domain, &uri);
        if (!id.ok()) {
          SendStatus(res, id.status());
          return std::nullopt;
        }
        return Viewer{id->role, id->name, uri, absl::InfiniteFuture()};
      }
    }
    if (std::optional<Viewer> viewer = s_->sessions_.Find(CookieValue(req, kCookie), absl::Now())) {
      return viewer;
    }
    SendError(res, 401,
              "sign in with an operator or auditor client certificate, or a token from "
              "`vigilctl console token`");
    return std::nullopt;
  }

  void SignIn(const httplib::Request& req, httplib::Response& res) {
    if (!absl::StartsWithIgnoreCase(req.get_header_value("Content-Type"), kTokenType)) {
      SendError(res, 415, "send the token as application/jwt");
      return;
    }
    const absl::Time now = absl::Now();
    absl::StatusOr<ConsoleTokenClaims> claims = s_->tokens_.Verify(TrimmedToken(req.body), now);
    if (!claims.ok()) {
      // The reason names what failed, never the token.
      spdlog::warn("console: refused a sign-in from {}: {}", req.remote_addr,
                   std::string(claims.status().message()));
      SendStatus(res, claims.status());
      return;
    }
    absl::StatusOr<Sessions::Opened> session = s_->sessions_.Open(*claims, now);
    if (!session.ok()) {
      spdlog::warn("console: refused a sign-in of {}/{} from {}: {}",
                   std::string(SpiffeRoleName(claims->role)), claims->name, req.remote_addr,
                   std::string(session.status().message()));
      SendStatus(res, session.status());
      return;
    }
    const int64_t max_age =
        std::max<int64_t>(1, absl::ToInt64Seconds(session->viewer.expires - now));
    res.set_header("Set-Cookie", absl::StrCat(kCookie, "=", session->id, "; Path=/; Max-Age=",
                                              max_age, "; Secure; HttpOnly; SameSite=Strict"));
    spdlog::info("console: {}/{} signed in from {} until {}",
                 std::string(SpiffeRoleName(claims->role)), claims->name, req.remote_addr,
                 absl::FormatTime(absl::RFC3339_sec, session->viewer.expires, absl::UTCTimeZone()));
    SendJson(res, 200, ViewerJson(session->viewer));
  }

  void NodeDetail(const std::string& node_id, httplib::Response& res) {
    absl::StatusOr<v1::GetNodeResponse> node = s_->fleet_->GetNode(node_id);
    if (!node.ok()) {
      SendStatus(res, node.status());
      return;
    }
    v1::ListVerdictsRequest query;
    query.set_node_id(node_id);
    query.set_page_size(s_->options_.history_size);
    absl::StatusOr<v1::ListVerdictsResponse> history = s_->fleet_->ListVerdicts(query);
    if (!history.ok()) {
      SendStatus(res, history.status());
      return;
    }
    SendJson(res, 200, NodeDetailJson(*node, *history, NowMillis()));
  }

  void StreamEvents(const httplib::Request& req, httplib::Response& res) {
    absl::StatusOr<std::unique_ptr<Events::Stream>> opened =
        s_->events_.Open(req.get_header_value("Last-Event-ID"));
    if (!opened.ok()) {
      SendError(res, 503, std::string(opened.status().message()));
      return;
    }
    std::shared_ptr<Events::Stream> stream = *std::move(opened);
    const absl::Duration keepalive = s_->options_.keepalive;
    bool greeted = false;
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [stream, keepalive, greeted](size_t, httplib::DataSink& sink) mutable {
          std::string out;
          if (!greeted) {
            // The browser retries after 3 s when the stream drops, with Last-Event-ID.
            out = "retry: 3000\nevent: ready\ndata: {}\n\n";
            greeted = true;
          } else {
            absl::StatusOr<std::vector<v1::VerdictChange>> changes = stream->Next(keepalive);
            if (!changes.ok()) {
              if (changes.status().code() != absl::StatusCode::kOutOfRange) {
                sink.done();  // the console is stopping
                return true;
              }
              // Changes were lost to retention: the page reloads its tables.
              out = absl::StrCat("id: ", stream->cursor(), "\nevent: resync\ndata: {}\n\n");
            } else if (changes->empty()) {
              out = ": keep-alive\n\n";
            }
            for (const v1::VerdictChange& c : *changes) {
              absl::StrAppend(&out, "id: ", c.cursor(),
                              "\nevent: change\ndata: ", Dump(ChangeJson(c)), "\n\n");
            }
          }
          return sink.write(out.data(), out.size());
        },
        [stream](bool) mutable { stream.reset(); });
  }

  void Oscal(const httplib::Request& req, httplib::Response& res) {
    int hours = 24;
    if (req.has_param("hours") &&
        (!absl::SimpleAtoi(req.get_param_value("hours"), &hours) || hours < 1 || hours > 8760)) {
      SendError(res, 400, "hours must be a whole number from 1 to 8760");
      return;
    }
    const absl::Time until = absl::Now();
    v1::ExportAssessmentRequest request;
    request.set_since_unix_nano(absl::ToUnixNanos(until - absl::Hours(hours)));
    request.set_until_unix_nano(absl::ToUnixNanos(until));
    absl::StatusOr<v1::ExportAssessmentResponse> export_result =
        s_->fleet_->ExportAssessment(request);
    if (!export_result.ok()) {
      SendStatus(res, export_result.status());
      return;
    }
    res.set_header("Content-Disposition",
                   absl::StrCat("attachment; filename=\"vigil-assessment-results-", FileTime(until),
                                ".json\""));
    res.set_content(export_result->oscal_json(), kJson);
  }

  ConsoleServer* const s_;
};

ConsoleServer::ConsoleServer(const ConsoleServerOptions& options, ConsoleTokenVerifier tokens,
                             const FleetService* fleet, Store* store)
    : options_(options),
      tokens_(std::move(tokens)),
      fleet_(fleet),
      sessions_(options.sessions),
      events_(store, options.max_streams, /*page_size=*/64) {}

absl::StatusOr<std::unique_ptr<ConsoleServer>> ConsoleServer::Start(
    const ConsoleServerOptions& options, const FleetService* fleet, Store* store) {
  if (absl::StatusOr<HostPort> address = ParseHostPort(options.address, "console listener");
      !address.ok()) {
    return address.status();
  }
  absl::StatusOr<std::string> ca_pem = ReadFileToString(options.client_ca_path);
  if (!ca_pem.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load the console client CA ", options.client_ca_path));
  }
  absl::StatusOr<ConsoleTokenVerifier> tokens =
      ConsoleTokenVerifier::Create(*ca_pem, options.trust_domain);
  if (!tokens.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the console client CA ", options.client_ca_path, ": ", tokens.status().message()));
  }
  std::unique_ptr<ConsoleServer> self(new ConsoleServer(options, *std::move(tokens), fleet, store));
  // A client certificate is asked for, not required: a browser without one signs in with a
  // token.
  absl::StatusOr<std::unique_ptr<httplib::SSLServer>> server = MakeTlsServer(
      TlsListenerFiles{options.cert_path, options.key_path, options.client_ca_path, false},
      "console");
  if (!server.ok()) return server.status();
  // Event streams hold a thread each: room for all of them beside the page's requests.
  const size_t threads = options.max_streams + 8;
  (*server)->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  (*server)->set_default_headers(kSecurityHeaders);
  (*server)->set_payload_max_length(kConsoleTokenMaxBytes);
  (*server)->set_read_timeout(10, 0);
  (*server)->set_write_timeout(10, 0);
  Routes* routes = new Routes(self.get());
  routes->Register(**server);
  self->routes_.reset(routes);
  absl::StatusOr<std::unique_ptr<HttpListener>> listener =
      HttpListener::Start(*std::move(server), options.address, "the web console");
  if (!listener.ok()) return listener.status();
  self->listener_ = *std::move(listener);
  return self;
}

ConsoleServer::~ConsoleServer() {
  // Waiting streams return first, so stopping the listener does not wait on them.
  events_.Close();
  listener_.reset();
}

}  // namespace vigil::verifier::console
