#pragma once

#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

#include <pqxx/connection>
#include <pqxx/except>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vigil::verifier::pg {

/// Whether `target` is a PostgreSQL connection URL (postgresql:// or postgres://).
bool IsPostgresUrl(absl::string_view target);

/// `url` with every password in it (a URL's user:password@ and any password= parameter)
/// replaced by "****": the only form of a connection URL that may be logged.
std::string MaskPassword(absl::string_view url);

/// `host "H" port P database "D"` as libpq resolves `url` (its defaults and environment
/// applied), for error messages; never includes the password.
std::string DescribeTarget(const std::string& url);

/// libpq waits for a connection as long as TCP does (minutes for a host that drops packets)
/// unless told otherwise. `url` with `connect_timeout=10` (seconds) added when neither the URL
/// nor the environment (PGCONNECT_TIMEOUT) sets one; otherwise `url` unchanged.
std::string WithDefaultConnectTimeout(const std::string& url);

/// Opens a connection for `what` ("store", "node registry", ...); UNAVAILABLE naming the
/// target (never the password) when the server cannot be reached or refuses. Connection
/// attempts time out as WithDefaultConnectTimeout says.
absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect(const std::string& url,
                                                          absl::string_view what);

/// Whether `e` means the connection or the server is gone or busy for now (connection
/// lost, server shutting down or restarting, too many connections, a commit whose outcome
/// is unknown, a deadlock or serialization failure): the same work may succeed later.
bool IsTransient(const std::exception& e);

/// `e` as a status: UNAVAILABLE when transient, INTERNAL otherwise; "<what>: <message>".
absl::Status FromException(const std::exception& e, absl::string_view what);

/// Runs `body` and turns a libpqxx exception into a status (FromException).
template <typename F>
absl::Status Guard(absl::string_view what, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return FromException(e, what);
  }
}

/// Runs `body(connection)` with `*connection`, connecting to `url` first (for `who`, as
/// Connect) when there is none or it was closed; a connection the server dropped is
/// forgotten, so the next call connects again. A connection that was dropped while idle (the
/// server restarted) fails its first use before anything is committed: then `body` runs once
/// more on a new connection, so it must be safe to run again (it opens its own
/// transaction). A libpqxx exception becomes a status (FromException with `what`). The
/// caller serializes calls on one connection.
template <typename T, typename F>
absl::StatusOr<T> WithConnection(std::unique_ptr<pqxx::connection>* connection,
                                 const std::string& url, absl::string_view who,
                                 absl::string_view what, F&& body) {
  for (bool retried = false;; retried = true) {
    const bool fresh = *connection == nullptr || !(*connection)->is_open();
    if (fresh) {
      absl::StatusOr<std::unique_ptr<pqxx::connection>> opened = Connect(url, who);
      if (!opened.ok()) return opened.status();
      *connection = *std::move(opened);
    }
    try {
      return body(**connection);
    } catch (const pqxx::broken_connection& e) {
      // Not a commit in doubt (pqxx::in_doubt_error): nothing of the body's transaction
      // was committed, so running it again is safe.
      connection->reset();
      if (fresh || retried) return FromException(e, what);
    } catch (const std::exception& e) {
      if (!(*connection)->is_open()) connection->reset();
      return FromException(e, what);
    }
  }
}

}  // namespace vigil::verifier::pg
