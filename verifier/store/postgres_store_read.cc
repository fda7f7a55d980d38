// PostgresStore's readers: one connection of their own, each read in one read-only
// snapshot, so they only ever see committed transactions of every replica.
#include <algorithm>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "verifier/store/postgres_store.h"
#include "verifier/store/postgres_util.h"
#include "verifier/store/store_internal.h"
#include "verifier/store/tokens.h"

namespace vigil::verifier {
namespace {

using store_internal::DecodeStoredEvidence;
using store_internal::DecodeStoredVerdict;
using store_internal::PageSize;
using Snapshot = pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>;

std::string Bytes(const pqxx::field& f) {
  if (f.is_null()) return "";
  return pqxx::binarystring(f).str();
}

// A node is connected on another replica when a live connection other than this replica's
// writer recorded an open stream of it.
constexpr char kNodeColumns[] =
    "SELECT n.node_id, n.hostname, n.verdict, n.last_seen_unix_nano, n.revoked, n.revoked_by, "
    "n.revoked_unix_nano, n.revoked_reason, EXISTS (SELECT 1 FROM node_streams s JOIN "
    "pg_stat_activity a ON a.pid = s.backend_pid AND a.backend_start = s.backend_start WHERE "
    "s.node_id = n.node_id AND s.streams > 0 AND s.backend_pid <> $1) FROM nodes n";

// A node's row with its latest verdict parsed (`cached` gets the row as a replica keeps it).
absl::StatusOr<NodeResultSummary> NodeRow(const pqxx::row& r, store_internal::CachedNode* cached) {
  NodeResultSummary s;
  s.node_id = r[0].as<std::string>();
  s.hostname = r[1].as<std::string>();
  s.last_seen_unix_nano = r[3].as<int64_t>();
  s.revoked = r[4].as<bool>();
  s.revoked_by = r[5].as<std::string>();
  s.revoked_unix_nano = r[6].as<int64_t>();
  s.revoked_reason = r[7].as<std::string>();
  s.connected = r[8].as<bool>();
  cached->summary = s;
  cached->latest_verdict = Bytes(r[2]);
  if (!DecodeStoredVerdict(cached->latest_verdict, s.latest_verdict)) {
    return absl::DataLossError(
        absl::StrCat("store: node ", s.node_id, ": stored verdict does not parse"));
  }
  return s;
}

std::vector<v1::PolicyInfo> PolicyRows(const pqxx::result& rows) {
  std::vector<v1::PolicyInfo> out;
  for (const pqxx::row& r : rows) {
    v1::PolicyInfo& p = out.emplace_back();
    p.set_name(r[0].as<std::string>());
    p.set_revision(static_cast<uint64_t>(r[1].as<int64_t>()));
    p.set_sha256(r[2].as<std::string>());
    p.set_updated_unix_nano(r[3].as<int64_t>());
    p.set_updated_by(r[4].as<std::string>());
    p.set_yaml(r[5].as<std::string>());
  }
  return out;
}

// Hands up to `size` of `rows` (which start with id, time and hold at most size + 1) to
// `add`; the token of the next page ("" when none). `add` returns false for a row that does
// not fit the page, which then ends before it.
template <typename Add>
absl::StatusOr<std::string> CollectPage(const pqxx::result& rows, uint32_t size, Add add) {
  PageKey last;
  uint32_t taken = 0;
  for (const pqxx::row& r : rows) {
    if (taken == size) return EncodePageToken(last);
    const PageKey key{.time_unix_nano = r[1].as<int64_t>(), .id = r[0].as<int64_t>()};
    ASSIGN_OR_RETURN(const bool added, add(r, key));
    if (!added) return EncodePageToken(last);
    last = key;
    ++taken;
  }
  return std::string();
}

}  // namespace

template <typename T, typename F>
absl::StatusOr<T> PostgresStore::Read(const char* what, F&& body) const {
  std::lock_guard<std::mutex> lock(reader_mu_);
  // A connection the server dropped (a restart) is replaced once, at once.
  for (int attempt = 0;; ++attempt) {
    if (reader_conn_ == nullptr) {
      ASSIGN_OR_RETURN(reader_conn_, pg::Connect(url_, "store"));
    }
    try {
      Snapshot tx(*reader_conn_);
      absl::StatusOr<T> out = body(tx);
      tx.commit();
      return out;
    } catch (const std::exception& e) {
      if (pg::IsTransient(e) && !reader_conn_->is_open()) {
        reader_conn_.reset();
        if (attempt == 0) continue;
      }
      return pg::FromException(e, what);
    }
  }
}

std::vector<NodeResultSummary> PostgresStore::MergeLocal(
    std::map<std::string, NodeResultSummary> nodes) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [node_id, seen] : local_seen_) {
    NodeResultSummary& s = nodes[node_id];
    s.node_id = node_id;
    s.last_seen_unix_nano = std::max(s.last_seen_unix_nano, seen);
  }
  for (const auto& [node_id, open] : open_streams_) nodes[node_id].connected = true;
  std::vector<NodeResultSummary> out;
  out.reserve(nodes.size());
  for (auto& [id, summary] : nodes) out.push_back(std::move(summary));
  return out;
}

void PostgresStore::CacheNodes(std::vector<store_internal::CachedNode> nodes, bool complete) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (complete) cached_.clear();
  for (store_internal::CachedNode& n : nodes) {
    const std::string node_id = n.summary.node_id;
    cached_[node_id] = std::move(n);
  }
}

std::vector<NodeResultSummary> PostgresStore::ListNodes() const {
  const int pid = writer_pid_;
  std::vector<store_internal::CachedNode> rows;
  absl::StatusOr<std::vector<NodeResultSummary>> read = Read<std::vector<NodeResultSummary>>(
      "store: listing nodes",
      [pid, &rows](Snapshot& tx) -> absl::StatusOr<std::vector<NodeResultSummary>> {
        std::vector<NodeResultSummary> out;
        rows.clear();
        for (const pqxx::row& r :
             tx.exec_params(std::string(kNodeColumns) + " ORDER BY n.node_id", pid)) {
          ASSIGN_OR_RETURN(NodeResultSummary s, NodeRow(r, &rows.emplace_back()));
          out.push_back(std::move(s));
        }
        return out;
      });
  std::map<std::string, NodeResultSummary> nodes;
  if (read.ok()) {
    CacheNodes(std::move(rows), /*complete=*/true);
    for (NodeResultSummary& s : *read) nodes[s.node_id] = std::move(s);
  } else {
    // Served from what this replica last read or committed.
    spdlog::warn("{}; answering from this replica's last view", read.status().ToString());
    std::vector<store_internal::CachedNode> cached;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, n] : cached_) cached.push_back(n);
    }
    for (const store_internal::CachedNode& n : cached) {
      nodes[n.summary.node_id] = store_internal::Materialize(n);
    }
  }
  return MergeLocal(std::move(nodes));
}

std::vector<NodeName> PostgresStore::NodeNames() const {
  absl::StatusOr<std::vector<NodeName>> read = Read<std::vector<NodeName>>(
      "store: listing node names", [](Snapshot& tx) -> absl::StatusOr<std::vector<NodeName>> {
        std::vector<NodeName> out;
        for (const pqxx::row& r : tx.exec("SELECT node_id, hostname FROM nodes")) {
          out.push_back({r[0].as<std::string>(), r[1].is_null() ? "" : r[1].as<std::string>()});
        }
        return out;
      });
  std::map<std::string, std::string> names;
  if (read.ok()) {
    for (NodeName& n : *read) names[n.node_id] = std::move(n.hostname);
  } else {
    spdlog::warn("{}; answering from this replica's last view", read.status().ToString());
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, n] : cached_) names[id] = n.summary.hostname;
  }
  {
    // As ListNodes: nodes whose streams opened here before any of their rows was written.
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, seen] : local_seen_) names.try_emplace(id);
    for (const auto& [id, open] : open_streams_) names.try_emplace(id);
  }
  std::vector<NodeName> out;
  out.reserve(names.size());
  for (auto& [id, hostname] : names) out.push_back({id, std::move(hostname)});
  return out;
}

std::optional<NodeResultSummary> PostgresStore::FindNode(const std::string& node_id) const {
  const int pid = writer_pid_;
  std::vector<store_internal::CachedNode> rows;
  absl::StatusOr<std::vector<NodeResultSummary>> read = Read<std::vector<NodeResultSummary>>(
      "store: reading a node",
      [pid, &node_id, &rows](Snapshot& tx) -> absl::StatusOr<std::vector<NodeResultSummary>> {
        std::vector<NodeResultSummary> out;
        rows.clear();
        for (const pqxx::row& r :
             tx.exec_params(std::string(kNodeColumns) + " WHERE n.node_id = $2", pid, node_id)) {
          ASSIGN_OR_RETURN(NodeResultSummary s, NodeRow(r, &rows.emplace_back()));
          out.push_back(std::move(s));
        }
        return out;
      });
  std::map<std::string, NodeResultSummary> nodes;
  if (read.ok()) {
    CacheNodes(std::move(rows), /*complete=*/false);
    for (NodeResultSummary& s : *read) nodes[s.node_id] = std::move(s);
  } else {
    spdlog::warn("{}; answering from this replica's last view", read.status().ToString());
    std::optional<store_internal::CachedNode> cached;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = cached_.find(node_id); it != cached_.end()) cached = it->second;
    }
    if (cached.has_value()) nodes[node_id] = store_internal::Materialize(*cached);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (nodes.count(node_id) == 0 && local_seen_.count(node_id) == 0) return std::nullopt;
  }
  for (NodeResultSummary& s : MergeLocal(std::move(nodes))) {
    if (s.node_id == node_id) return s;
  }
  return std::nullopt;
}

absl::StatusOr<LatestResult> PostgresStore::Latest(const std::string& node_id) const {
  return Read<LatestResult>(
      "store: reading latest evidence", [&node_id](Snapshot& tx) -> absl::StatusOr<LatestResult> {
        pqxx::result rows = tx.exec_params(
            "SELECT evidence, verdict FROM nodes WHERE node_id = $1 AND evidence IS NOT NULL",
            node_id);
        if (rows.empty())
          return absl::NotFoundError(absl::StrCat("no evidence from node ", node_id));
        LatestResult out;
        if (!DecodeStoredEvidence(Bytes(rows[0][0]), out.evidence) ||
            !DecodeStoredVerdict(Bytes(rows[0][1]), out.verdict)) {
          return absl::DataLossError(
              absl::StrCat("store: node ", node_id, ": stored evidence does not parse"));
        }
        return out;
      });
}

absl::StatusOr<VerdictPage> PostgresStore::ListVerdicts(const VerdictQuery& query) const {
  std::optional<PageKey> after;
  if (!query.page_token.empty()) {
    ASSIGN_OR_RETURN(after, DecodePageToken(query.page_token));
  }
  const uint32_t page_size = PageSize(query.page_size);
  std::string statuses = "{";
  for (size_t i = 0; i < query.statuses.size(); ++i) {
    if (!v1::TrustStatus_IsValid(query.statuses[i])) {
      return absl::InvalidArgumentError(absl::StrCat("unknown status ", query.statuses[i]));
    }
    absl::StrAppend(&statuses, i == 0 ? "" : ",", static_cast<int>(query.statuses[i]));
  }
  statuses += "}";
  // One statement for every filter: an empty filter's condition is constant and planned away.
  return Read<VerdictPage>(
      "store: listing verdicts", [&](Snapshot& tx) -> absl::StatusOr<VerdictPage> {
        pqxx::result rows = tx.exec_params(
            "SELECT v.id, v.appraised_unix_nano, v.verdict FROM verdicts v WHERE "
            "($1::text = '' OR v.node_id = $1::text) "
            "AND ($2::text = '' OR EXISTS (SELECT 1 FROM verdict_workloads w WHERE w.verdict_id = "
            "v.id AND (w.workload_id = $2::text OR w.name = $2::text) AND "
            "(cardinality($3::int[]) = 0 OR w.status = ANY($3::int[])))) "
            "AND ($2::text <> '' OR cardinality($3::int[]) = 0 OR v.status = ANY($3::int[])) "
            "AND ($4::bigint = 0 OR v.appraised_unix_nano >= $4::bigint) "
            "AND ($5::bigint = 0 OR v.appraised_unix_nano < $5::bigint) "
            "AND (NOT $6::boolean OR (v.appraised_unix_nano, v.id) < ($7::bigint, $8::bigint)) "
            "ORDER BY v.appraised_unix_nano DESC, v.id DESC LIMIT $9::bigint",
            query.node_id, query.workload, statuses, query.since_unix_nano, query.until_unix_nano,
            after.has_value(), after ? after->time_unix_nano : 0, after ? after->id : 0,
            static_cast<int64_t>(page_size) + 1);
        VerdictPage page;
        size_t bytes = 0;
        ASSIGN_OR_RETURN(
            page.next_page_token,
            CollectPage(rows, page_size,
                        [&](const pqxx::row& r, const PageKey& key) -> absl::StatusOr<bool> {
                          v1::Verdict verdict;
                          if (!DecodeStoredVerdict(Bytes(r[2]), verdict)) {
                            return absl::DataLossError(
                                absl::StrCat("store: stored verdict ", key.id, " does not parse"));
                          }
                          if (!JoinsPage(verdict.ByteSizeLong(), query.max_bytes, bytes)) {
                            return false;
                          }
                          page.verdicts.push_back(std::move(verdict));
                          return true;
                        }));
        return page;
      });
}

absl::StatusOr<ChangesPage> PostgresStore::ChangesAfter(const std::string& cursor,
                                                        const std::string& node_id,
                                                        size_t limit) const {
  ASSIGN_OR_RETURN(const int64_t after, DecodeChangeCursor(cursor));
  return Read<ChangesPage>(
      "store: reading changes", [&](Snapshot& tx) -> absl::StatusOr<ChangesPage> {
        // One snapshot: the pruned mark and the rows agree.
        const int64_t pruned_through =
            tx.exec("SELECT value FROM store_meta WHERE key = 'changes_pruned_through'")[0][0]
                .as<int64_t>();
        if (!cursor.empty() && after < pruned_through) {
          return absl::OutOfRangeError(
              "the cursor is older than the retained changes; some changes after it were deleted");
        }
        pqxx::result rows = tx.exec_params(
            "SELECT id, node_id, workload_id, workload_name, previous_status, status, verdict FROM "
            "verdict_changes WHERE id > $1 AND ($2::text = '' OR node_id = $2::text) ORDER BY id "
            "LIMIT $3",
            after, node_id, static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX)));
        ChangesPage out;
        out.cursor = cursor;
        for (const pqxx::row& r : rows) {
          v1::VerdictChange& c = out.changes.emplace_back();
          c.set_cursor(EncodeChangeCursor(r[0].as<int64_t>()));
          c.set_node_id(r[1].as<std::string>());
          c.set_workload_id(r[2].as<std::string>());
          c.set_workload_name(r[3].as<std::string>());
          c.set_previous_status(static_cast<v1::TrustStatus>(r[4].as<int>()));
          c.set_status(static_cast<v1::TrustStatus>(r[5].as<int>()));
          if (!DecodeStoredVerdict(Bytes(r[6]), *c.mutable_verdict())) {
            return absl::DataLossError("store: a stored status change does not parse");
          }
          out.cursor = c.cursor();
        }
        return out;
      });
}

std::string PostgresStore::LatestCursor() const {
  absl::StatusOr<int64_t> newest = Read<int64_t>(
      "store: reading the newest change", [](Snapshot& tx) -> absl::StatusOr<int64_t> {
        // Ids commit in order (see the class comment), so the greatest committed id is a
        // cursor no later commit falls behind. Retention may have removed every row.
        return tx
            .exec(
                "SELECT GREATEST(COALESCE((SELECT MAX(id) FROM verdict_changes), 0), (SELECT "
                "value FROM store_meta WHERE key = 'changes_pruned_through'))")[0][0]
            .as<int64_t>();
      });
  std::lock_guard<std::mutex> lock(mu_);
  if (newest.ok()) {
    last_change_id_ = std::max(last_change_id_, *newest);
  } else {
    spdlog::warn("{}; using this replica's newest known change", newest.status().ToString());
  }
  return last_change_id_ == 0 ? "" : EncodeChangeCursor(last_change_id_);
}

absl::StatusOr<std::vector<v1::PolicyInfo>> PostgresStore::ListPolicies() const {
  return Read<std::vector<v1::PolicyInfo>>(
      "store: reading policies", [](Snapshot& tx) -> absl::StatusOr<std::vector<v1::PolicyInfo>> {
        return PolicyRows(tx.exec(
            "SELECT r.name, r.revision, r.sha256, r.updated_unix_nano, r.updated_by, r.yaml FROM "
            "policies p JOIN policy_revisions r ON r.name = p.name AND r.revision = p.revision "
            "ORDER BY p.name"));
      });
}

absl::StatusOr<std::vector<v1::PolicyInfo>> PostgresStore::PolicyRevisions(
    const std::string& name) const {
  ASSIGN_OR_RETURN(std::vector<v1::PolicyInfo> out,
                   Read<std::vector<v1::PolicyInfo>>(
                       "store: reading policy revisions",
                       [&name](Snapshot& tx) -> absl::StatusOr<std::vector<v1::PolicyInfo>> {
                         return PolicyRows(tx.exec_params(
                             "SELECT name, revision, sha256, updated_unix_nano, updated_by, "
                             "yaml FROM policy_revisions WHERE name = $1 ORDER BY revision DESC",
                             name));
                       }));
  if (out.empty()) return absl::NotFoundError(absl::StrCat("no policy named ", name));
  return out;
}

absl::StatusOr<AuditPage> PostgresStore::ListAudit(uint32_t page_size,
                                                   const std::string& page_token) const {
  std::optional<PageKey> after;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(after, DecodePageToken(page_token));
  }
  const uint32_t size = PageSize(page_size);
  return Read<AuditPage>(
      "store: reading the audit log", [&](Snapshot& tx) -> absl::StatusOr<AuditPage> {
        pqxx::result rows = tx.exec_params(
            "SELECT id, time_unix_nano, actor, action, target, detail FROM audit_log WHERE NOT "
            "$1::boolean OR (time_unix_nano, id) < ($2::bigint, $3::bigint) ORDER BY "
            "time_unix_nano DESC, id DESC LIMIT $4::bigint",
            after.has_value(), after ? after->time_unix_nano : 0, after ? after->id : 0,
            static_cast<int64_t>(size) + 1);
        AuditPage page;
        ASSIGN_OR_RETURN(
            page.next_page_token,
            CollectPage(rows, size,
                        [&page](const pqxx::row& r, const PageKey& key) -> absl::StatusOr<bool> {
                          v1::AuditRecord& a = page.records.emplace_back();
                          a.set_time_unix_nano(key.time_unix_nano);
                          a.set_actor(r[2].as<std::string>());
                          a.set_action(r[3].as<std::string>());
                          a.set_target(r[4].as<std::string>());
                          a.set_detail(r[5].as<std::string>());
                          return true;
                        }));
        return page;
      });
}

}  // namespace vigil::verifier
