#include "verifier/store/sqlite_schema.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "verifier/store/sqlite_util.h"
#include "verifier/store/store_internal.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier::sqlite {
namespace {

// Version 1: the result store's first layout (latest evidence and verdict per node, a
// verdict history). Kept verbatim so a fresh database goes through the same steps as an
// old one.
constexpr const char* kSchema1 = R"sql(
CREATE TABLE IF NOT EXISTS results_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS results_latest (
  node_id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL DEFAULT '',
  evidence BLOB,
  verdict BLOB,
  last_seen_unix_nano INTEGER NOT NULL DEFAULT 0,
  connected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS results_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  node_id TEXT NOT NULL,
  verdict BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS results_history_by_node ON results_history (node_id, id);
)sql";

// Version 2: nodes with revocations, a queryable verdict history with a row per workload
// verdict, the status-change log, policies with revisions and the audit log. The version 1
// tables are renamed and extended in place; their rows are kept.
constexpr const char* kSchema2 = R"sql(
ALTER TABLE results_latest RENAME TO nodes;
ALTER TABLE nodes ADD COLUMN evidence_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN latest_verdict_id INTEGER;
ALTER TABLE nodes ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN revoked_by TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN revoked_unix_nano INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';

DROP INDEX IF EXISTS results_history_by_node;
ALTER TABLE results_history RENAME TO verdicts;
ALTER TABLE verdicts ADD COLUMN appraised_unix_nano INTEGER NOT NULL DEFAULT 0;
ALTER TABLE verdicts ADD COLUMN status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE verdicts ADD COLUMN evidence_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE verdicts ADD COLUMN policy_digest TEXT NOT NULL DEFAULT '';
CREATE INDEX verdicts_by_time ON verdicts (appraised_unix_nano, id);
CREATE INDEX verdicts_by_node_time ON verdicts (node_id, appraised_unix_nano, id);

CREATE TABLE verdict_workloads (
  verdict_id INTEGER NOT NULL REFERENCES verdicts (id) ON DELETE CASCADE,
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
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  node_id TEXT NOT NULL,
  workload_id TEXT NOT NULL,
  workload_name TEXT NOT NULL,
  previous_status INTEGER NOT NULL,
  status INTEGER NOT NULL,
  appraised_unix_nano INTEGER NOT NULL,
  verdict BLOB NOT NULL
);
CREATE INDEX verdict_changes_by_node ON verdict_changes (node_id, id);

CREATE TABLE policies (
  name TEXT PRIMARY KEY,
  revision INTEGER NOT NULL
);
CREATE TABLE policy_revisions (
  name TEXT NOT NULL,
  revision INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  updated_unix_nano INTEGER NOT NULL,
  updated_by TEXT NOT NULL,
  yaml TEXT NOT NULL,
  PRIMARY KEY (name, revision)
);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_unix_nano INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (time_unix_nano, id);
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE store_meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO store_meta (key, value) VALUES ('changes_pruned_through', 0);
)sql";

// Runs `insert` (verdict_workloads' INSERT) for each workload verdict of `verdict`, stored as
// verdict `id`.
absl::Status InsertWorkloadVerdicts(sqlite3* db, sqlite3_stmt* insert, int64_t id,
                                    const v1::Verdict& verdict) {
  for (const v1::WorkloadVerdict& w : verdict.workloads()) {
    sqlite3_bind_int64(insert, 1, id);
    BindText(insert, 2, w.workload_id());
    BindText(insert, 3, w.identity().name());
    sqlite3_bind_int(insert, 4, w.status());
    RETURN_IF_ERROR(Run(db, insert, "store: migrating a workload verdict"));
  }
  return absl::OkStatus();
}

// Fills version 2's derived columns and rows from the verdicts version 1 stored as blobs.
absl::Status Backfill2(sqlite3* db) {
  ASSIGN_OR_RETURN(Stmt select, Prepare(db, "SELECT id, node_id, verdict FROM verdicts"));
  ASSIGN_OR_RETURN(Stmt update, Prepare(db,
                                        "UPDATE verdicts SET appraised_unix_nano = ?2, "
                                        "status = ?3, evidence_sha256 = ?4, policy_digest = ?5 "
                                        "WHERE id = ?1"));
  ASSIGN_OR_RETURN(Stmt workload, Prepare(db,
                                          "INSERT OR IGNORE INTO verdict_workloads (verdict_id, "
                                          "workload_id, name, status) VALUES (?1, ?2, ?3, ?4)"));
  int rc;
  while ((rc = sqlite3_step(select.get())) == SQLITE_ROW) {
    const int64_t id = sqlite3_column_int64(select.get(), 0);
    v1::Verdict verdict;
    if (!store_internal::DecodeStoredVerdict(ColumnView(select.get(), 2), verdict)) {
      return absl::DataLossError(absl::StrCat("store: stored verdict ", id, " does not parse"));
    }
    sqlite3_bind_int64(update.get(), 1, id);
    sqlite3_bind_int64(update.get(), 2, verdict.appraised_unix_nano());
    sqlite3_bind_int(update.get(), 3, verdict.status());
    BindText(update.get(), 4, verdict.evidence_sha256());
    BindText(update.get(), 5, verdict.policy_digest());
    RETURN_IF_ERROR(Run(db, update.get(), "store: migrating a verdict"));
    RETURN_IF_ERROR(InsertWorkloadVerdicts(db, workload.get(), id, verdict));
  }
  if (rc != SQLITE_DONE) return Error(db, "store: reading verdicts to migrate");

  RETURN_IF_ERROR(Exec(db,
                       "UPDATE nodes SET latest_verdict_id = (SELECT MAX(id) FROM verdicts "
                       "WHERE verdicts.node_id = nodes.node_id)"));
  // The workloads' last statuses, from each node's latest verdict.
  ASSIGN_OR_RETURN(Stmt nodes,
                   Prepare(db, "SELECT node_id, verdict FROM nodes WHERE verdict IS NOT NULL"));
  ASSIGN_OR_RETURN(Stmt status, Prepare(db,
                                        "INSERT OR REPLACE INTO workload_status (node_id, "
                                        "workload_id, name, status) VALUES (?1, ?2, ?3, ?4)"));
  while ((rc = sqlite3_step(nodes.get())) == SQLITE_ROW) {
    const std::string node_id = ColumnBytes(nodes.get(), 0);
    v1::Verdict verdict;
    if (!store_internal::DecodeStoredVerdict(ColumnView(nodes.get(), 1), verdict)) {
      return absl::DataLossError(
          absl::StrCat("store: node ", node_id, ": stored verdict does not parse"));
    }
    for (const v1::WorkloadVerdict& w : verdict.workloads()) {
      BindText(status.get(), 1, node_id);
      BindText(status.get(), 2, w.workload_id());
      BindText(status.get(), 3, w.identity().name());
      sqlite3_bind_int(status.get(), 4, w.status());
      RETURN_IF_ERROR(Run(db, status.get(), "store: migrating workload status"));
    }
  }
  if (rc != SQLITE_DONE) return Error(db, "store: reading nodes to migrate");
  return Exec(db,
              "UPDATE nodes SET evidence_sha256 = COALESCE((SELECT evidence_sha256 FROM "
              "verdicts WHERE verdicts.id = nodes.latest_verdict_id), '')");
}

// Version 3: a node's latest verdict is stored once, as its history row (nodes.latest_verdict_id);
// nodes.verdict is no longer written. A node whose latest verdict has no history row (a
// version 1 file whose history was cut short) gets one from its own copy first.
absl::Status Migrate3(sqlite3* db) {
  ASSIGN_OR_RETURN(Stmt orphans, Prepare(db,
                                         "SELECT node_id, verdict FROM nodes WHERE verdict IS "
                                         "NOT NULL AND (latest_verdict_id IS NULL OR NOT EXISTS "
                                         "(SELECT 1 FROM verdicts WHERE verdicts.id = "
                                         "nodes.latest_verdict_id))"));
  ASSIGN_OR_RETURN(Stmt insert, Prepare(db,
                                        "INSERT INTO verdicts (node_id, verdict, "
                                        "appraised_unix_nano, status, evidence_sha256, "
                                        "policy_digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  ASSIGN_OR_RETURN(Stmt workload, Prepare(db,
                                          "INSERT OR IGNORE INTO verdict_workloads (verdict_id, "
                                          "workload_id, name, status) VALUES (?1, ?2, ?3, ?4)"));
  ASSIGN_OR_RETURN(Stmt link,
                   Prepare(db, "UPDATE nodes SET latest_verdict_id = ?2 WHERE node_id = ?1"));
  int rc;
  while ((rc = sqlite3_step(orphans.get())) == SQLITE_ROW) {
    const std::string node_id = ColumnBytes(orphans.get(), 0);
    const std::string bytes = ColumnBytes(orphans.get(), 1);
    v1::Verdict verdict;
    if (!store_internal::DecodeStoredVerdict(bytes, verdict)) {
      return absl::DataLossError(
          absl::StrCat("store: node ", node_id, ": stored verdict does not parse"));
    }
    BindText(insert.get(), 1, node_id);
    BindBlob(insert.get(), 2, bytes);
    sqlite3_bind_int64(insert.get(), 3, verdict.appraised_unix_nano());
    sqlite3_bind_int(insert.get(), 4, verdict.status());
    BindText(insert.get(), 5, verdict.evidence_sha256());
    BindText(insert.get(), 6, verdict.policy_digest());
    RETURN_IF_ERROR(Run(db, insert.get(), "store: migrating a node's latest verdict"));
    const int64_t id = sqlite3_last_insert_rowid(db);
    RETURN_IF_ERROR(InsertWorkloadVerdicts(db, workload.get(), id, verdict));
    BindText(link.get(), 1, node_id);
    sqlite3_bind_int64(link.get(), 2, id);
    RETURN_IF_ERROR(Run(db, link.get(), "store: migrating a node's latest verdict"));
  }
  if (rc != SQLITE_DONE) return Error(db, "store: reading nodes to migrate");
  orphans.reset();
  return Exec(db, "UPDATE nodes SET verdict = NULL WHERE verdict IS NOT NULL");
}

absl::StatusOr<bool> TableExists(sqlite3* db, const char* name) {
  ASSIGN_OR_RETURN(Stmt s,
                   Prepare(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1"));
  BindText(s.get(), 1, name);
  const int rc = sqlite3_step(s.get());
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error(db, "store: reading the schema");
  return rc == SQLITE_ROW;
}

absl::StatusOr<int> SingleInt(sqlite3* db, const char* sql) {
  ASSIGN_OR_RETURN(Stmt s, Prepare(db, sql));
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return 0;
  if (rc != SQLITE_ROW) return Error(db, sql);
  return sqlite3_column_int(s.get(), 0);
}

absl::StatusOr<int> CurrentVersion(sqlite3* db) {
  ASSIGN_OR_RETURN(bool has_migrations, TableExists(db, "schema_migrations"));
  if (has_migrations) {
    return SingleInt(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  }
  // Written before schema_migrations existed: version 1 kept its number in results_schema.
  ASSIGN_OR_RETURN(bool has_results, TableExists(db, "results_schema"));
  if (has_results) return SingleInt(db, "SELECT COALESCE(MAX(version), 0) FROM results_schema");
  return 0;
}

absl::Status ApplyMigration(sqlite3* db, int version) {
  switch (version) {
    case 1:
      RETURN_IF_ERROR(Exec(db, kSchema1));
      return Exec(db, "DELETE FROM results_schema; INSERT INTO results_schema VALUES (1)");
    case 2:
      RETURN_IF_ERROR(Exec(db, kSchema2));
      return Backfill2(db);
    case 3:
      return Migrate3(db);
    case 4:
      // Verdicts may be stored in their compact form from now on (store_internal.h,
      // EncodeStoredVerdict); the rows already stored stay as they are. The number alone
      // keeps a verifier that cannot read that form from opening the file.
      return absl::OkStatus();
    case 5:
      // Verdicts and evidence may be stored LZ4-compressed from now on (store_internal.h,
      // CompressStored); the rows already stored stay as they are, and the number keeps a
      // verifier that cannot expand them from opening the file.
      return absl::OkStatus();
    default:
      return absl::InternalError(absl::StrCat("store: no migration to version ", version));
  }
}

}  // namespace

absl::Status MigrateStoreSchema(sqlite3* db) {
  return InTransaction(db, [db]() -> absl::Status {
    ASSIGN_OR_RETURN(const int version, CurrentVersion(db));
    if (version > kStoreSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "store: the database has schema version ", version, ", newer than this verifier's (",
          kStoreSchemaVersion, "); run a verifier at least as new as the one that wrote it"));
    }
    RETURN_IF_ERROR(Exec(db,
                         "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY "
                         "KEY, applied_unix_nano INTEGER NOT NULL)"));
    // A version 1 file predates schema_migrations: record the version it already has.
    for (int v = 1; v <= version; ++v) {
      const std::string sql = absl::StrCat(
          "INSERT OR IGNORE INTO schema_migrations (version, applied_unix_nano) VALUES (", v,
          ", 0)");
      RETURN_IF_ERROR(Exec(db, sql.c_str()));
    }
    for (int v = version + 1; v <= kStoreSchemaVersion; ++v) {
      RETURN_IF_ERROR(ApplyMigration(db, v));
      const std::string sql =
          absl::StrCat("INSERT INTO schema_migrations (version, applied_unix_nano) VALUES (", v,
                       ", CAST((julianday('now') - 2440587.5) * 86400000000000 AS INTEGER))");
      RETURN_IF_ERROR(Exec(db, sql.c_str()));
    }
    // Verifiers that only know results_schema refuse the file instead of writing to it.
    const std::string mark =
        absl::StrCat("UPDATE results_schema SET version = ", kStoreSchemaVersion);
    return Exec(db, mark.c_str());
  });
}

}  // namespace vigil::verifier::sqlite
