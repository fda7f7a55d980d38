#include "verifier/store/postgres_schema.h"

#include <pqxx/transaction>

#include "absl/strings/str_cat.h"
#include "verifier/store/postgres_util.h"

namespace vigil::verifier::pg {
namespace {

// Serializes schema migrations across replicas (pg_advisory_xact_lock's key: "vigil" + 1).
constexpr int64_t kMigrationLock = 0x766967696c0001;

// Version 1: the result store, the same layout as SQLite's version 2 (nodes with their latest
// evidence and verdict, the verdict history with a row per workload verdict, the workloads'
// last statuses, the status-change log, policies with revisions, the append-only audit log)
// plus node_streams, the Attest streams each replica's connection has open.
constexpr const char* kSchema1 = R"sql(
CREATE TABLE nodes (
  node_id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL DEFAULT '',
  evidence BYTEA,
  verdict BYTEA,
  status INTEGER NOT NULL DEFAULT 0,
  last_seen_unix_nano BIGINT NOT NULL DEFAULT 0,
  evidence_sha256 TEXT NOT NULL DEFAULT '',
  latest_verdict_id BIGINT,
  revoked BOOLEAN NOT NULL DEFAULT FALSE,
  revoked_by TEXT NOT NULL DEFAULT '',
  revoked_unix_nano BIGINT NOT NULL DEFAULT 0,
  revoked_reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE node_streams (
  node_id TEXT NOT NULL,
  backend_pid INTEGER NOT NULL,
  backend_start TIMESTAMPTZ NOT NULL,
  streams INTEGER NOT NULL,
  PRIMARY KEY (node_id, backend_pid, backend_start)
);
CREATE TABLE verdicts (
  id BIGSERIAL PRIMARY KEY,
  node_id TEXT NOT NULL,
  verdict BYTEA NOT NULL,
  appraised_unix_nano BIGINT NOT NULL,
  status INTEGER NOT NULL,
  evidence_sha256 TEXT NOT NULL,
  policy_digest TEXT NOT NULL
);
CREATE INDEX verdicts_by_time ON verdicts (appraised_unix_nano, id);
CREATE INDEX verdicts_by_node_time ON verdicts (node_id, appraised_unix_nano, id);
CREATE TABLE verdict_workloads (
  verdict_id BIGINT NOT NULL REFERENCES verdicts (id) ON DELETE CASCADE,
  workload_id TEXT NOT NULL,
  name TEXT NOT NULL,
  status INTEGER NOT NULL,
  PRIMARY KEY (verdict_id, workload_id)
);
CREATE INDEX verdict_workloads_by_id ON verdict_workloads (workload_id);
CREATE INDEX verdict_workloads_by_name ON verdict_workloads (name);
CREATE TABLE workload_status (
  node_id TEXT NOT NULL,
  workload_id TEXT NOT NULL,
  name TEXT NOT NULL,
  status INTEGER NOT NULL,
  PRIMARY KEY (node_id, workload_id)
);
CREATE TABLE verdict_changes (
  id BIGSERIAL PRIMARY KEY,
  node_id TEXT NOT NULL,
  workload_id TEXT NOT NULL,
  workload_name TEXT NOT NULL,
  previous_status INTEGER NOT NULL,
  status INTEGER NOT NULL,
  appraised_unix_nano BIGINT NOT NULL,
  verdict BYTEA NOT NULL
);
CREATE INDEX verdict_changes_by_node ON verdict_changes (node_id, id);
CREATE TABLE policies (
  name TEXT PRIMARY KEY,
  revision BIGINT NOT NULL
);
CREATE TABLE policy_revisions (
  name TEXT NOT NULL,
  revision BIGINT NOT NULL,
  sha256 TEXT NOT NULL,
  updated_unix_nano BIGINT NOT NULL,
  updated_by TEXT NOT NULL,
  yaml TEXT NOT NULL,
  PRIMARY KEY (name, revision)
);
CREATE TABLE audit_log (
  id BIGSERIAL PRIMARY KEY,
  time_unix_nano BIGINT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (time_unix_nano, id);
CREATE FUNCTION vigil_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION vigil_audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION vigil_audit_log_append_only();
CREATE TABLE store_meta (
  key TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);
INSERT INTO store_meta (key, value) VALUES ('changes_pruned_through', 0);
)sql";

// Version 2: the node registry (enrolled nodes with their appraisal state, approvals, the
// measurement-log entries each node's state keeps, the spool ledger), the same layout as its
// SQLite tables.
constexpr const char* kSchema2 = R"sql(
CREATE TABLE enrolled_nodes (
  node_id TEXT PRIMARY KEY,
  ek_public BYTEA NOT NULL,
  ak_public BYTEA NOT NULL,
  ak_name BYTEA NOT NULL,
  enrolled_unix_nano BIGINT NOT NULL,
  clock BIGINT,
  reset_count BIGINT,
  restart_count BIGINT,
  qualified_signer BYTEA,
  srk_public BYTEA,
  ak_qualified_name BYTEA,
  log_entries BIGINT,
  log_epoch_start BIGINT,
  log_pcrs BYTEA
);
CREATE TABLE node_approvals (
  node_id TEXT PRIMARY KEY,
  approved_unix_nano BIGINT NOT NULL
);
CREATE TABLE node_measurement_log (
  node_id TEXT NOT NULL,
  recnum BIGINT NOT NULL,
  pcr INTEGER NOT NULL,
  digest BYTEA NOT NULL,
  event_type TEXT NOT NULL,
  content TEXT NOT NULL,
  PRIMARY KEY (node_id, recnum)
);
CREATE TABLE node_spool_ledger (
  node_id TEXT NOT NULL,
  digest BYTEA NOT NULL,
  recnum BIGINT NOT NULL,
  delivered BOOLEAN NOT NULL,
  PRIMARY KEY (node_id, digest)
);
)sql";

// Version 3: what replicas share beyond results and nodes: the public halves of every
// replica's EAR signing keys (each GetJwks serves them all) and the enrollments begun and not
// yet completed (any replica completes one, exactly once). A pending enrollment keeps the
// SHA-256 of its credential secret, never the secret.
constexpr const char* kSchema3 = R"sql(
CREATE TABLE ear_keys (
  kid TEXT PRIMARY KEY,
  jwk TEXT NOT NULL,
  created_unix_nano BIGINT NOT NULL,
  not_after_unix_nano BIGINT NOT NULL
);
CREATE TABLE pending_enrollments (
  enrollment_id TEXT PRIMARY KEY,
  node_id TEXT NOT NULL,
  ek_public BYTEA NOT NULL,
  ak_public BYTEA NOT NULL,
  ak_name BYTEA NOT NULL,
  srk_public BYTEA NOT NULL,
  ak_qualified_name BYTEA NOT NULL,
  csr_pem TEXT NOT NULL,
  secret_sha256 BYTEA NOT NULL,
  expires_unix_nano BIGINT NOT NULL
);
CREATE INDEX pending_enrollments_by_node ON pending_enrollments (node_id, expires_unix_nano);
CREATE INDEX pending_enrollments_by_expiry ON pending_enrollments (expires_unix_nano);
)sql";

// Version 4: verdicts may be stored in their compact form (store_internal.h,
// EncodeStoredVerdict); no table changes. The number alone keeps a replica that cannot read
// that form from starting on the database.
constexpr const char* kSchema4 = "SELECT 1";

// Version 5: verdicts and evidence may be stored LZ4-compressed (store_internal.h,
// CompressStored); no table changes, as version 4.
constexpr const char* kSchema5 = "SELECT 1";

const char* MigrationSql(int version) {
  switch (version) {
    case 1:
      return kSchema1;
    case 2:
      return kSchema2;
    case 3:
      return kSchema3;
    case 4:
      return kSchema4;
    case 5:
      return kSchema5;
    default:
      return nullptr;
  }
}

}  // namespace

absl::Status MigrateSchema(pqxx::connection& connection) {
  return Guard("store: migrating the PostgreSQL schema", [&]() -> absl::Status {
    pqxx::work tx(connection);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLock);
    tx.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "applied_unix_nano BIGINT NOT NULL)");
    const int version =
        tx.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0].as<int>();
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "store: the database has schema version ", version, ", newer than this verifier's (",
          kSchemaVersion, "); run a verifier at least as new as the one that wrote it"));
    }
    for (int v = version + 1; v <= kSchemaVersion; ++v) {
      const char* sql = MigrationSql(v);
      if (sql == nullptr) {
        return absl::InternalError(absl::StrCat("store: no migration to version ", v));
      }
      tx.exec(sql);
      tx.exec_params(
          "INSERT INTO schema_migrations (version, applied_unix_nano) VALUES ($1, "
          "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000000)::BIGINT)",
          v);
    }
    tx.commit();
    return absl::OkStatus();
  });
}

}  // namespace vigil::verifier::pg
