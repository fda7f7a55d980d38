#include "verifier/store/postgres_util.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <pqxx/except>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vigil::verifier::pg {
namespace {

constexpr char kMask[] = "****";
constexpr size_t kMaskSize = sizeof(kMask) - 1;

// Masks the value after every "password=" (a URL query parameter or a key=value
// connection string; a quoted value ends at its closing quote).
std::string MaskPasswordParameters(std::string s) {
  size_t at = 0;
  for (;;) {
    at = s.find("password=", at);
    if (at == std::string::npos) return s;
    size_t start = at + absl::string_view("password=").size();
    size_t end = start;
    if (end < s.size() && s[end] == '\'') {
      end = s.find('\'', end + 1);
      end = end == std::string::npos ? s.size() : end + 1;
    } else {
      while (end < s.size() && s[end] != '&' && s[end] != ' ') ++end;
    }
    s.replace(start, end - start, kMask);
    at = start + kMaskSize;
  }
}

}  // namespace

bool IsPostgresUrl(absl::string_view target) {
  return absl::StartsWith(target, "postgresql://") || absl::StartsWith(target, "postgres://");
}

std::string MaskPassword(absl::string_view url) {
  std::string out(url);
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t authority = scheme + 3;
    size_t authority_end = out.find_first_of("/?", authority);
    if (authority_end == std::string::npos) authority_end = out.size();
    // The userinfo ends at the authority's last '@' (a password may hold '@' unescaped).
    const size_t at = out.rfind('@', authority_end);
    if (at != std::string::npos && at >= authority) {
      const size_t colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, kMask);
      }
    }
  }
  return MaskPasswordParameters(std::move(out));
}

std::string DescribeTarget(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    std::string message = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return absl::StrCat("an unparsable connection URL (", message, ")");
  }
  auto value = [options](absl::string_view key, const char* env) -> std::string {
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (key == o->keyword && o->val != nullptr && o->val[0] != '\0') return o->val;
    }
    const char* from_env = env != nullptr ? std::getenv(env) : nullptr;
    return from_env != nullptr ? from_env : "";
  };
  std::string host = value("host", "PGHOST");
  if (host.empty()) host = value("hostaddr", "PGHOSTADDR");
  if (host.empty()) host = "the default local socket";
  std::string port = value("port", "PGPORT");
  if (port.empty()) port = "5432";
  std::string database = value("dbname", "PGDATABASE");
  if (database.empty()) database = value("user", "PGUSER");
  PQconninfoFree(options);
  return absl::StrCat("host \"", host, "\" port ", port, " database \"", database, "\"");
}

std::string WithDefaultConnectTimeout(const std::string& url) {
  const char* from_env = std::getenv("PGCONNECT_TIMEOUT");
  if (from_env != nullptr && from_env[0] != '\0') return url;
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {  // libpq reports the URL's error when it connects
    PQfreemem(error);
    return url;
  }
  bool has_timeout = false;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (absl::string_view(o->keyword) == "connect_timeout" && o->val != nullptr &&
        o->val[0] != '\0') {
      has_timeout = true;
    }
  }
  PQconninfoFree(options);
  if (has_timeout) return url;
  if (IsPostgresUrl(url)) {
    return absl::StrCat(url, url.find('?') == std::string::npos ? "?" : "&", "connect_timeout=10");
  }
  return absl::StrCat(url, " connect_timeout=10");  // key=value form
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect(const std::string& url,
                                                          absl::string_view what) {
  try {
    return std::make_unique<pqxx::connection>(WithDefaultConnectTimeout(url));
  } catch (const std::exception& e) {
    std::string message = e.what();
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    return absl::UnavailableError(absl::StrCat(what, ": cannot connect to PostgreSQL at ",
                                               DescribeTarget(url), ": ", MaskPassword(message)));
  }
}

bool IsTransient(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return true;
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) return true;
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) return true;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e); sql != nullptr) {
    const std::string& state = sql->sqlstate();
    // 08: connection exception; 40: transaction rollback; 53: insufficient resources;
    // 57: operator intervention (shutdown, restart, cannot connect now).
    return absl::StartsWith(state, "08") || absl::StartsWith(state, "40") ||
           absl::StartsWith(state, "53") || absl::StartsWith(state, "57");
  }
  return false;
}

absl::Status FromException(const std::exception& e, absl::string_view what) {
  std::string message = e.what();
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  std::string text = absl::StrCat(what, ": ", MaskPassword(message));
  return IsTransient(e) ? absl::UnavailableError(text) : absl::InternalError(text);
}

}  // namespace vigil::verifier::pg
