#include "verifier/store/postgres_ear_keys.h"

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "verifier/store/postgres_schema.h"
#include "verifier/store/postgres_util.h"

namespace vigil::verifier {
namespace {

constexpr char kWho[] = "EAR key table";

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresEarKeyTable>> PostgresEarKeyTable::Open(
    const std::string& url) {
  if (!pg::IsPostgresUrl(url)) {
    return absl::InvalidArgumentError(
        absl::StrCat("EAR key table: not a PostgreSQL URL: ", pg::MaskPassword(url)));
  }
  std::unique_ptr<PostgresEarKeyTable> table(new PostgresEarKeyTable(url));
  absl::MutexLock lock(&table->mu_);
  ASSIGN_OR_RETURN(table->connection_, pg::Connect(url, kWho));
  RETURN_IF_ERROR(pg::MigrateSchema(*table->connection_));
  return table;
}

absl::Status PostgresEarKeyTable::Publish(const PublishedEarKey& key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  return pg::WithConnection<bool>(
             &connection_, url_, kWho, "EAR key table: publishing a key",
             [&](pqxx::connection& c) -> absl::StatusOr<bool> {
               pqxx::work tx(c);
               tx.exec_params(
                   "INSERT INTO ear_keys (kid, jwk, created_unix_nano, not_after_unix_nano) "
                   "VALUES ($1, $2, $3, $4) ON CONFLICT (kid) DO UPDATE SET jwk = excluded.jwk, "
                   "created_unix_nano = excluded.created_unix_nano, not_after_unix_nano = "
                   "excluded.not_after_unix_nano",
                   key.kid, key.jwk_json, absl::ToUnixNanos(key.created),
                   absl::ToUnixNanos(key.not_after));
               tx.exec_params("DELETE FROM ear_keys WHERE not_after_unix_nano <= $1",
                              absl::ToUnixNanos(now));
               tx.commit();
               return true;
             })
      .status();
}

absl::StatusOr<std::vector<PublishedEarKey>> PostgresEarKeyTable::Published(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  return pg::WithConnection<std::vector<PublishedEarKey>>(
      &connection_, url_, kWho, "EAR key table: reading the keys",
      [&](pqxx::connection& c) -> absl::StatusOr<std::vector<PublishedEarKey>> {
        pqxx::read_transaction tx(c);
        std::vector<PublishedEarKey> out;
        for (const pqxx::row& r : tx.exec_params(
                 "SELECT kid, jwk, created_unix_nano, not_after_unix_nano FROM ear_keys WHERE "
                 "not_after_unix_nano > $1 ORDER BY created_unix_nano DESC, kid",
                 absl::ToUnixNanos(now))) {
          out.push_back(PublishedEarKey{r[0].as<std::string>(), r[1].as<std::string>(),
                                        absl::FromUnixNanos(r[2].as<int64_t>()),
                                        absl::FromUnixNanos(r[3].as<int64_t>())});
        }
        return out;
      });
}

}  // namespace vigil::verifier
