#include "verifier/results/webhook_notifier.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/hmac.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/digest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/pki_fixture.h"
#include "tests/verifier/store/store_test_util.h"
#include "verifier/store/sqlite_store.h"
#include "verifier/webhook_feed.h"

namespace vigil::verifier {
namespace {

// How long a test waits for something the notifier does in the background before it gives
// up (a bound against hanging, not a speed requirement).
constexpr absl::Duration kPatience = absl::Seconds(60);

v1::VerdictChange Change(const std::string& node, v1::TrustStatus status) {
  v1::VerdictChange c;
  c.set_cursor("c-" + node);
  c.set_node_id(node);
  c.set_previous_status(v1::TRUST_AFFIRMING);
  c.set_status(status);
  c.mutable_verdict()->set_node_id(node);
  c.mutable_verdict()->set_status(status);
  c.mutable_verdict()->set_ear_token("header.claims.signature-of-" + node);
  return c;
}

// What an orchestrator does with a delivery: recompute the HMAC and compare it in constant
// time.
bool SignatureValid(const std::string& secret, const httplib::Request& req) {
  if (!req.has_header("X-Vigil-Signature")) return false;
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(req.body.data()), req.body.size(), mac, &len);
  std::string expected = "sha256=" + HexEncode(std::string_view(reinterpret_cast<char*>(mac), len));
  return ConstantTimeEquals(req.get_header_value("X-Vigil-Signature"), expected);
}

// An HTTP(S) server on 127.0.0.1 that records what it is sent.
class Receiver {
 public:
  struct Delivery {
    std::string path;
    std::string body;
    std::string content_type;
    bool signature_valid = false;
  };

  explicit Receiver(std::unique_ptr<httplib::Server> server, std::string secret = "")
      : server_(std::move(server)), secret_(std::move(secret)) {
    server_->Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      if (hang_ != nullptr) {
        if (!started_.HasBeenNotified()) started_.Notify();
        hang_->WaitForNotification();
      }
      absl::MutexLock lock(&mu_);
      ++requests_;
      if (status_ >= 300) {
        res.status = status_;
        return;
      }
      deliveries_.push_back(
          {req.path, req.body, req.get_header_value("Content-Type"), SignatureValid(secret_, req)});
      res.status = 204;
    });
  }
  ~Receiver() { Stop(); }

  /// Listens on `port` (0: any free port) and returns the port.
  int Start(int port = 0) {
    int bound = port == 0 ? server_->bind_to_any_port("127.0.0.1")
                          : (server_->bind_to_port("127.0.0.1", port) ? port : -1);
    EXPECT_GT(bound, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return bound;
  }
  void Stop() {
    if (thread_.joinable()) {
      server_->stop();
      thread_.join();
    }
  }

  void FailWith(int status) {
    absl::MutexLock lock(&mu_);
    status_ = status;
  }
  /// Makes every request wait for `release`; started() fires when the first one arrives.
  void HangUntil(absl::Notification* release) { hang_ = release; }
  absl::Notification& started() { return started_; }

  bool WaitForDeliveries(size_t n) {
    absl::MutexLock lock(&mu_);
    want_ = static_cast<int>(n);
    return mu_.AwaitWithTimeout(
        absl::Condition(
            +[](Receiver* r) { return static_cast<int>(r->deliveries_.size()) >= r->want_; }, this),
        kPatience);
  }
  bool WaitForRequests(int n) {
    absl::MutexLock lock(&mu_);
    want_ = n;
    return mu_.AwaitWithTimeout(absl::Condition(
                                    +[](Receiver* r) { return r->requests_ >= r->want_; }, this),
                                kPatience);
  }
  std::vector<Delivery> deliveries() {
    absl::MutexLock lock(&mu_);
    return deliveries_;
  }

 private:
  std::unique_ptr<httplib::Server> server_;
  const std::string secret_;
  std::thread thread_;
  absl::Notification* hang_ = nullptr;
  absl::Notification started_;
  absl::Mutex mu_;
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  int requests_ ABSL_GUARDED_BY(mu_) = 0;
  int want_ ABSL_GUARDED_BY(mu_) = 0;
  int status_ ABSL_GUARDED_BY(mu_) = 204;
};

WebhookConfig FastRetries(std::vector<WebhookTarget> targets) {
  WebhookConfig config;
  config.targets = std::move(targets);
  config.initial_backoff = absl::Milliseconds(20);
  config.max_backoff = absl::Milliseconds(200);
  config.max_attempts = 1000;
  config.timeout = kPatience;
  return config;
}

// Polls `done` until it holds or kPatience passes.
bool Eventually(const std::function<bool()>& done) {
  absl::Time deadline = absl::Now() + kPatience;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

TEST(WebhookBodyTest, CarriesTheChangeAsProtoJsonAndTheToken) {
  auto body = WebhookBody(Change("node-1", v1::TRUST_CONTRAINDICATED));
  ASSERT_TRUE(body.ok()) << body.status();
  nlohmann::json j = nlohmann::json::parse(*body);
  EXPECT_EQ(j["verdict_change"]["node_id"], "node-1");
  EXPECT_EQ(j["verdict_change"]["status"], "TRUST_CONTRAINDICATED");
  EXPECT_EQ(j["verdict_change"]["previous_status"], "TRUST_AFFIRMING");
  EXPECT_EQ(j["ear_token"], "header.claims.signature-of-node-1");
}

TEST(WebhookSignatureTest, IsHmacSha256OfTheBodyInHex) {
  // RFC 4231 test case 2.
  EXPECT_EQ(WebhookSignature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WebhookNotifierTest, DeliversWithACorrectSignature) {
  Receiver receiver(std::make_unique<httplib::Server>(), "s3cret");
  int port = receiver.Start();
  auto notifier = WebhookNotifier::Create(
      FastRetries({{absl::StrCat("http://127.0.0.1:", port, "/hooks/vigil?team=a"), "s3cret"}}));
  ASSERT_TRUE(notifier.ok()) << notifier.status();
  (*notifier)->Notify(Change("node-1", v1::TRUST_WARNING));
  ASSERT_TRUE(receiver.WaitForDeliveries(1));
  auto got = receiver.deliveries();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/hooks/vigil");
  EXPECT_EQ(got[0].content_type, "application/json");
  EXPECT_TRUE(got[0].signature_valid);
  EXPECT_EQ(nlohmann::json::parse(got[0].body)["verdict_change"]["node_id"], "node-1");
  EXPECT_TRUE(Eventually([&] { return (*notifier)->stats(0).delivered == 1; }));
}

TEST(WebhookNotifierTest, AWrongSecretFailsTheReceiversCheck) {
  Receiver receiver(std::make_unique<httplib::Server>(), "s3cret");
  int port = receiver.Start();
  auto notifier = WebhookNotifier::Create(
      FastRetries({{absl::StrCat("http://127.0.0.1:", port, "/"), "other"}}));
  ASSERT_TRUE(notifier.ok()) << notifier.status();
  (*notifier)->Notify(Change("node-1", v1::TRUST_WARNING));
  ASSERT_TRUE(receiver.WaitForDeliveries(1));
  EXPECT_FALSE(receiver.deliveries()[0].signature_valid);
}

TEST(WebhookNotifierTest, RetriesUntilATargetThatWasDownComesUp) {
  // Find a free port, then leave nothing listening on it.
  int port = 0;
  {
    Receiver probe(std::make_unique<httplib::Server>());
    port = probe.Start();
  }
  auto notifier =
      WebhookNotifier::Create(FastRetries({{absl::StrCat("http://127.0.0.1:", port, "/"), "k"}}));
  ASSERT_TRUE(notifier.ok()) << notifier.status();
  (*notifier)->Notify(Change("node-2", v1::TRUST_CONTRAINDICATED));
  ASSERT_TRUE(Eventually([&] { return (*notifier)->stats(0).failed_attempts >= 2; }));
  EXPECT_EQ((*notifier)->stats(0).delivered, 0u);

  Receiver receiver(std::make_unique<httplib::Server>(), "k");
  ASSERT_EQ(receiver.Start(port), port);
  ASSERT_TRUE(receiver.WaitForDeliveries(1));
  EXPECT_TRUE(receiver.deliveries()[0].signature_valid);
  EXPECT_EQ(nlohmann::json::parse(receiver.deliveries()[0].body)["verdict_change"]["node_id"],
            "node-2");
  EXPECT_TRUE(Eventually([&] { return (*notifier)->stats(0).delivered == 1; }));
  EXPECT_EQ((*notifier)->stats(0).abandoned, 0u);
}

TEST(WebhookNotifierTest, GivesUpAfterMaxAttemptsAndCountsEachFailure) {
  Receiver receiver(std::make_unique<httplib::Server>());
  receiver.FailWith(503);
  int port = receiver.Start();
  WebhookConfig config = FastRetries({{absl::StrCat("http://127.0.0.1:", port, "/"), ""}});
  config.max_attempts = 3;
  auto notifier = WebhookNotifier::Create(config);
  ASSERT_TRUE(notifier.ok()) << notifier.status();
  (*notifier)->Notify(Change("node-3", v1::TRUST_WARNING));
  ASSERT_TRUE(Eventually([&] { return (*notifier)->stats(0).abandoned == 1; }));
  WebhookStats stats = (*notifier)->stats(0);
  EXPECT_EQ(stats.failed_attempts, 3u);
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_TRUE(receiver.WaitForRequests(3));
}

TEST(WebhookNotifierTest, NotifyReturnsAtOnceWhileTheTargetHangsAndDropsTheOldest) {
  absl::Notification release;
  Receiver receiver(std::make_unique<httplib::Server>());
  receiver.HangUntil(&release);
  int port = receiver.Start();
  WebhookConfig config = FastRetries({{absl::StrCat("http://127.0.0.1:", port, "/"), ""}});
  config.queue_capacity = 2;
  auto notifier = WebhookNotifier::Create(config);
  ASSERT_TRUE(notifier.ok()) << notifier.status();

  (*notifier)->Notify(Change("first", v1::TRUST_WARNING));
  receiver.started().WaitForNotification();
  // The target holds the first delivery; these calls return although nothing can be sent
  // (were Notify to wait for the target, this test would never reach `release`).
  for (const char* node : {"n2", "n3", "n4", "n5", "n6"}) {
    (*notifier)->Notify(Change(node, v1::TRUST_WARNING));
  }
  EXPECT_EQ((*notifier)->stats(0).dropped, 3u);
  EXPECT_EQ((*notifier)->stats(0).delivered, 0u);
  release.Notify();

  ASSERT_TRUE(receiver.WaitForDeliveries(3));
  std::vector<std::string> nodes;
  for (const auto& d : receiver.deliveries()) {
    nodes.push_back(nlohmann::json::parse(d.body)["verdict_change"]["node_id"]);
  }
  EXPECT_EQ(nodes, (std::vector<std::string>{"first", "n5", "n6"}));
}

TEST(WebhookNotifierTest, DeliversOverHttpsToACertificateFromTheConfiguredCa) {
  auto pki = vigil::testing::TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  std::string dir = (*pki)->dir();
  Receiver receiver(std::make_unique<httplib::SSLServer>((dir + "/verifier.crt").c_str(),
                                                         (dir + "/verifier.key").c_str()),
                    "tls-secret");
  int port = receiver.Start();
  WebhookConfig config =
      FastRetries({{absl::StrCat("https://127.0.0.1:", port, "/v"), "tls-secret"}});
  config.ca_file = dir + "/ca.crt";
  auto notifier = WebhookNotifier::Create(config);
  ASSERT_TRUE(notifier.ok()) << notifier.status();
  (*notifier)->Notify(Change("node-tls", v1::TRUST_AFFIRMING));
  ASSERT_TRUE(receiver.WaitForDeliveries(1));
  EXPECT_TRUE(receiver.deliveries()[0].signature_valid);
}

TEST(WebhookNotifierTest, RefusesAnHttpsTargetWhoseCertificateItCannotVerify) {
  auto pki = vigil::testing::TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  std::string dir = (*pki)->dir();
  Receiver receiver(std::make_unique<httplib::SSLServer>((dir + "/verifier.crt").c_str(),
                                                         (dir + "/verifier.key").c_str()));
  int port = receiver.Start();
  // No CA file: the system's CAs do not know the test CA.
  auto notifier =
      WebhookNotifier::Create(FastRetries({{absl::StrCat("https://127.0.0.1:", port, "/"), ""}}));
  ASSERT_TRUE(notifier.ok()) << notifier.status();
  (*notifier)->Notify(Change("node-tls", v1::TRUST_AFFIRMING));
  ASSERT_TRUE(Eventually([&] { return (*notifier)->stats(0).failed_attempts >= 2; }));
  EXPECT_EQ((*notifier)->stats(0).delivered, 0u);
  EXPECT_TRUE(receiver.deliveries().empty());
}

TEST(WebhookNotifierTest, RefusesBadUrlsAtConfiguration) {
  for (const char* url :
       {"", "ftp://example.com/", "example.com/hook", "http://", "http:///path",
        "http://user:hunter2@example.com/", "http://example.com:0/", "http://example.com:65536/",
        "http://example.com:x/", "http://exa mple.com/", "https://example.com/a#frag",
        "http://example.com/a b"}) {
    WebhookConfig config;
    config.targets = {{"http://ok.example/", ""}, {url, "hunter2"}};
    auto notifier = WebhookNotifier::Create(config);
    ASSERT_FALSE(notifier.ok()) << url;
    EXPECT_EQ(notifier.status().code(), absl::StatusCode::kInvalidArgument) << url;
    std::string message(notifier.status().message());
    EXPECT_NE(message.find("webhook target #2"), std::string::npos) << message;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  }
  WebhookConfig good;
  good.targets = {{"http://127.0.0.1:8080/hook?x=1", ""},
                  {"https://hooks.example.com/vigil", "k"},
                  {"http://[::1]:9000/", ""}};
  EXPECT_TRUE(WebhookNotifier::Create(good).ok());
}

// The verifier's feed: every status change the store commits after the feed started reaches
// the webhook once, in order; a verdict that changes nothing posts nothing, and changes
// committed before the feed started are not replayed.
TEST(WebhookFeedTest, PostsEveryCommittedStatusChangeOnceInOrder) {
  testing::TempDir dir;
  auto store = SqliteStore::Open(dir.path() + "/v.db");
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string node(64, 'a');
  ASSERT_TRUE(
      testing::RecordDurably(**store, node, testing::MakeVerdict(node, v1::TRUST_AFFIRMING, 1))
          .ok());

  Receiver receiver(std::make_unique<httplib::Server>(), "s3cret");
  int port = receiver.Start();
  WebhookConfig config =
      FastRetries({{absl::StrCat("http://127.0.0.1:", port, "/hook"), "s3cret"}});
  auto notifier = WebhookNotifier::Create(config);
  ASSERT_TRUE(notifier.ok()) << notifier.status();
  WebhookFeed feed(store->get(), notifier->get());

  const v1::TrustStatus sequence[] = {v1::TRUST_AFFIRMING, v1::TRUST_CONTRAINDICATED,
                                      v1::TRUST_CONTRAINDICATED, v1::TRUST_WARNING,
                                      v1::TRUST_AFFIRMING};
  int64_t t = 2;
  for (v1::TrustStatus status : sequence) {
    ASSERT_TRUE(
        testing::RecordDurably(**store, node, testing::MakeVerdict(node, status, t++)).ok());
  }
  // AFFIRMING again and the repeated CONTRAINDICATED change nothing: three changes.
  ASSERT_TRUE(receiver.WaitForDeliveries(3));
  std::vector<v1::TrustStatus> seen;
  for (const Receiver::Delivery& d : receiver.deliveries()) {
    EXPECT_TRUE(d.signature_valid);
    nlohmann::json body = nlohmann::json::parse(d.body);
    v1::TrustStatus status = v1::TRUST_STATUS_UNSPECIFIED;
    ASSERT_TRUE(
        v1::TrustStatus_Parse(body["verdict_change"]["status"].get<std::string>(), &status));
    seen.push_back(status);
  }
  EXPECT_EQ(seen, (std::vector<v1::TrustStatus>{v1::TRUST_CONTRAINDICATED, v1::TRUST_WARNING,
                                                v1::TRUST_AFFIRMING}));
  // Nothing more arrives for those verdicts: a fourth change is the next one made.
  ASSERT_TRUE(
      testing::RecordDurably(**store, node, testing::MakeVerdict(node, v1::TRUST_WARNING, t++))
          .ok());
  ASSERT_TRUE(receiver.WaitForDeliveries(4));
  EXPECT_EQ(receiver.deliveries().size(), 4u);
}

}  // namespace
}  // namespace vigil::verifier
