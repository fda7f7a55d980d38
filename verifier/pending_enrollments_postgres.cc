// Pending enrollments in PostgreSQL, shared by verifier replicas: a BeginEnrollment on one
// replica and its CompleteEnrollment on another meet in the pending_enrollments table.
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "verifier/pending_enrollments.h"
#include "verifier/store/postgres_schema.h"
#include "verifier/store/postgres_util.h"

namespace vigil::verifier {
namespace {

constexpr char kWho[] = "pending enrollments";
// Serializes Adds across replicas so the bounds hold (pg_advisory_xact_lock's key: "vigil" + 2).
constexpr int64_t kAddLock = 0x766967696c0002;

constexpr char kColumns[] =
    "enrollment_id, node_id, ek_public, ak_public, ak_name, srk_public, ak_qualified_name, "
    "csr_pem, secret_sha256, expires_unix_nano, tpm_simulated";

// Whether the EK is a simulated TPM's (--accept-simulated-tpm), carried to the binding the
// completing replica makes: a column added in place, idempotently, like enrolled_nodes' own.
constexpr char kAddTpmSimulated[] =
    "ALTER TABLE pending_enrollments ADD COLUMN IF NOT EXISTS tpm_simulated BOOLEAN NOT NULL "
    "DEFAULT FALSE";

std::string Bytes(const pqxx::field& f) { return pqxx::binarystring(f).str(); }

absl::Status FullError() {
  return absl::ResourceExhaustedError("too many enrollments pending; retry later");
}

void DeleteExpired(pqxx::work& tx, absl::Time now) {
  tx.exec_params("DELETE FROM pending_enrollments WHERE expires_unix_nano < $1",
                 absl::ToUnixNanos(now));
}

// The node's pending enrollment ids, oldest first.
pqxx::result SameEk(pqxx::work& tx, const std::string& node_id) {
  return tx.exec_params(
      "SELECT enrollment_id FROM pending_enrollments WHERE node_id = $1 ORDER BY "
      "expires_unix_nano, enrollment_id",
      node_id);
}

size_t Total(pqxx::work& tx) {
  return static_cast<size_t>(
      tx.exec("SELECT COUNT(*) FROM pending_enrollments")[0][0].as<int64_t>());
}

class PostgresPendingEnrollments final : public PendingEnrollments {
 public:
  explicit PostgresPendingEnrollments(std::string url) : url_(std::move(url)) {}

  absl::Status Connect() {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(connection_, pg::Connect(url_, kWho));
    RETURN_IF_ERROR(pg::MigrateSchema(*connection_));
    return pg::Guard("pending enrollments: adding the tpm_simulated column", [&] {
      pqxx::work tx(*connection_);
      tx.exec(kAddTpmSimulated);
      tx.commit();
      return absl::OkStatus();
    });
  }

  absl::Status CheckRoom(const std::string& node_id, const PendingLimits& limits,
                         absl::Time now) override {
    absl::MutexLock lock(&mu_);
    return Run<bool>("pending enrollments: checking room",
                     [&](pqxx::connection& c) -> absl::StatusOr<bool> {
                       pqxx::work tx(c);
                       DeleteExpired(tx, now);
                       const bool evicts_own =
                           limits.max_pending_per_ek > 0 &&
                           SameEk(tx, node_id).size() >= limits.max_pending_per_ek;
                       const bool full = !evicts_own && Total(tx) >= limits.max_pending;
                       tx.commit();
                       if (full) return FullError();
                       return true;
                     })
        .status();
  }

  absl::StatusOr<bool> Add(const PendingEnrollment& p, const PendingLimits& limits,
                           absl::Time now) override {
    absl::MutexLock lock(&mu_);
    return Run<bool>(
        "pending enrollments: adding one", [&](pqxx::connection& c) -> absl::StatusOr<bool> {
          pqxx::work tx(c);
          tx.exec_params("SELECT pg_advisory_xact_lock($1)", kAddLock);
          DeleteExpired(tx, now);
          const pqxx::result same_ek = SameEk(tx, p.node.node_id);
          bool evicted = false;
          if (limits.max_pending_per_ek > 0 && same_ek.size() >= limits.max_pending_per_ek) {
            // The oldest of this EK's enrollments make room; other EKs keep theirs.
            for (size_t i = 0; i + limits.max_pending_per_ek <= same_ek.size(); ++i) {
              tx.exec_params("DELETE FROM pending_enrollments WHERE enrollment_id = $1",
                             same_ek[static_cast<int>(i)][0].as<std::string>());
            }
            evicted = true;
          } else if (Total(tx) >= limits.max_pending) {
            tx.abort();
            return FullError();
          }
          tx.exec_params(absl::StrCat("INSERT INTO pending_enrollments (", kColumns,
                                      ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
                         p.enrollment_id, p.node.node_id, pqxx::binarystring(p.node.ek_public),
                         pqxx::binarystring(p.node.ak_public), pqxx::binarystring(p.node.ak_name),
                         pqxx::binarystring(p.node.srk_public),
                         pqxx::binarystring(p.node.ak_qualified_name), p.csr_pem,
                         pqxx::binarystring(p.secret_sha256.data(), p.secret_sha256.size()),
                         absl::ToUnixNanos(p.expires), p.node.tpm_simulated);
          tx.commit();
          return evicted;
        });
  }

  absl::StatusOr<PendingEnrollment> Take(const std::string& enrollment_id) override {
    absl::MutexLock lock(&mu_);
    return Run<PendingEnrollment>(
        "pending enrollments: taking one",
        [&](pqxx::connection& c) -> absl::StatusOr<PendingEnrollment> {
          pqxx::work tx(c);
          // The delete is the claim: of two replicas taking one id, one gets the row.
          const pqxx::result rows = tx.exec_params(
              absl::StrCat("DELETE FROM pending_enrollments WHERE enrollment_id = $1 RETURNING ",
                           kColumns),
              enrollment_id);
          tx.commit();
          if (rows.empty()) {
            return absl::NotFoundError("unknown or already attempted enrollment_id");
          }
          const pqxx::row& r = rows[0];
          PendingEnrollment p;
          p.enrollment_id = r[0].as<std::string>();
          p.node.node_id = r[1].as<std::string>();
          p.node.ek_public = Bytes(r[2]);
          p.node.ak_public = Bytes(r[3]);
          p.node.ak_name = Bytes(r[4]);
          p.node.srk_public = Bytes(r[5]);
          p.node.ak_qualified_name = Bytes(r[6]);
          p.csr_pem = r[7].as<std::string>();
          const std::string digest = Bytes(r[8]);
          if (digest.size() != p.secret_sha256.size()) {
            return absl::DataLossError("a pending enrollment's secret digest is not SHA-256");
          }
          std::copy(digest.begin(), digest.end(), p.secret_sha256.begin());
          p.expires = absl::FromUnixNanos(r[9].as<int64_t>());
          p.node.tpm_simulated = r[10].as<bool>();
          return p;
        });
  }

  absl::StatusOr<size_t> Count() const override {
    absl::MutexLock lock(&mu_);
    return Run<size_t>(
        "pending enrollments: counting", [&](pqxx::connection& c) -> absl::StatusOr<size_t> {
          pqxx::read_transaction tx(c);
          return static_cast<size_t>(
              tx.exec("SELECT COUNT(*) FROM pending_enrollments")[0][0].as<int64_t>());
        });
  }

 private:
  template <typename T, typename F>
  absl::StatusOr<T> Run(const char* what, F&& body) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pg::WithConnection<T>(&connection_, url_, kWho, what, std::forward<F>(body));
  }

  const std::string url_;
  mutable absl::Mutex mu_;
  mutable std::unique_ptr<pqxx::connection> connection_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<PendingEnrollments>> OpenPostgresPendingEnrollments(
    const std::string& url) {
  if (!pg::IsPostgresUrl(url)) {
    return absl::InvalidArgumentError(
        absl::StrCat("pending enrollments: not a PostgreSQL URL: ", pg::MaskPassword(url)));
  }
  auto table = std::make_unique<PostgresPendingEnrollments>(url);
  RETURN_IF_ERROR(table->Connect());
  return table;
}

}  // namespace vigil::verifier
