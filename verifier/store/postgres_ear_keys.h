#pragma once

// The public halves of every replica's EAR signing keys in PostgreSQL (table ear_keys), so
// each replica's GetJwks serves them all.

#include <memory>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "verifier/results/ear_key_table.h"

namespace vigil::verifier {

class PostgresEarKeyTable final : public EarKeyTable {
 public:
  /// Connects to `url` and applies the schema migrations; UNAVAILABLE when the server
  /// cannot be reached.
  static absl::StatusOr<std::unique_ptr<PostgresEarKeyTable>> Open(const std::string& url);

  absl::Status Publish(const PublishedEarKey& key, absl::Time now) override;
  absl::StatusOr<std::vector<PublishedEarKey>> Published(absl::Time now) const override;

 private:
  explicit PostgresEarKeyTable(std::string url) : url_(std::move(url)) {}

  const std::string url_;
  mutable absl::Mutex mu_;
  mutable std::unique_ptr<pqxx::connection> connection_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::verifier
