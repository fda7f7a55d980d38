#include "verifier/node_registry.h"

#include <sqlite3.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <map>
#include <string_view>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/status_macros.h"
#include "common/tpm/tpm_public.h"
#include "verifier/node_registry_postgres.h"
#include "verifier/pending_enrollments.h"
#include "verifier/store/sqlite_store.h"
#include "verifier/store/sqlite_util.h"

namespace vigil::verifier {
namespace {

using sqlite::BindBlob;
using sqlite::BindText;
using sqlite::ColumnBytes;
using sqlite::Exec;
using sqlite::Prepare;
using sqlite::Stmt;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS enrolled_nodes(
  node_id TEXT PRIMARY KEY,
  ek_public BLOB NOT NULL,
  ak_public BLOB NOT NULL,
  ak_name BLOB NOT NULL,
  enrolled_unix_nano INTEGER NOT NULL,
  clock INTEGER,
  reset_count INTEGER,
  restart_count INTEGER,
  qualified_signer BLOB,
  srk_public BLOB,
  ak_qualified_name BLOB,
  log_entries INTEGER,
  log_epoch_start INTEGER,
  log_pcrs BLOB,
  tpm_simulated INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS node_approvals(
  node_id TEXT PRIMARY KEY,
  approved_unix_nano INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS node_measurement_log(
  node_id TEXT NOT NULL,
  recnum INTEGER NOT NULL,
  pcr INTEGER NOT NULL,
  digest BLOB NOT NULL,
  event_type TEXT NOT NULL,
  content TEXT NOT NULL,
  PRIMARY KEY(node_id, recnum));
CREATE TABLE IF NOT EXISTS node_spool_ledger(
  node_id TEXT NOT NULL,
  digest BLOB NOT NULL,
  recnum INTEGER NOT NULL,
  delivered INTEGER NOT NULL,
  PRIMARY KEY(node_id, digest));
)sql";

// Columns later versions added to enrolled_nodes, added to a file an earlier one created.
constexpr const char* kAddedColumns[][2] = {{"qualified_signer", "BLOB"},
                                            {"srk_public", "BLOB"},
                                            {"ak_qualified_name", "BLOB"},
                                            {"log_entries", "INTEGER"},
                                            {"log_epoch_start", "INTEGER"},
                                            {"log_pcrs", "BLOB"},
                                            {"tpm_simulated", "INTEGER NOT NULL DEFAULT 0"}};

absl::Status SqlError(sqlite3* db, absl::string_view what) {
  return sqlite::Error(db, absl::StrCat("node registry: ", what));
}

absl::Status AddMissingColumns(sqlite3* db) {
  ASSIGN_OR_RETURN(Stmt info, Prepare(db, "PRAGMA table_info(enrolled_nodes)"));
  std::set<std::string> have;
  while (sqlite3_step(info.get()) == SQLITE_ROW) have.insert(ColumnBytes(info.get(), 1));
  for (const auto& [name, type] : kAddedColumns) {
    if (have.count(name) != 0) continue;
    RETURN_IF_ERROR(Exec(
        db, absl::StrCat("ALTER TABLE enrolled_nodes ADD COLUMN ", name, " ", type, ";").c_str()));
  }
  return absl::OkStatus();
}

}  // namespace

namespace registry_internal {

// log_pcrs: per PCR of the current epoch's replay, its index (4 bytes, big endian) and value.
std::string EncodePcrs(const std::map<uint32_t, Sha256Digest>& pcrs) {
  std::string out;
  for (const auto& [index, value] : pcrs) {
    out += {static_cast<char>(index >> 24), static_cast<char>(index >> 16),
            static_cast<char>(index >> 8), static_cast<char>(index)};
    out += DigestBytes(value);
  }
  return out;
}

absl::StatusOr<std::map<uint32_t, Sha256Digest>> DecodePcrs(std::string_view bytes) {
  constexpr size_t kRecord = 4 + 32;
  if (bytes.size() % kRecord != 0) return absl::DataLossError("log_pcrs has a partial record");
  std::map<uint32_t, Sha256Digest> out;
  for (size_t at = 0; at < bytes.size(); at += kRecord) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + at);
    const uint32_t index =
        (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
    std::copy(p + 4, p + kRecord, out[index].begin());
  }
  return out;
}

absl::StatusOr<std::shared_ptr<NodeState>> MakeState(EnrolledNode node) {
  ASSIGN_OR_RETURN(tpm::TpmPublic ak, tpm::ParseTpm2bPublic(node.ak_public));
  ASSIGN_OR_RETURN(EvpPkeyPtr key, tpm::PublicKeyOf(ak.area));
  return std::make_shared<NodeState>(std::move(node), std::move(key));
}

}  // namespace registry_internal

using registry_internal::DecodePcrs;
using registry_internal::EncodePcrs;
using registry_internal::MakeState;

// The appraisal state's statements, prepared once per connection.
struct NodeRegistry::Writer {
  Stmt begin, commit, rollback, clock, del, ins, put_batch, drop_batch;

  static absl::StatusOr<std::unique_ptr<Writer>> Prepare(sqlite3* db) {
    auto w = std::make_unique<Writer>();
    ASSIGN_OR_RETURN(w->begin, sqlite::Prepare(db, "BEGIN IMMEDIATE", true));
    ASSIGN_OR_RETURN(w->commit, sqlite::Prepare(db, "COMMIT", true));
    ASSIGN_OR_RETURN(w->rollback, sqlite::Prepare(db, "ROLLBACK", true));
    ASSIGN_OR_RETURN(w->clock, sqlite::Prepare(db,
                                               "UPDATE enrolled_nodes SET clock = ?, reset_count = "
                                               "?, restart_count = ?, qualified_signer = ?, "
                                               "log_entries = ?, log_epoch_start = ?, log_pcrs = ? "
                                               "WHERE node_id = ? AND ak_name = ?",
                                               true));
    ASSIGN_OR_RETURN(
        w->del, sqlite::Prepare(db, "DELETE FROM node_measurement_log WHERE node_id = ?", true));
    ASSIGN_OR_RETURN(w->ins, sqlite::Prepare(db,
                                             "INSERT INTO node_measurement_log(node_id, recnum, "
                                             "pcr, digest, event_type, content) VALUES(?, ?, ?, "
                                             "?, ?, ?)",
                                             true));
    ASSIGN_OR_RETURN(w->put_batch, sqlite::Prepare(db,
                                                   "INSERT OR REPLACE INTO node_spool_ledger("
                                                   "node_id, digest, recnum, delivered) "
                                                   "VALUES(?, ?, ?, ?)",
                                                   true));
    ASSIGN_OR_RETURN(
        w->drop_batch,
        sqlite::Prepare(db, "DELETE FROM node_spool_ledger WHERE node_id = ? AND digest = ?",
                        true));
    return w;
  }
};

NodeRegistry::NodeRegistry(sqlite3* db) : db_(db) {}

absl::StatusOr<std::unique_ptr<NodeRegistry>> NodeRegistry::Open(const std::string& db_path) {
  // The file holds EK/AK bindings: created 0600 from the start, never readable by others.
  sqlite::OpenOptions open_options;
  open_options.threading_flag = SQLITE_OPEN_FULLMUTEX;
  ASSIGN_OR_RETURN(sqlite::Db opened, sqlite::OpenPrivate(db_path, open_options));
  sqlite3* db = opened.get();
  std::unique_ptr<NodeRegistry> registry(new NodeRegistry(opened.release()));
  // WAL + synchronous=FULL: each commit is fsynced. Appraisal state is acknowledged to nodes
  // (the log entries the verifier holds) and guards against replay (the clock triple), so it
  // must survive a crash or power cut once acknowledged; commits are grouped (see Flush).
  // Its checkpoints run on the file's checkpointer (shared with the result store), not in
  // these commits.
  ASSIGN_OR_RETURN(registry->checkpointer_, sqlite::MakeDurableWriter(db, db_path));
  RETURN_IF_ERROR(Exec(db, kSchema));
  RETURN_IF_ERROR(AddMissingColumns(db));
  // One verifier: its pending enrollments need not outlive it.
  registry->pending_enrollments_ = std::make_unique<MemoryPendingEnrollments>();
  RETURN_IF_ERROR(registry->Load());
  registry->writer_ = std::thread([r = registry.get()] { r->WriterLoop(); });
  return registry;
}

NodeRegistry::~NodeRegistry() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
  SqliteStore* store;
  {
    absl::MutexLock lock(&mu_);
    store = commit_store_;
  }
  // Leaves the store's batches (LeaveStore runs on its writer thread); what is still marked
  // is written below on the registry's own connection.
  if (store != nullptr) {
    if (absl::Status st = store->Join(nullptr); !st.ok()) {
      spdlog::error("node registry: leaving the store's commits: {}", st.ToString());
    }
  }
  if (absl::Status st = Flush(); !st.ok())
    spdlog::error("node registry: final flush: {}", st.ToString());
  {
    // Statements are finalized before their connection closes.
    absl::MutexLock db_lock(&db_mu_);
    sqlite_writer_.reset();
  }
  if (db_ != nullptr) sqlite3_close(db_);
}

absl::Status NodeRegistry::Load() {
  if (pg_ != nullptr) return LoadPostgres();
  absl::MutexLock db_lock(&db_mu_);
  ASSIGN_OR_RETURN(Stmt nodes, Prepare(db_,
                                       "SELECT node_id, ek_public, ak_public, ak_name, "
                                       "enrolled_unix_nano, clock, reset_count, "
                                       "restart_count, qualified_signer, srk_public, "
                                       "ak_qualified_name, log_entries, log_epoch_start, "
                                       "log_pcrs, tpm_simulated FROM enrolled_nodes"));
  ASSIGN_OR_RETURN(Stmt log, Prepare(db_,
                                     "SELECT recnum, pcr, digest, event_type, content FROM "
                                     "node_measurement_log WHERE node_id = ? ORDER BY recnum"));
  ASSIGN_OR_RETURN(Stmt batches, Prepare(db_,
                                         "SELECT digest, recnum, delivered FROM "
                                         "node_spool_ledger WHERE node_id = ? ORDER BY recnum"));
  // Build every node's state first, then publish: mu_ is never held while a node's mu is taken.
  std::vector<std::shared_ptr<NodeState>> loaded;
  std::vector<std::string> signers;   // loaded[i]'s qualified signer ("" when not known yet)
  std::vector<std::string> upgraded;  // whole logs to rewrite as bounded state
  while (sqlite3_step(nodes.get()) == SQLITE_ROW) {
    EnrolledNode n;
    n.node_id = ColumnBytes(nodes.get(), 0);
    n.ek_public = ColumnBytes(nodes.get(), 1);
    n.ak_public = ColumnBytes(nodes.get(), 2);
    n.ak_name = ColumnBytes(nodes.get(), 3);
    n.enrolled = absl::FromUnixNanos(sqlite3_column_int64(nodes.get(), 4));
    n.srk_public = ColumnBytes(nodes.get(), 9);
    n.ak_qualified_name = ColumnBytes(nodes.get(), 10);
    n.tpm_simulated = sqlite3_column_int64(nodes.get(), 14) != 0;
    auto state = MakeState(n);
    if (!state.ok()) {
      spdlog::error("node registry: node {} has an unusable AK, skipped: {}", n.node_id,
                    state.status().ToString());
      continue;
    }
    absl::MutexLock node_lock(&(*state)->mu);
    if (sqlite3_column_type(nodes.get(), 5) != SQLITE_NULL) {
      (*state)->last_clock =
          QuoteClock{static_cast<uint64_t>(sqlite3_column_int64(nodes.get(), 5)),
                     static_cast<uint32_t>(sqlite3_column_int64(nodes.get(), 6)),
                     static_cast<uint32_t>(sqlite3_column_int64(nodes.get(), 7))};
    }
    // The qualified name computed at enrollment wins over a pin of an earlier binding.
    (*state)->qualified_signer =
        n.ak_qualified_name.empty() ? ColumnBytes(nodes.get(), 8) : n.ak_qualified_name;
    signers.push_back((*state)->qualified_signer);
    sqlite3_reset(log.get());
    BindText(log.get(), 1, n.node_id);
    std::vector<v1::MeasurementLogEntry> rows;
    while (sqlite3_step(log.get()) == SQLITE_ROW) {
      v1::MeasurementLogEntry e;
      e.set_recnum(static_cast<uint64_t>(sqlite3_column_int64(log.get(), 0)));
      e.set_pcr(static_cast<uint32_t>(sqlite3_column_int64(log.get(), 1)));
      e.set_digest(ColumnBytes(log.get(), 2));
      e.set_event_type(ColumnBytes(log.get(), 3));
      e.set_content(ColumnBytes(log.get(), 4));
      rows.push_back(std::move(e));
    }
    MeasurementState& m = (*state)->measurements;
    if (sqlite3_column_type(nodes.get(), 11) != SQLITE_NULL) {
      m.entries = static_cast<uint64_t>(sqlite3_column_int64(nodes.get(), 11));
      m.epoch_start = static_cast<uint64_t>(sqlite3_column_int64(nodes.get(), 12));
      absl::StatusOr<std::map<uint32_t, Sha256Digest>> pcrs =
          DecodePcrs(ColumnBytes(nodes.get(), 13));
      m.pcrs = pcrs.ok() ? *std::move(pcrs) : std::map<uint32_t, Sha256Digest>();
      m.kept = std::move(rows);
      if (!pcrs.ok()) {
        // Held nothing: the node is told so and sends its whole log again.
        spdlog::error("node registry: node {} measurement state unreadable ({}); it starts over",
                      n.node_id, pcrs.status().ToString());
        m = MeasurementState();
      }
    } else if (!rows.empty()) {
      // Written by a version that kept logs whole: keep only what appraisal needs.
      absl::StatusOr<MeasurementState> from_log = MeasurementState::FromLog(rows);
      if (from_log.ok()) {
        m = *std::move(from_log);
      } else {
        spdlog::error("node registry: node {} measurement log unreadable ({}); it starts over",
                      n.node_id, from_log.status().ToString());
      }
      upgraded.push_back(n.node_id);
    }
    sqlite3_reset(batches.get());
    BindText(batches.get(), 1, n.node_id);
    while (sqlite3_step(batches.get()) == SQLITE_ROW) {
      (*state)->spool_batches.Restore(ColumnBytes(batches.get(), 0),
                                      static_cast<uint64_t>(sqlite3_column_int64(batches.get(), 1)),
                                      sqlite3_column_int64(batches.get(), 2) != 0);
    }
    loaded.push_back(*state);
  }
  ASSIGN_OR_RETURN(Stmt approvals, Prepare(db_, "SELECT node_id FROM node_approvals"));
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < loaded.size(); ++i) {
    const auto& state = loaded[i];
    node_by_ak_[state->node().ak_name] = state->node().node_id;
    if (!signers[i].empty()) node_by_ak_[signers[i]] = state->node().node_id;
    nodes_[state->node().node_id] = state;
  }
  while (sqlite3_step(approvals.get()) == SQLITE_ROW) {
    approved_.insert(ColumnBytes(approvals.get(), 0));
  }
  dirty_.insert(upgraded.begin(), upgraded.end());
  return absl::OkStatus();
}

absl::Status NodeRegistry::Bind(const EnrolledNode& node) {
  ASSIGN_OR_RETURN(std::shared_ptr<NodeState> state, MakeState(node));
  {
    absl::MutexLock node_lock(&state->mu);
    state->qualified_signer = node.ak_qualified_name;
  }
  if (pg_ != nullptr) {
    RETURN_IF_ERROR(BindPostgres(node));
  } else {
    // The file's write turn before db_mu_, as every writer of the file takes them (the store's
    // writer holds it through its batch, joined writes included).
    std::unique_lock<sqlite::WriteTurns> turn = sqlite::WriteTurnOf(checkpointer_.get());
    absl::MutexLock db_lock(&db_mu_);
    RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
    absl::Cleanup rollback = [this] { (void)Exec(db_, "ROLLBACK"); };
    ASSIGN_OR_RETURN(Stmt del, Prepare(db_, "DELETE FROM node_measurement_log WHERE node_id = ?"));
    BindText(del.get(), 1, node.node_id);
    if (sqlite3_step(del.get()) != SQLITE_DONE) return SqlError(db_, "delete log");
    ASSIGN_OR_RETURN(Stmt del_batches,
                     Prepare(db_, "DELETE FROM node_spool_ledger WHERE node_id = ?"));
    BindText(del_batches.get(), 1, node.node_id);
    if (sqlite3_step(del_batches.get()) != SQLITE_DONE) return SqlError(db_, "delete ledger");
    ASSIGN_OR_RETURN(Stmt ins, Prepare(db_,
                                       "INSERT OR REPLACE INTO enrolled_nodes(node_id, "
                                       "ek_public, ak_public, ak_name, enrolled_unix_nano, "
                                       "srk_public, ak_qualified_name, tpm_simulated) "
                                       "VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
    BindText(ins.get(), 1, node.node_id);
    BindBlob(ins.get(), 2, node.ek_public);
    BindBlob(ins.get(), 3, node.ak_public);
    BindBlob(ins.get(), 4, node.ak_name);
    sqlite3_bind_int64(ins.get(), 5, absl::ToUnixNanos(node.enrolled));
    if (!node.srk_public.empty()) BindBlob(ins.get(), 6, node.srk_public);
    if (!node.ak_qualified_name.empty()) BindBlob(ins.get(), 7, node.ak_qualified_name);
    sqlite3_bind_int64(ins.get(), 8, node.tpm_simulated ? 1 : 0);
    if (sqlite3_step(ins.get()) != SQLITE_DONE) return SqlError(db_, "insert node");
    RETURN_IF_ERROR(Exec(db_, "COMMIT"));
    std::move(rollback).Cancel();
    // The node's log rows are gone with its old binding.
    stored_log_.erase(node.node_id);
  }
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(node.node_id);
  if (it != nodes_.end()) {
    if (it->second->node().ak_name != node.ak_name) {
      spdlog::warn("node {} re-enrolled with a new AK; the previous binding is replaced",
                   node.node_id);
    }
    node_by_ak_.erase(it->second->node().ak_name);
    // The old binding's qualified name (computed or pinned) no longer names this node.
    for (auto n = node_by_ak_.begin(); n != node_by_ak_.end();) {
      n = n->second == node.node_id ? node_by_ak_.erase(n) : std::next(n);
    }
  }
  node_by_ak_[node.ak_name] = node.node_id;
  if (!node.ak_qualified_name.empty()) node_by_ak_[node.ak_qualified_name] = node.node_id;
  nodes_[node.node_id] = std::move(state);
  dirty_.erase(node.node_id);
  return absl::OkStatus();
}

std::shared_ptr<NodeState> NodeRegistry::Find(const std::string& node_id) const {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  return it == nodes_.end() ? nullptr : it->second;
}

std::string NodeRegistry::NodeIdForAk(const std::string& ak_name) const {
  {
    absl::MutexLock lock(&mu_);
    auto it = node_by_ak_.find(ak_name);
    if (it != node_by_ak_.end() || pg_ == nullptr) return it == node_by_ak_.end() ? "" : it->second;
  }
  // A node this replica has not seen may have that AK.
  absl::StatusOr<std::string> owner = NodeIdForAkPostgres(ak_name);
  return owner.ok() ? *owner : "";
}

void NodeRegistry::RecordQualifiedSigner(const std::string& node_id,
                                         const std::string& qualified_name) {
  absl::MutexLock lock(&mu_);
  node_by_ak_[qualified_name] = node_id;
}

std::vector<std::string> NodeRegistry::NodeIds() const {
  std::vector<std::string> out;
  if (pg_ != nullptr) {
    for (const EnrolledNode& e : ListNodes()) out.push_back(e.node_id);
    return out;
  }
  absl::MutexLock lock(&mu_);
  out.reserve(nodes_.size());
  for (const auto& [id, state] : nodes_) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<EnrolledNode> NodeRegistry::ListNodes() const {
  if (pg_ != nullptr) {
    // Nodes enrolled at other replicas too.
    if (auto nodes = ListNodesPostgres(); nodes.ok()) return *std::move(nodes);
  }
  absl::MutexLock lock(&mu_);
  std::vector<EnrolledNode> out;
  for (const auto& [id, state] : nodes_) out.push_back(state->node());
  std::sort(out.begin(), out.end(),
            [](const EnrolledNode& a, const EnrolledNode& b) { return a.node_id < b.node_id; });
  return out;
}

absl::Status NodeRegistry::Approve(const std::string& node_id) {
  if (pg_ != nullptr) {
    RETURN_IF_ERROR(SetApprovedPostgres(node_id, true));
  } else {
    std::unique_lock<sqlite::WriteTurns> turn = sqlite::WriteTurnOf(checkpointer_.get());
    absl::MutexLock db_lock(&db_mu_);
    ASSIGN_OR_RETURN(Stmt s, Prepare(db_,
                                     "INSERT OR REPLACE INTO node_approvals(node_id, "
                                     "approved_unix_nano) VALUES(?, ?)"));
    BindText(s.get(), 1, node_id);
    sqlite3_bind_int64(s.get(), 2, absl::ToUnixNanos(absl::Now()));
    if (sqlite3_step(s.get()) != SQLITE_DONE) return SqlError(db_, "approve");
  }
  absl::MutexLock lock(&mu_);
  approved_.insert(node_id);
  return absl::OkStatus();
}

absl::Status NodeRegistry::Revoke(const std::string& node_id) {
  if (pg_ != nullptr) {
    RETURN_IF_ERROR(SetApprovedPostgres(node_id, false));
  } else {
    std::unique_lock<sqlite::WriteTurns> turn = sqlite::WriteTurnOf(checkpointer_.get());
    absl::MutexLock db_lock(&db_mu_);
    ASSIGN_OR_RETURN(Stmt s, Prepare(db_, "DELETE FROM node_approvals WHERE node_id = ?"));
    BindText(s.get(), 1, node_id);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return SqlError(db_, "revoke");
  }
  absl::MutexLock lock(&mu_);
  approved_.erase(node_id);
  return absl::OkStatus();
}

bool NodeRegistry::IsApproved(const std::string& node_id) const {
  if (pg_ != nullptr) {
    // Another replica may have recorded the approval: the database answers.
    if (absl::StatusOr<bool> approved = IsApprovedPostgres(node_id); approved.ok()) {
      return *approved;
    }
  }
  absl::MutexLock lock(&mu_);
  return approved_.count(node_id) != 0;
}

std::vector<std::string> NodeRegistry::ListApproved() const {
  if (pg_ != nullptr) {
    if (auto approved = ListApprovedPostgres(); approved.ok()) return *std::move(approved);
  }
  absl::MutexLock lock(&mu_);
  return std::vector<std::string>(approved_.begin(), approved_.end());
}

void NodeRegistry::MarkDirty(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  dirty_.insert(node_id);
}

std::optional<NodeState::Persisted> NodeState::ToPersist() {
  absl::MutexLock lock(&mu);
  if (!last_clock.has_value()) return std::nullopt;
  return Persisted{*last_clock, qualified_signer, measurements, spool_batches.Changes()};
}

namespace {

absl::Status BehindAnotherReplica(const std::string& node_id) {
  return absl::AbortedError(absl::StrCat("node ", node_id,
                                         ": another verifier replica stored newer appraisal "
                                         "state; the node reports again"));
}

}  // namespace

void NodeRegistry::PersistThen(const std::string& node_id, std::function<void(absl::Status)> done) {
  absl::Status now = absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    if (behind_.erase(node_id) != 0) {
      // A commit already refused this node's state as behind: what the caller waits on was
      // appraised from it.
      now = BehindAnotherReplica(node_id);
    } else if (dirty_.count(node_id) != 0) {
      // Marked: the next commit takes it.
      waiters_.push_back(Waiter{started_commits_ + 1, node_id, std::move(done)});
      return;
    } else if (in_flight_.count(node_id) != 0) {
      // Being written: the commit under way has it as of this call (it was marked before the
      // commit took it).
      waiters_.push_back(Waiter{started_commits_, node_id, std::move(done)});
      return;
    }
  }
  done(std::move(now));
}

NodeRegistry::Taken NodeRegistry::TakeDirty() {
  Taken taken;
  absl::MutexLock lock(&mu_);
  for (const std::string& id : dirty_) {
    auto it = nodes_.find(id);
    if (it != nodes_.end()) taken.states.push_back(it->second);
  }
  // Taken now so a node marked again while this writes is written again next time.
  in_flight_.swap(dirty_);
  dirty_.clear();
  taken.commit = ++started_commits_;
  return taken;
}

void NodeRegistry::FinishCommit(uint64_t commit, const absl::Status& st,
                                const std::set<std::string>& stale) {
  std::vector<std::pair<std::function<void(absl::Status)>, absl::Status>> done;
  {
    absl::MutexLock lock(&mu_);
    // Nothing was written on failure: the nodes stay marked for the next attempt.
    if (!st.ok()) dirty_.merge(in_flight_);
    in_flight_.clear();
    auto first_later = std::stable_partition(
        waiters_.begin(), waiters_.end(), [commit](const Waiter& w) { return w.commit <= commit; });
    // A node whose stored clock another replica advanced: this replica's state of it is
    // behind, and what it appraised is not acknowledged, whether its waiter is here or
    // comes later (the appraisal marks the state before the verdict's sink waits on it).
    std::set<std::string> unanswered = st.ok() ? stale : std::set<std::string>{};
    for (auto it = waiters_.begin(); it != first_later; ++it) {
      const bool node_behind = st.ok() && stale.count(it->node_id) != 0;
      if (node_behind) unanswered.erase(it->node_id);
      done.emplace_back(std::move(it->done), node_behind ? BehindAnotherReplica(it->node_id) : st);
    }
    waiters_.erase(waiters_.begin(), first_later);
    behind_.merge(unanswered);
  }
  // Read the stored state of those nodes, so their next appraisal here compares with it:
  // before anyone is told, so a caller answered ABORTED finds the newer state in place.
  for (const std::string& id : stale) Refresh(id);
  for (auto& [d, node_st] : done) d(node_st);
}

absl::Status NodeRegistry::Flush() {
  std::future<absl::Status> joined;
  {
    absl::MutexLock flush_lock(&flush_mu_);
    {
      absl::MutexLock lock(&mu_);
      if (commit_store_ != nullptr) {
        // The store's next batch writes what is marked (`done` may run at once, here, when
        // the store is closing).
        auto result = std::make_shared<std::promise<absl::Status>>();
        joined = result->get_future();
        commit_store_->CommitSoon([result](absl::Status st) { result->set_value(std::move(st)); });
      }
    }
    if (!joined.valid()) return FlushOwn();
  }
  RETURN_IF_ERROR(joined.get());
  // The batch committed; whether the registry's part of it did:
  absl::MutexLock lock(&mu_);
  return joined_status_;
}

absl::Status NodeRegistry::FlushOwn() {
  Taken taken = TakeDirty();
  std::set<std::string> stale;
  absl::Status st = taken.states.empty() ? absl::OkStatus()
                    : pg_ != nullptr     ? WriteStatesPostgres(taken.states, &stale)
                                         : WriteStates(taken.states);
  FinishCommit(taken.commit, st, stale);
  return st;
}

namespace {

// The kept measurement-log rows as one string: equal strings are equal rows.
std::string LogKey(const std::vector<v1::MeasurementLogEntry>& kept) {
  std::string key;
  for (const v1::MeasurementLogEntry& e : kept) {
    const std::string bytes = e.SerializeAsString();
    absl::StrAppend(&key, bytes.size(), ":", bytes);
  }
  return key;
}

}  // namespace

absl::Status NodeRegistry::WriteStatesIn(sqlite3* db, Writer& w,
                                         const std::vector<std::shared_ptr<NodeState>>& states,
                                         Written* written) {
  for (const auto& state : states) {
    const std::string& id = state->node().node_id;
    std::optional<NodeState::Persisted> persisted = state->ToPersist();
    if (!persisted.has_value()) continue;
    const QuoteClock& last_clock = persisted->clock;
    const MeasurementState& m = persisted->measurements;
    sqlite3_stmt* clock = w.clock.get();
    sqlite3_bind_int64(clock, 1, static_cast<int64_t>(last_clock.clock));
    sqlite3_bind_int64(clock, 2, last_clock.reset_count);
    sqlite3_bind_int64(clock, 3, last_clock.restart_count);
    BindBlob(clock, 4, persisted->qualified_signer);
    sqlite3_bind_int64(clock, 5, static_cast<int64_t>(m.entries));
    sqlite3_bind_int64(clock, 6, static_cast<int64_t>(m.epoch_start));
    const std::string pcrs = EncodePcrs(m.pcrs);
    BindBlob(clock, 7, pcrs);
    BindText(clock, 8, id);
    BindBlob(clock, 9, state->node().ak_name);
    RETURN_IF_ERROR(sqlite::Run(db, clock, "node registry: update clock"));
    // No row: the node was enrolled again meanwhile, and this state is the old binding's.
    if (sqlite3_changes(db) == 0) continue;
    // A handful of rows (MeasurementState::kept), rewritten whole when they changed.
    std::string log = LogKey(m.kept);
    auto stored = stored_log_.find(id);
    if (stored == stored_log_.end() || stored->second != log) {
      BindText(w.del.get(), 1, id);
      RETURN_IF_ERROR(sqlite::Run(db, w.del.get(), "node registry: delete log"));
      for (const v1::MeasurementLogEntry& e : m.kept) {
        sqlite3_stmt* ins = w.ins.get();
        BindText(ins, 1, id);
        sqlite3_bind_int64(ins, 2, static_cast<int64_t>(e.recnum()));
        sqlite3_bind_int64(ins, 3, e.pcr());
        BindBlob(ins, 4, e.digest());
        BindText(ins, 5, e.event_type());
        BindText(ins, 6, e.content());
        RETURN_IF_ERROR(sqlite::Run(db, ins, "node registry: insert log"));
      }
      written->logs.emplace_back(id, std::move(log));
    }
    // The spool ledger changes incrementally: only digests added, delivered or forgotten.
    std::vector<MeasuredBatches::Change>& batches = persisted->batches;
    for (const MeasuredBatches::Change& c : batches) {
      sqlite3_stmt* st = c.entry.has_value() ? w.put_batch.get() : w.drop_batch.get();
      BindText(st, 1, id);
      BindBlob(st, 2, c.digest);
      if (c.entry.has_value()) {
        sqlite3_bind_int64(st, 3, static_cast<int64_t>(c.entry->recnum));
        sqlite3_bind_int(st, 4, c.entry->state == MeasuredBatches::State::kDelivered ? 1 : 0);
      }
      RETURN_IF_ERROR(sqlite::Run(db, st, "node registry: write ledger"));
    }
    written->ledger.emplace_back(state.get(), std::move(batches));
  }
  return absl::OkStatus();
}

void NodeRegistry::Remember(Written& written) {
  for (auto& [id, log] : written.logs) stored_log_[id] = std::move(log);
  for (auto& [state, batches] : written.ledger) {
    absl::MutexLock node_lock(&state->mu);
    state->spool_batches.Written(batches);
  }
}

absl::Status NodeRegistry::WriteStates(const std::vector<std::shared_ptr<NodeState>>& states) {
  std::unique_lock<sqlite::WriteTurns> turn = sqlite::WriteTurnOf(checkpointer_.get());
  absl::MutexLock db_lock(&db_mu_);
  if (sqlite_writer_ == nullptr) {
    ASSIGN_OR_RETURN(sqlite_writer_, Writer::Prepare(db_));
  }
  Writer& w = *sqlite_writer_;
  RETURN_IF_ERROR(sqlite::Run(db_, w.begin.get(), "node registry: begin"));
  Written written;
  absl::Status st = WriteStatesIn(db_, w, states, &written);
  if (st.ok()) st = sqlite::Run(db_, w.commit.get(), "node registry: commit");
  if (!st.ok()) {
    (void)sqlite::Run(db_, w.rollback.get(), "node registry: rollback");
    return st;
  }
  if (turn.owns_lock()) turn.unlock();
  Remember(written);
  return absl::OkStatus();
}

class NodeRegistry::StoreJoin final : public SqliteStore::JoinedWriter {
 public:
  explicit StoreJoin(NodeRegistry* registry) : registry_(registry) {}
  absl::Status WriteIn(sqlite3* db) override { return registry_->WriteJoined(db); }
  void Committed(absl::Status status) override { registry_->JoinedCommitted(status); }
  void Leave(sqlite3*) override { registry_->LeaveStore(); }

 private:
  NodeRegistry* const registry_;
};

absl::Status NodeRegistry::CommitWith(SqliteStore* store) {
  if (pg_ != nullptr || checkpointer_ == nullptr) {
    return absl::FailedPreconditionError(
        "node registry: only a registry in a SQLite file commits with the result store");
  }
  absl::MutexLock flush_lock(&flush_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (commit_store_ != nullptr) {
      return absl::FailedPreconditionError("node registry: already commits with a store");
    }
    // Before the store's first joined write: no commit of the registry's own starts from now
    // (flush_mu_ is held until the store has joined).
    commit_store_ = store;
  }
  if (store_join_ == nullptr) store_join_ = std::make_unique<StoreJoin>(this);
  if (absl::Status st = store->Join(store_join_.get()); !st.ok()) {
    absl::MutexLock lock(&mu_);
    commit_store_ = nullptr;
    return st;
  }
  return absl::OkStatus();
}

absl::Status NodeRegistry::WriteJoined(sqlite3* db) {
  joined_taken_ = TakeDirty();
  joined_written_ = Written{};
  if (joined_taken_.states.empty()) return absl::OkStatus();
  absl::MutexLock db_lock(&db_mu_);
  if (joined_writer_ == nullptr) {
    ASSIGN_OR_RETURN(joined_writer_, Writer::Prepare(db));
  }
  return WriteStatesIn(db, *joined_writer_, joined_taken_.states, &joined_written_);
}

void NodeRegistry::JoinedCommitted(const absl::Status& st) {
  if (st.ok()) {
    absl::MutexLock db_lock(&db_mu_);
    Remember(joined_written_);
  } else {
    spdlog::error("node registry: writing appraisal state: {}", st.ToString());
  }
  {
    absl::MutexLock lock(&mu_);
    joined_status_ = st;
  }
  FinishCommit(joined_taken_.commit, st, {});
  joined_taken_ = Taken{};
  joined_written_ = Written{};
}

void NodeRegistry::LeaveStore() {
  {
    // Finalized before the store's connection closes.
    absl::MutexLock db_lock(&db_mu_);
    joined_writer_.reset();
  }
  absl::MutexLock lock(&mu_);
  commit_store_ = nullptr;
}

void NodeRegistry::SetCommitWindow(absl::Duration window) {
  absl::MutexLock lock(&mu_);
  commit_window_ = std::max(window, absl::ZeroDuration());
}

void NodeRegistry::WriterLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      // Group commit: wakes as soon as a node is marked; whatever is marked while a commit
      // runs goes into the next one.
      auto due = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !dirty_.empty(); };
      mu_.Await(absl::Condition(&due));
      if (stopping_) return;
      if (commit_store_ != nullptr) {
        // The store's batches write the marked nodes (each report's verdict brings one);
        // state no write followed goes out within a second.
        auto leave = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || commit_store_ == nullptr;
        };
        mu_.AwaitWithTimeout(absl::Condition(&leave), absl::Seconds(1));
        if (stopping_) return;
        if (commit_store_ != nullptr) {
          if (!dirty_.empty()) commit_store_->CommitSoon(nullptr);
          continue;
        }
      }
      // Lets the changes that follow this one join its commit (stopping cuts it short).
      if (commit_window_ > absl::ZeroDuration()) {
        auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
        mu_.AwaitWithTimeout(absl::Condition(&stop), commit_window_);
      }
    }
    if (absl::Status st = Flush(); !st.ok()) {
      spdlog::error("node registry: writing appraisal state: {}", st.ToString());
      // The database refused (full disk, I/O error): waiters got the error; retry shortly
      // rather than spin.
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Seconds(1));
      if (stopping_) return;
    }
  }
}

}  // namespace vigil::verifier
