#pragma once

// A real PostgreSQL server for tests: Debian's postgresql-15 (initdb and pg_ctl) in a
// temporary directory, run as an unprivileged user (`nobody` when the test runs as root;
// initdb refuses root), listening on 127.0.0.1 at a free port and on a unix socket in the
// directory, with trust authentication for its local connections. One per test binary
// (Shared), started on first use and stopped when the process exits; each test takes a
// database of its own (CreateDatabase).

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vigil::testing {

class PostgresServer {
 public:
  /// The test binary's server, started on the first call.
  static absl::StatusOr<PostgresServer*> Shared();

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  /// Creates an empty database named `<tag>_<n>` and returns its URL
  /// (postgresql://vigil@127.0.0.1:<port>/<name>).
  absl::StatusOr<std::string> CreateDatabase(const std::string& tag);
  /// Runs SQL statements on `url`'s database on a connection of the caller's own.
  static absl::Status Exec(const std::string& url, const std::string& sql);
  /// The single integer the query returns.
  static absl::StatusOr<int64_t> QueryInt(const std::string& url, const std::string& sql);

  /// Stops the server (fast shutdown: clients are disconnected) and starts it again on the
  /// same port with the same data.
  absl::Status Stop();
  absl::Status Start();

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

 private:
  PostgresServer() = default;
  absl::Status Init();
  // Runs a PostgreSQL program as the server's user.
  absl::Status RunAsOwner(const std::vector<std::string>& argv, const std::string& what);

  std::string dir_;
  std::string bin_;
  int port_ = 0;
  int next_database_ = 0;
  bool running_ = false;
};

}  // namespace vigil::testing
