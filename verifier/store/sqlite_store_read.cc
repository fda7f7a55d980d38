// SqliteStore's readers: one connection of their own, so they only ever see committed
// transactions and never wait for the writer's fsync.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "verifier/store/sqlite_store.h"
#include "verifier/store/store_internal.h"
#include "verifier/store/tokens.h"

namespace vigil::verifier {

using sqlite::BindText;
using sqlite::ColumnBytes;
using sqlite::ColumnView;
using sqlite::Prepare;
using sqlite::Stmt;
using store_internal::DecodeStoredEvidence;
using store_internal::DecodeStoredVerdict;
using store_internal::PageSize;

namespace {

absl::StatusOr<v1::PolicyInfo> PolicyRow(sqlite3_stmt* s) {
  v1::PolicyInfo p;
  p.set_name(ColumnBytes(s, 0));
  p.set_revision(static_cast<uint64_t>(sqlite3_column_int64(s, 1)));
  p.set_sha256(ColumnBytes(s, 2));
  p.set_updated_unix_nano(sqlite3_column_int64(s, 3));
  p.set_updated_by(ColumnBytes(s, 4));
  p.set_yaml(ColumnBytes(s, 5));
  return p;
}

// Runs a prepared policy query and collects its rows.
absl::StatusOr<std::vector<v1::PolicyInfo>> PolicyRows(sqlite3* db, sqlite3_stmt* s) {
  std::vector<v1::PolicyInfo> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ASSIGN_OR_RETURN(v1::PolicyInfo p, PolicyRow(s));
    out.push_back(std::move(p));
  }
  if (rc != SQLITE_DONE) return sqlite::Error(db, "store: reading policies");
  return out;
}

// Steps `s`, whose rows start with (id, time) and which was limited to `size` + 1 rows:
// hands up to `size` rows to `add` and returns the token of the next page ("" when none).
// `add` returns false for a row that does not fit the page, which then ends before it.
template <typename Add>
absl::StatusOr<std::string> CollectPage(sqlite3* db, sqlite3_stmt* s, uint32_t size, Add add) {
  PageKey last;
  uint32_t taken = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (taken == size) return EncodePageToken(last);
    const PageKey key{.time_unix_nano = sqlite3_column_int64(s, 1),
                      .id = sqlite3_column_int64(s, 0)};
    ASSIGN_OR_RETURN(const bool added, add(s, key));
    if (!added) return EncodePageToken(last);
    last = key;
    ++taken;
  }
  if (rc != SQLITE_DONE) return sqlite::Error(db, "store: listing");
  return std::string();
}

}  // namespace

std::vector<NodeResultSummary> SqliteStore::WithLatestVerdicts(
    std::vector<CachedSummary> nodes) const {
  std::vector<NodeResultSummary> out;
  out.reserve(nodes.size());
  std::lock_guard<std::mutex> lock(reader_mu_);
  sqlite3* db = reader_db_.get();
  // By the row the summary names, so the verdict is the one its fields were published with;
  // when retention removed that row since (the node has a newer one), by the node's row.
  absl::StatusOr<Stmt> latest = Prepare(db,
                                        "SELECT COALESCE((SELECT verdict FROM verdicts WHERE id "
                                        "= ?1), (SELECT v.verdict FROM nodes n JOIN verdicts v ON "
                                        "v.id = n.latest_verdict_id WHERE n.node_id = ?2))");
  if (!latest.ok())
    spdlog::error("store: cannot read latest verdicts: {}", latest.status().ToString());
  for (CachedSummary& node : nodes) {
    NodeResultSummary& s = out.emplace_back(std::move(node.summary));
    if (node.latest_verdict_id == 0 || !latest.ok()) continue;
    sqlite3_stmt* q = latest->get();
    sqlite3_bind_int64(q, 1, node.latest_verdict_id);
    BindText(q, 2, s.node_id);
    const int rc = sqlite3_step(q);
    const bool found = rc == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL;
    if (!found || !DecodeStoredVerdict(ColumnView(q, 0), s.latest_verdict)) {
      spdlog::error("store: node {}: latest verdict not readable: {}", s.node_id,
                    rc != SQLITE_ROW ? sqlite3_errmsg(db)
                    : found          ? "it does not parse"
                                     : "no row holds it");
      s.latest_verdict.Clear();
    }
    sqlite3_reset(q);
  }
  return out;
}

std::vector<NodeResultSummary> SqliteStore::ListNodes() const {
  // Copied under the lock, the verdicts read outside it: the writer publishes under it.
  std::vector<CachedSummary> nodes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    nodes.reserve(summaries_.size());
    for (const auto& [id, node] : summaries_) nodes.push_back(node);
  }
  return WithLatestVerdicts(std::move(nodes));
}

std::vector<NodeName> SqliteStore::NodeNames() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<NodeName> out;
  out.reserve(summaries_.size());
  for (const auto& [id, node] : summaries_) out.push_back({id, node.summary.hostname});
  return out;
}

std::optional<NodeResultSummary> SqliteStore::FindNode(const std::string& node_id) const {
  std::vector<CachedSummary> node;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = summaries_.find(node_id);
    if (it == summaries_.end()) return std::nullopt;
    node.push_back(it->second);
  }
  return std::move(WithLatestVerdicts(std::move(node)).front());
}

bool SqliteStore::IsRevoked(const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = summaries_.find(node_id);
  return it != summaries_.end() && it->second.summary.revoked;
}

absl::StatusOr<LatestResult> SqliteStore::Latest(const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(reader_mu_);
  sqlite3* db = reader_db_.get();
  ASSIGN_OR_RETURN(Stmt s, Prepare(db,
                                   "SELECT n.evidence, v.verdict FROM nodes n LEFT JOIN "
                                   "verdicts v ON v.id = n.latest_verdict_id WHERE n.node_id = "
                                   "?1 AND n.evidence IS NOT NULL"));
  BindText(s.get(), 1, node_id);
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE)
    return absl::NotFoundError(absl::StrCat("no evidence from node ", node_id));
  if (rc != SQLITE_ROW) return sqlite::Error(db, "store: reading latest evidence");
  LatestResult out;
  if (!DecodeStoredEvidence(ColumnView(s.get(), 0), out.evidence) ||
      !DecodeStoredVerdict(ColumnView(s.get(), 1), out.verdict)) {
    return absl::DataLossError(
        absl::StrCat("store: node ", node_id, ": stored evidence does not parse"));
  }
  return out;
}

absl::StatusOr<VerdictPage> SqliteStore::ListVerdicts(const VerdictQuery& query) const {
  std::optional<PageKey> after;
  if (!query.page_token.empty()) {
    ASSIGN_OR_RETURN(after, DecodePageToken(query.page_token));
  }
  const uint32_t page_size = PageSize(query.page_size);
  for (v1::TrustStatus status : query.statuses) {
    if (!v1::TrustStatus_IsValid(status)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown status ", status));
    }
  }
  // Only fixed SQL text and numbered parameters; the values are bound below.
  std::string sql = "SELECT v.id, v.appraised_unix_nano, v.verdict FROM verdicts v WHERE 1";
  const std::string status_column = query.workload.empty() ? "v.status" : "w.status";
  if (!query.workload.empty()) {
    sql =
        "SELECT v.id, v.appraised_unix_nano, v.verdict FROM verdicts v WHERE EXISTS (SELECT 1 "
        "FROM verdict_workloads w WHERE w.verdict_id = v.id AND (w.workload_id = ?2 OR "
        "w.name = ?2)";
    if (!query.statuses.empty()) {
      sql += " AND w.status IN (SELECT value FROM json_each(?3))";
    }
    sql += ")";
  } else if (!query.statuses.empty()) {
    sql += " AND v.status IN (SELECT value FROM json_each(?3))";
  }
  if (!query.node_id.empty()) sql += " AND v.node_id = ?1";
  if (query.since_unix_nano != 0) sql += " AND v.appraised_unix_nano >= ?4";
  if (query.until_unix_nano != 0) sql += " AND v.appraised_unix_nano < ?5";
  if (after) sql += " AND (v.appraised_unix_nano, v.id) < (?6, ?7)";
  sql += " ORDER BY v.appraised_unix_nano DESC, v.id DESC LIMIT ?8";

  std::string statuses = "[";
  for (size_t i = 0; i < query.statuses.size(); ++i) {
    absl::StrAppend(&statuses, i == 0 ? "" : ",", static_cast<int>(query.statuses[i]));
  }
  statuses += "]";

  std::lock_guard<std::mutex> lock(reader_mu_);
  sqlite3* db = reader_db_.get();
  ASSIGN_OR_RETURN(Stmt s, Prepare(db, sql.c_str()));
  BindText(s.get(), 1, query.node_id);
  BindText(s.get(), 2, query.workload);
  BindText(s.get(), 3, statuses);
  sqlite3_bind_int64(s.get(), 4, query.since_unix_nano);
  sqlite3_bind_int64(s.get(), 5, query.until_unix_nano);
  if (after) {
    sqlite3_bind_int64(s.get(), 6, after->time_unix_nano);
    sqlite3_bind_int64(s.get(), 7, after->id);
  }
  // One more than asked tells whether another page exists.
  sqlite3_bind_int64(s.get(), 8, static_cast<int64_t>(page_size) + 1);
  VerdictPage page;
  size_t bytes = 0;
  ASSIGN_OR_RETURN(page.next_page_token,
                   CollectPage(db, s.get(), page_size,
                               [&](sqlite3_stmt* row, const PageKey& key) -> absl::StatusOr<bool> {
                                 v1::Verdict verdict;
                                 if (!DecodeStoredVerdict(ColumnView(row, 2), verdict)) {
                                   return absl::DataLossError(absl::StrCat(
                                       "store: stored verdict ", key.id, " does not parse"));
                                 }
                                 if (!JoinsPage(verdict.ByteSizeLong(), query.max_bytes, bytes))
                                   return false;
                                 page.verdicts.push_back(std::move(verdict));
                                 return true;
                               }));
  return page;
}

absl::StatusOr<ChangesPage> SqliteStore::ChangesAfter(const std::string& cursor,
                                                      const std::string& node_id,
                                                      size_t limit) const {
  ASSIGN_OR_RETURN(const int64_t after, DecodeChangeCursor(cursor));
  std::lock_guard<std::mutex> lock(reader_mu_);
  sqlite3* db = reader_db_.get();
  // One read transaction: the pruned mark and the rows come from the same snapshot.
  RETURN_IF_ERROR(sqlite::Exec(db, "BEGIN"));
  auto end = [db] { sqlite::Exec(db, "COMMIT").IgnoreError(); };
  absl::StatusOr<ChangesPage> page = [&]() -> absl::StatusOr<ChangesPage> {
    ASSIGN_OR_RETURN(Stmt pruned, Prepare(db,
                                          "SELECT value FROM store_meta WHERE key = "
                                          "'changes_pruned_through'"));
    const int64_t pruned_through =
        sqlite3_step(pruned.get()) == SQLITE_ROW ? sqlite3_column_int64(pruned.get(), 0) : 0;
    if (!cursor.empty() && after < pruned_through) {
      return absl::OutOfRangeError(
          "the cursor is older than the retained changes; some changes after it were deleted");
    }
    ASSIGN_OR_RETURN(Stmt s, Prepare(db,
                                     "SELECT id, node_id, workload_id, workload_name, "
                                     "previous_status, status, verdict FROM verdict_changes "
                                     "WHERE id > ?1 AND (?2 = '' OR node_id = ?2) ORDER BY id "
                                     "LIMIT ?3"));
    sqlite3_bind_int64(s.get(), 1, after);
    BindText(s.get(), 2, node_id);
    sqlite3_bind_int64(s.get(), 3, static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX)));
    ChangesPage out;
    out.cursor = cursor;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      v1::VerdictChange& c = out.changes.emplace_back();
      c.set_cursor(EncodeChangeCursor(sqlite3_column_int64(s.get(), 0)));
      c.set_node_id(ColumnBytes(s.get(), 1));
      c.set_workload_id(ColumnBytes(s.get(), 2));
      c.set_workload_name(ColumnBytes(s.get(), 3));
      c.set_previous_status(static_cast<v1::TrustStatus>(sqlite3_column_int(s.get(), 4)));
      c.set_status(static_cast<v1::TrustStatus>(sqlite3_column_int(s.get(), 5)));
      if (!DecodeStoredVerdict(ColumnView(s.get(), 6), *c.mutable_verdict())) {
        return absl::DataLossError("store: a stored status change does not parse");
      }
      out.cursor = c.cursor();
    }
    if (rc != SQLITE_DONE) return sqlite::Error(db, "store: reading changes");
    return out;
  }();
  end();
  return page;
}

std::string SqliteStore::LatestCursor() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_change_id_ == 0 ? "" : EncodeChangeCursor(last_change_id_);
}

absl::StatusOr<std::vector<v1::PolicyInfo>> SqliteStore::ListPolicies() const {
  std::lock_guard<std::mutex> lock(reader_mu_);
  sqlite3* db = reader_db_.get();
  ASSIGN_OR_RETURN(Stmt s, Prepare(db,
                                   "SELECT r.name, r.revision, r.sha256, r.updated_unix_nano, "
                                   "r.updated_by, r.yaml FROM policies p JOIN policy_revisions "
                                   "r ON r.name = p.name AND r.revision = p.revision ORDER BY "
                                   "p.name"));
  return PolicyRows(db, s.get());
}

absl::StatusOr<std::vector<v1::PolicyInfo>> SqliteStore::PolicyRevisions(
    const std::string& name) const {
  std::lock_guard<std::mutex> lock(reader_mu_);
  sqlite3* db = reader_db_.get();
  ASSIGN_OR_RETURN(Stmt s, Prepare(db,
                                   "SELECT name, revision, sha256, updated_unix_nano, "
                                   "updated_by, yaml FROM policy_revisions WHERE name = ?1 "
                                   "ORDER BY revision DESC"));
  BindText(s.get(), 1, name);
  ASSIGN_OR_RETURN(std::vector<v1::PolicyInfo> out, PolicyRows(db, s.get()));
  if (out.empty()) return absl::NotFoundError(absl::StrCat("no policy named ", name));
  return out;
}

absl::StatusOr<AuditPage> SqliteStore::ListAudit(uint32_t page_size,
                                                 const std::string& page_token) const {
  std::optional<PageKey> after;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(after, DecodePageToken(page_token));
  }
  const uint32_t size = PageSize(page_size);
  std::lock_guard<std::mutex> lock(reader_mu_);
  sqlite3* db = reader_db_.get();
  ASSIGN_OR_RETURN(Stmt s, Prepare(db,
                                   "SELECT id, time_unix_nano, actor, action, target, detail "
                                   "FROM audit_log WHERE ?1 = 0 OR (time_unix_nano, id) < "
                                   "(?2, ?3) ORDER BY time_unix_nano DESC, id DESC LIMIT ?4"));
  sqlite3_bind_int(s.get(), 1, after ? 1 : 0);
  sqlite3_bind_int64(s.get(), 2, after ? after->time_unix_nano : 0);
  sqlite3_bind_int64(s.get(), 3, after ? after->id : 0);
  sqlite3_bind_int64(s.get(), 4, static_cast<int64_t>(size) + 1);
  AuditPage page;
  ASSIGN_OR_RETURN(
      page.next_page_token,
      CollectPage(db, s.get(), size,
                  [&page](sqlite3_stmt* row, const PageKey& key) -> absl::StatusOr<bool> {
                    v1::AuditRecord& r = page.records.emplace_back();
                    r.set_time_unix_nano(key.time_unix_nano);
                    r.set_actor(ColumnBytes(row, 2));
                    r.set_action(ColumnBytes(row, 3));
                    r.set_target(ColumnBytes(row, 4));
                    r.set_detail(ColumnBytes(row, 5));
                    return true;
                  }));
  return page;
}

}  // namespace vigil::verifier
