// The console's HTTPS listener on port 0 over a real SQLite store and FleetService: what it
// serves to whom, with which headers, and what it refuses.

#include "verifier/console/console_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/console_token.h"
#include "common/pki.h"
#include "nlohmann/json.hpp"
#include "tests/verifier/fleet_test_fixture.h"

namespace vigil::verifier::console {
namespace {

class ConsoleServerTest : public FleetFixture {
 protected:
  void SetUp() override {
    FleetFixture::SetUp();
    ASSERT_NO_FATAL_FAILURE(StartConsole(16));
    ASSERT_TRUE(pki_->IssueClient("ann", "auditor").ok());
    ASSERT_TRUE(pki_->IssueClient("k8s", "orchestrator").ok());
  }
  void TearDown() override {
    console_.reset();
    FleetFixture::TearDown();
  }

  void StartConsole(size_t max_streams) {
    console_.reset();
    ConsoleServerOptions options;
    options.address = "127.0.0.1:0";
    options.cert_path = pki_->dir() + "/verifier.crt";
    options.key_path = pki_->dir() + "/verifier.key";
    options.client_ca_path = pki_->dir() + "/ca.crt";
    options.trust_domain = testing::TestPki::kTrustDomain;
    options.max_streams = max_streams;
    options.keepalive = absl::Milliseconds(200);
    absl::StatusOr<std::unique_ptr<ConsoleServer>> console =
        ConsoleServer::Start(options, fleet_.get(), store_.get());
    ASSERT_TRUE(console.ok()) << console.status();
    console_ = *std::move(console);
  }

  // A client that checks the console's certificate against the PKI's CA, presenting the
  // client certificate `client` (a name in the PKI directory) when not empty.
  std::unique_ptr<httplib::SSLClient> Client(const std::string& client = "") {
    std::unique_ptr<httplib::SSLClient> c;
    if (client.empty()) {
      c = std::make_unique<httplib::SSLClient>("127.0.0.1", console_->port());
    } else {
      c = std::make_unique<httplib::SSLClient>("127.0.0.1", console_->port(),
                                               pki_->dir() + "/client-" + client + ".crt",
                                               pki_->dir() + "/client-" + client + ".key");
    }
    c->set_ca_cert_path((pki_->dir() + "/ca.crt").c_str());
    c->enable_server_certificate_verification(true);
    c->set_read_timeout(20, 0);
    return c;
  }

  std::string Token(const std::string& client) {
    absl::StatusOr<std::string> cert = ReadFileToString(pki_->dir() + "/client-" + client + ".crt");
    absl::StatusOr<std::string> key = ReadFileToString(pki_->dir() + "/client-" + client + ".key");
    absl::StatusOr<std::string> token =
        MintConsoleToken(*cert, *key, absl::Minutes(5), absl::Now());
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *token : "";
  }

  // Signs in with a fresh token of `client`; the session cookie ("name=value").
  std::string SignIn(const std::string& client) {
    httplib::Result res = Client()->Post("/api/session", Token(client), "application/jwt");
    EXPECT_TRUE(res && res->status == 200) << (res ? res->body : "no answer");
    if (!res) return "";
    const std::string cookie = res->get_header_value("Set-Cookie");
    return cookie.substr(0, cookie.find(';'));
  }

  std::unique_ptr<ConsoleServer> console_;
};

TEST_F(ConsoleServerTest, ServesThePageWithAStrictPolicyAndNoDataWithoutSignIn) {
  auto c = Client();
  httplib::Result page = c->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  const std::string csp = page->get_header_value("Content-Security-Policy");
  EXPECT_TRUE(absl::StrContains(csp, "default-src 'self'")) << csp;
  EXPECT_TRUE(absl::StrContains(csp, "script-src 'self'")) << csp;
  EXPECT_TRUE(absl::StrContains(csp, "frame-ancestors 'none'")) << csp;
  EXPECT_FALSE(absl::StrContains(csp, "unsafe")) << csp;
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(page->get_header_value("X-Frame-Options"), "DENY");
  // Every script is a file of the console's own; nothing points elsewhere.
  EXPECT_TRUE(absl::StrContains(page->body, "<script src=\"/assets/console.js\""));
  EXPECT_FALSE(absl::StrContains(page->body, "<script>"));
  EXPECT_FALSE(absl::StrContains(page->body, "http://"));
  EXPECT_FALSE(absl::StrContains(page->body, "https://"));
  for (const char* asset : {"console.js", "console.css", "logo.svg"}) {
    httplib::Result res = c->Get(std::string("/assets/") + asset);
    ASSERT_TRUE(res) << asset;
    EXPECT_EQ(res->status, 200) << asset;
    EXPECT_FALSE(res->body.empty()) << asset;
  }
  EXPECT_EQ(c->Get("/assets/console.js")->get_header_value("Content-Type"),
            "text/javascript; charset=utf-8");
  EXPECT_EQ(c->Get("/assets/missing.js")->status, 404);
  for (const char* path :
       {"/api/nodes", "/api/whoami", "/api/events", "/api/oscal",
        "/api/nodes/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    httplib::Result res = c->Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 401) << path;
  }
  // Read-only: no method but GET (and the sign-in POST).
  EXPECT_EQ(c->Delete("/api/nodes")->status, 405);
  EXPECT_EQ(c->Put("/api/nodes", "{}", "application/json")->status, 405);
  EXPECT_EQ(c->Post("/api/nodes", "{}", "application/json")->status, 405);
}

TEST_F(ConsoleServerTest, ATokenSignsInOnceWithAStrictSessionCookie) {
  auto c = Client();
  const std::string token = Token("ann");
  // Not as a form or plain text.
  EXPECT_EQ(c->Post("/api/session", token, "application/x-www-form-urlencoded")->status, 415);
  EXPECT_EQ(c->Post("/api/session", token, "text/plain")->status, 415);

  httplib::Result signed_in = c->Post("/api/session", token + "\n", "application/jwt");
  ASSERT_TRUE(signed_in);
  ASSERT_EQ(signed_in->status, 200) << signed_in->body;
  const std::string cookie = signed_in->get_header_value("Set-Cookie");
  EXPECT_TRUE(absl::StartsWith(cookie, "__Host-vigil_session=")) << cookie;
  for (const char* attribute : {"; Path=/", "; Secure", "; HttpOnly", "; SameSite=Strict"}) {
    EXPECT_TRUE(absl::StrContains(cookie, attribute)) << cookie;
  }
  EXPECT_FALSE(absl::StrContains(cookie, token));
  const nlohmann::json viewer = nlohmann::json::parse(signed_in->body);
  EXPECT_EQ(viewer["role"], "auditor");
  EXPECT_EQ(viewer["name"], "ann");
  EXPECT_EQ(viewer["by"], "session");

  const httplib::Headers session = {{"Cookie", cookie.substr(0, cookie.find(';'))}};
  httplib::Result whoami = c->Get("/api/whoami", session);
  ASSERT_TRUE(whoami);
  EXPECT_EQ(whoami->status, 200);
  EXPECT_EQ(nlohmann::json::parse(whoami->body)["name"], "ann");

  // The same token a second time, a forged cookie, and garbage are refused.
  EXPECT_EQ(c->Post("/api/session", token, "application/jwt")->status, 401);
  EXPECT_EQ(c->Get("/api/whoami", {{"Cookie", "__Host-vigil_session=forged"}})->status, 401);
  httplib::Result garbage = c->Post("/api/session", "not.a.token", "application/jwt");
  EXPECT_EQ(garbage->status, 401);
  EXPECT_TRUE(absl::StrContains(garbage->body, "error"));
  EXPECT_EQ(c->Post("/api/session", std::string(64 << 10, 'a'), "application/jwt")->status, 413);
}

TEST_F(ConsoleServerTest, ClientCertificatesSignInOperatorsAndAuditorsOnly) {
  for (const char* reader : {"operator", "ann"}) {
    httplib::Result res = Client(reader)->Get("/api/whoami");
    ASSERT_TRUE(res) << reader;
    EXPECT_EQ(res->status, 200) << reader << res->body;
    EXPECT_EQ(nlohmann::json::parse(res->body)["by"], "certificate");
  }
  EXPECT_EQ(nlohmann::json::parse(Client("ann")->Get("/api/whoami")->body)["role"], "auditor");
  httplib::Result orchestrator = Client("k8s")->Get("/api/nodes");
  ASSERT_TRUE(orchestrator);
  EXPECT_EQ(orchestrator->status, 403);
}

TEST_F(ConsoleServerTest, TheJsonFollowsTheStoredVerdicts) {
  const absl::Time t0 = absl::Now() - absl::Minutes(5);
  const std::string a = FleetNodeId('a');
  const std::string b = FleetNodeId('b');
  ASSERT_NO_FATAL_FAILURE(Record(
      a, FleetVerdict(a, v1::TRUST_AFFIRMING, t0, {{"agent", v1::TRUST_AFFIRMING}}), "alpha"));
  ASSERT_NO_FATAL_FAILURE(Record(a,
                                 FleetVerdict(a, v1::TRUST_CONTRAINDICATED, t0 + absl::Minutes(1),
                                              {{"agent", v1::TRUST_CONTRAINDICATED}}),
                                 "alpha"));
  ASSERT_NO_FATAL_FAILURE(
      Record(b, FleetVerdict(b, v1::TRUST_AFFIRMING, t0), "<img src=x onerror=alert(1)>"));
  auto c = Client("operator");

  httplib::Result fleet = c->Get("/api/nodes");
  ASSERT_TRUE(fleet);
  ASSERT_EQ(fleet->status, 200) << fleet->body;
  const nlohmann::json nodes = nlohmann::json::parse(fleet->body)["nodes"];
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0]["node_id"], a);
  EXPECT_EQ(nodes[0]["hostname"], "alpha");
  EXPECT_EQ(nodes[0]["status"], "contraindicated");
  ASSERT_EQ(nodes[0]["failing"].size(), 1u);
  EXPECT_EQ(nodes[0]["failing"][0]["rule"], "seccomp-denies-ptrace");
  EXPECT_EQ(nodes[0]["failing"][0]["workload"], "agent");
  EXPECT_EQ(nodes[0]["failing"][0]["controls"],
            nlohmann::json({"NIST-800-53r5:AC-6(10)", "SOC2:CC6.1"}));
  EXPECT_EQ(nodes[0]["workloads"][0]["status"], "contraindicated");
  EXPECT_EQ(nodes[1]["status"], "affirming");
  // Text from nodes is data: served as a JSON string, for the page to set as text.
  EXPECT_EQ(nodes[1]["hostname"], "<img src=x onerror=alert(1)>");

  httplib::Result detail = c->Get("/api/nodes/" + a);
  ASSERT_TRUE(detail);
  ASSERT_EQ(detail->status, 200) << detail->body;
  const nlohmann::json history = nlohmann::json::parse(detail->body)["history"];
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0]["status"], "contraindicated");
  EXPECT_EQ(history[1]["status"], "affirming");
  EXPECT_EQ(history[1]["appraised_ms"], absl::ToUnixMillis(t0));
  EXPECT_EQ(c->Get("/api/nodes/" + FleetNodeId('c'))->status, 404);

  httplib::Result oscal = c->Get("/api/oscal?hours=1");
  ASSERT_TRUE(oscal);
  ASSERT_EQ(oscal->status, 200) << oscal->body;
  EXPECT_TRUE(absl::StartsWith(oscal->get_header_value("Content-Disposition"), "attachment;"));
  const nlohmann::json document = nlohmann::json::parse(oscal->body);
  EXPECT_TRUE(document.contains("assessment-results"));
  EXPECT_TRUE(absl::StrContains(oscal->body, a));
  EXPECT_EQ(c->Get("/api/oscal?hours=0")->status, 400);
  EXPECT_EQ(c->Get("/api/oscal?hours=x")->status, 400);
}

TEST_F(ConsoleServerTest, TheEventStreamSendsStatusChangesAndIsBounded) {
  ASSERT_NO_FATAL_FAILURE(StartConsole(1));
  const std::string cookie = SignIn("ann");
  const std::string node = FleetNodeId('d');
  std::atomic<bool> ready{false};
  std::string received;
  std::thread reader([&] {
    auto c = Client();
    c->Get("/api/events", {{"Cookie", cookie}}, [&](const char* data, size_t size) {
      received.append(data, size);
      if (absl::StrContains(received, "event: ready")) ready = true;
      // Read until the change arrives.
      return !absl::StrContains(received, "event: change");
    });
  });
  for (int i = 0; i < 2000 && !ready; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(ready);

  // A second stream is refused while the first is open.
  httplib::Result second = Client()->Get("/api/events", {{"Cookie", cookie}});
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 503);

  ASSERT_NO_FATAL_FAILURE(Record(node, FleetVerdict(node, v1::TRUST_WARNING, absl::Now())));
  reader.join();
  const size_t data = received.find("event: change\ndata: ");
  ASSERT_NE(data, std::string::npos) << received;
  const std::string line = received.substr(data + 20, received.find('\n', data + 20) - data - 20);
  const nlohmann::json change = nlohmann::json::parse(line);
  EXPECT_EQ(change["node_id"], node);
  EXPECT_EQ(change["status"], "warning");
  EXPECT_EQ(change["previous"], "unknown");
  // Each change carries its cursor as the event id, for the browser's resume.
  EXPECT_TRUE(absl::StrContains(received.substr(0, data), "id: ")) << received;
}

}  // namespace
}  // namespace vigil::verifier::console
