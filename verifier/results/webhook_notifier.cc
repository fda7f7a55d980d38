#include "verifier/results/webhook_notifier.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <openssl/hmac.h>

#include <deque>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/digest.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace vigil::verifier {
namespace {

// A target URL split into what the HTTP client needs.
struct ParsedUrl {
  std::string scheme_host_port;  // "https://host:port"
  std::string path;              // "/path?query", at least "/"
  std::string display;           // scheme://host:port/path, without the query (for logs)
};

bool ValidHost(std::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[') {  // IPv6 literal
    if (host.size() < 3 || host.back() != ']') return false;
    for (char c : host.substr(1, host.size() - 2)) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return false;
      }
    }
    return true;
  }
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  }
  return true;
}

absl::StatusOr<ParsedUrl> ParseUrl(std::string_view url) {
  std::string_view rest = url;
  std::string scheme;
  if (rest.substr(0, 7) == "http://") {
    scheme = "http";
    rest.remove_prefix(7);
  } else if (rest.substr(0, 8) == "https://") {
    scheme = "https";
    rest.remove_prefix(8);
  } else {
    return absl::InvalidArgumentError("the URL must start with http:// or https://");
  }
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string path = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (path.find('#') != std::string::npos) {
    return absl::InvalidArgumentError("the URL must not have a #fragment");
  }
  if (path.front() == '?') path = "/" + path;
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("the URL path has a space or control character");
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "the URL must not carry credentials (user:password@); use the target's secret");
  }
  std::string_view host = authority;
  int port = scheme == "https" ? 443 : 80;
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
    host = authority.substr(0, colon);
    absl::string_view port_text(authority.data() + colon + 1, authority.size() - colon - 1);
    if (port_text.empty() || !absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535) {
      return absl::InvalidArgumentError("the URL's port is not a number from 1 to 65535");
    }
  }
  if (!ValidHost(host)) return absl::InvalidArgumentError("the URL has no valid host");
  ParsedUrl parsed;
  parsed.scheme_host_port = absl::StrCat(scheme, "://", std::string(host), ":", port);
  parsed.display = absl::StrCat(parsed.scheme_host_port, path.substr(0, path.find('?')));
  parsed.path = std::move(path);
  return parsed;
}

}  // namespace

absl::StatusOr<std::string> WebhookBody(const v1::VerdictChange& change) {
  std::string change_json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  auto st = google::protobuf::util::MessageToJsonString(change, &change_json, options);
  if (!st.ok()) {
    return absl::InternalError(absl::StrCat("VerdictChange to JSON: ", st.ToString()));
  }
  nlohmann::json body{
      {"verdict_change", nlohmann::json::parse(change_json)},
      {"ear_token", change.verdict().ear_token()},
  };
  return body.dump();
}

std::string WebhookSignature(std::string_view secret, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  return absl::StrCat("sha256=", HexEncode(std::string_view(reinterpret_cast<char*>(mac), len)));
}

// One target: its queue, its thread and its HTTP client.
class WebhookNotifier::Worker {
 public:
  Worker(ParsedUrl url, std::string secret, const WebhookConfig& config)
      : url_(std::move(url)),
        secret_(std::move(secret)),
        config_(config),
        client_(url_.scheme_host_port),
        rng_(std::random_device{}()) {
    auto secs = [](absl::Duration d) { return static_cast<time_t>(absl::ToInt64Seconds(d)); };
    auto usecs = [](absl::Duration d) {
      return static_cast<time_t>(absl::ToInt64Microseconds(d) % 1000000);
    };
    client_.set_connection_timeout(secs(config.timeout), usecs(config.timeout));
    client_.set_read_timeout(secs(config.timeout), usecs(config.timeout));
    client_.set_write_timeout(secs(config.timeout), usecs(config.timeout));
    client_.set_keep_alive(false);
    client_.enable_server_certificate_verification(true);
    if (!config.ca_file.empty()) client_.set_ca_cert_path(config.ca_file);
    thread_ = std::thread([this] { Run(); });
  }

  ~Worker() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    client_.stop();  // aborts an attempt in flight
    thread_.join();
  }

  void Enqueue(std::shared_ptr<const v1::VerdictChange> change) {
    absl::MutexLock lock(&mu_);
    if (queue_.size() >= config_.queue_capacity) {
      queue_.pop_front();
      ++stats_.dropped;
      if ((stats_.dropped & (stats_.dropped - 1)) == 0) {  // log at powers of two
        spdlog::warn("webhook {}: queue full, {} change(s) dropped so far", url_.display,
                     stats_.dropped);
      }
    }
    queue_.push_back(std::move(change));
  }

  WebhookStats stats() const {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  void Run() {
    for (;;) {
      std::shared_ptr<const v1::VerdictChange> change;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Worker* w) { return w->stop_ || !w->queue_.empty(); }, this));
        if (stop_) return;
        change = std::move(queue_.front());
        queue_.pop_front();
      }
      auto body = WebhookBody(*change);
      if (!body.ok()) {
        spdlog::error("webhook {}: {}", url_.display, body.status().ToString());
        absl::MutexLock lock(&mu_);
        ++stats_.abandoned;
        continue;
      }
      DeliverWithRetries(*body);
    }
  }

  void DeliverWithRetries(const std::string& body) {
    httplib::Headers headers{{"User-Agent", "vigil-verifier"}};
    if (!secret_.empty()) headers.emplace("X-Vigil-Signature", WebhookSignature(secret_, body));
    absl::Duration backoff = config_.initial_backoff;
    for (int attempt = 1;; ++attempt) {
      std::string error;
      httplib::Result result = client_.Post(url_.path, headers, body, "application/json");
      if (result && result->status >= 200 && result->status < 300) {
        absl::MutexLock lock(&mu_);
        ++stats_.delivered;
        return;
      }
      error = result ? absl::StrCat("HTTP ", result->status) : httplib::to_string(result.error());
      absl::MutexLock lock(&mu_);
      ++stats_.failed_attempts;
      if (stop_) return;
      if (attempt >= config_.max_attempts) {
        ++stats_.abandoned;
        spdlog::warn("webhook {}: attempt {}/{} failed ({}); change abandoned", url_.display,
                     attempt, config_.max_attempts, error);
        return;
      }
      absl::Duration wait = Jitter(backoff);
      spdlog::warn("webhook {}: attempt {}/{} failed ({}); retrying in {}", url_.display, attempt,
                   config_.max_attempts, error, absl::FormatDuration(wait));
      backoff = std::min(backoff * 2, config_.max_backoff);
      // Sleeps, but wakes at once for shutdown.
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), wait)) return;
    }
  }

  absl::Duration Jitter(absl::Duration backoff) {
    int64_t max_us = std::max<int64_t>(1, absl::ToInt64Microseconds(backoff));
    std::uniform_int_distribution<int64_t> dist(max_us / 2, max_us);
    return absl::Microseconds(dist(rng_));
  }

  const ParsedUrl url_;
  const std::string secret_;
  const WebhookConfig& config_;
  httplib::Client client_;
  std::mt19937_64 rng_;
  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<const v1::VerdictChange>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  WebhookStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<WebhookNotifier>> WebhookNotifier::Create(WebhookConfig config) {
  if (config.queue_capacity == 0 || config.max_attempts < 1) {
    return absl::InvalidArgumentError("webhook queue capacity and attempts must be at least 1");
  }
  if (config.initial_backoff <= absl::ZeroDuration() ||
      config.max_backoff < config.initial_backoff || config.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("webhook backoff and timeout must be positive");
  }
  std::vector<ParsedUrl> urls;
  for (size_t i = 0; i < config.targets.size(); ++i) {
    auto url = ParseUrl(config.targets[i].url);
    // The message names the target by position: the URL itself may hold a token.
    if (!url.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("webhook target #", i + 1, ": ", url.status().message()));
    }
    urls.push_back(*std::move(url));
  }
  std::unique_ptr<WebhookNotifier> notifier(new WebhookNotifier());
  auto shared_config = std::make_shared<const WebhookConfig>(std::move(config));
  notifier->config_ = shared_config;
  for (size_t i = 0; i < urls.size(); ++i) {
    notifier->workers_.push_back(std::make_unique<Worker>(
        std::move(urls[i]), shared_config->targets[i].secret, *shared_config));
  }
  return notifier;
}

WebhookNotifier::~WebhookNotifier() = default;

void WebhookNotifier::Notify(const v1::VerdictChange& change) {
  auto shared = std::make_shared<const v1::VerdictChange>(change);
  for (auto& worker : workers_) worker->Enqueue(shared);
}

WebhookStats WebhookNotifier::stats(size_t index) const { return workers_.at(index)->stats(); }

}  // namespace vigil::verifier
