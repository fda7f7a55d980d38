// NodeRegistry's storage in PostgreSQL, shared by verifier replicas.
//
// Every replica keeps the nodes it serves in memory like the SQLite registry does; the
// database is the authority between them. A node's stream may start on any replica, so
// Refresh (called when a stream starts) reads the node's binding and appraisal state again.
// Appraisal state is written with a conditional UPDATE that only replaces an older AK clock:
// two replicas appraising the same node (an old stream not yet ended on one, a new one on
// the other) can never move the stored clock back, and the replica whose state was behind
// does not acknowledge what it appraised (see NodeRegistry::Flush).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "verifier/node_registry.h"
#include "verifier/node_registry_postgres.h"
#include "verifier/pending_enrollments.h"
#include "verifier/store/postgres_schema.h"
#include "verifier/store/postgres_util.h"

namespace vigil::verifier {
namespace {

using registry_internal::DecodePcrs;
using registry_internal::EncodePcrs;
using registry_internal::MakeState;

constexpr char kNodeColumns[] =
    "SELECT node_id, ek_public, ak_public, ak_name, enrolled_unix_nano, clock, reset_count, "
    "restart_count, qualified_signer, srk_public, ak_qualified_name, log_entries, "
    "log_epoch_start, log_pcrs, tpm_simulated FROM enrolled_nodes";

// Whether a node's EK is a simulated TPM's (--accept-simulated-tpm): a column added in place,
// idempotently, so it needs no schema version of its own.
constexpr char kAddTpmSimulated[] =
    "ALTER TABLE enrolled_nodes ADD COLUMN IF NOT EXISTS tpm_simulated BOOLEAN NOT NULL "
    "DEFAULT FALSE";

std::string Bytes(const pqxx::field& f) {
  if (f.is_null()) return "";
  return pqxx::binarystring(f).str();
}

// Runs `body` with the backend's connection (pg::WithConnection).
template <typename T, typename Backend, typename F>
absl::StatusOr<T> WithConnection(Backend& pg, const char* what, F&& body) {
  return pg::WithConnection<T>(&pg.connection, pg.url, "node registry", what,
                               std::forward<F>(body));
}

constexpr char kLogOfNode[] =
    "SELECT recnum, pcr, digest, event_type, content FROM node_measurement_log WHERE node_id = "
    "$1 ORDER BY recnum";
constexpr char kLedgerOfNode[] =
    "SELECT digest, recnum, delivered FROM node_spool_ledger WHERE node_id = $1 ORDER BY recnum";

// A node's state from its enrolled_nodes row, its kept measurement-log entries and its spool
// ledger.
absl::StatusOr<std::shared_ptr<NodeState>> StateFromRow(const pqxx::row& r, const pqxx::result& log,
                                                        const pqxx::result& ledger) {
  EnrolledNode n;
  n.node_id = r[0].as<std::string>();
  n.ek_public = Bytes(r[1]);
  n.ak_public = Bytes(r[2]);
  n.ak_name = Bytes(r[3]);
  n.enrolled = absl::FromUnixNanos(r[4].as<int64_t>());
  n.srk_public = Bytes(r[9]);
  n.ak_qualified_name = Bytes(r[10]);
  n.tpm_simulated = r[14].as<bool>();
  ASSIGN_OR_RETURN(std::shared_ptr<NodeState> state, MakeState(n));
  absl::MutexLock node_lock(&state->mu);
  if (!r[5].is_null()) {
    state->last_clock = QuoteClock{static_cast<uint64_t>(r[5].as<int64_t>()),
                                   static_cast<uint32_t>(r[6].as<int64_t>()),
                                   static_cast<uint32_t>(r[7].as<int64_t>())};
  }
  // The qualified name computed at enrollment wins over a pin of an earlier binding.
  state->qualified_signer = n.ak_qualified_name.empty() ? Bytes(r[8]) : n.ak_qualified_name;
  if (!r[11].is_null()) {
    MeasurementState& m = state->measurements;
    m.entries = static_cast<uint64_t>(r[11].as<int64_t>());
    m.epoch_start = static_cast<uint64_t>(r[12].as<int64_t>());
    absl::StatusOr<std::map<uint32_t, Sha256Digest>> pcrs = DecodePcrs(Bytes(r[13]));
    if (!pcrs.ok()) {
      // Held nothing: the node is told so and sends its whole log again.
      spdlog::error("node registry: node {} measurement state unreadable ({}); it starts over",
                    n.node_id, pcrs.status().ToString());
      m = MeasurementState();
    } else {
      m.pcrs = *std::move(pcrs);
      for (const pqxx::row& e : log) {
        v1::MeasurementLogEntry& entry = m.kept.emplace_back();
        entry.set_recnum(static_cast<uint64_t>(e[0].as<int64_t>()));
        entry.set_pcr(static_cast<uint32_t>(e[1].as<int>()));
        entry.set_digest(Bytes(e[2]));
        entry.set_event_type(e[3].as<std::string>());
        entry.set_content(e[4].as<std::string>());
      }
    }
  }
  for (const pqxx::row& b : ledger) {
    state->spool_batches.Restore(Bytes(b[0]), static_cast<uint64_t>(b[1].as<int64_t>()),
                                 b[2].as<bool>());
  }
  return state;
}

// The node's stored state; nullptr when it is not enrolled.
absl::StatusOr<std::shared_ptr<NodeState>> ReadNode(pqxx::connection& c,
                                                    const std::string& node_id) {
  pqxx::read_transaction tx(c);
  pqxx::result rows = tx.exec_params(std::string(kNodeColumns) + " WHERE node_id = $1", node_id);
  if (rows.empty()) return std::shared_ptr<NodeState>();
  pqxx::result log = tx.exec_params(kLogOfNode, node_id);
  pqxx::result ledger = tx.exec_params(kLedgerOfNode, node_id);
  tx.commit();
  return StateFromRow(rows[0], log, ledger);
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeRegistry>> NodeRegistry::OpenPostgres(const std::string& url) {
  if (!pg::IsPostgresUrl(url)) {
    return absl::InvalidArgumentError(
        absl::StrCat("node registry: not a PostgreSQL URL: ", pg::MaskPassword(url)));
  }
  auto backend = std::make_unique<PgBackend>();
  backend->url = url;
  ASSIGN_OR_RETURN(backend->connection, pg::Connect(url, "node registry"));
  RETURN_IF_ERROR(pg::MigrateSchema(*backend->connection));
  try {
    pqxx::work tx(*backend->connection);
    tx.exec(kAddTpmSimulated);
    tx.commit();
  } catch (const std::exception& e) {
    return pg::FromException(e, "node registry: adding the tpm_simulated column");
  }
  std::unique_ptr<NodeRegistry> registry(new NodeRegistry(nullptr));
  registry->pg_ = std::move(backend);
  // Begun on one replica, completed on any.
  ASSIGN_OR_RETURN(registry->pending_enrollments_, OpenPostgresPendingEnrollments(url));
  RETURN_IF_ERROR(registry->Load());
  registry->writer_ = std::thread([r = registry.get()] { r->WriterLoop(); });
  return registry;
}

void NodeRegistry::Publish(const std::vector<std::shared_ptr<NodeState>>& loaded) {
  std::vector<std::string> signers;
  for (const auto& state : loaded) {
    absl::MutexLock node_lock(&state->mu);
    signers.push_back(state->qualified_signer);
  }
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < loaded.size(); ++i) {
    const auto& state = loaded[i];
    node_by_ak_[state->node().ak_name] = state->node().node_id;
    if (!signers[i].empty()) node_by_ak_[signers[i]] = state->node().node_id;
    nodes_[state->node().node_id] = state;
  }
}

absl::Status NodeRegistry::LoadPostgres() {
  std::vector<std::shared_ptr<NodeState>> loaded;
  std::vector<std::string> approved;
  {
    absl::MutexLock db_lock(&db_mu_);
    RETURN_IF_ERROR((WithConnection<bool>(*pg_, "node registry: loading",
                                          [&](pqxx::connection& c) -> absl::StatusOr<bool> {
                                            pqxx::read_transaction tx(c);
                                            for (const pqxx::row& r : tx.exec(kNodeColumns)) {
                                              const std::string id = r[0].as<std::string>();
                                              pqxx::result own = tx.exec_params(kLogOfNode, id);
                                              pqxx::result ledger =
                                                  tx.exec_params(kLedgerOfNode, id);
                                              absl::StatusOr<std::shared_ptr<NodeState>> state =
                                                  StateFromRow(r, own, ledger);
                                              if (!state.ok()) {
                                                spdlog::error(
                                                    "node registry: node {} has an unusable AK, "
                                                    "skipped: {}",
                                                    id, state.status().ToString());
                                                continue;
                                              }
                                              loaded.push_back(*std::move(state));
                                            }
                                            for (const pqxx::row& r :
                                                 tx.exec("SELECT node_id FROM node_approvals")) {
                                              approved.push_back(r[0].as<std::string>());
                                            }
                                            tx.commit();
                                            return true;
                                          })
                         .status()));
  }
  Publish(loaded);
  absl::MutexLock lock(&mu_);
  approved_.insert(approved.begin(), approved.end());
  return absl::OkStatus();
}

absl::Status NodeRegistry::BindPostgres(const EnrolledNode& node) {
  absl::MutexLock db_lock(&db_mu_);
  return WithConnection<bool>(
             *pg_, "node registry: binding a node",
             [&](pqxx::connection& c) -> absl::StatusOr<bool> {
               pqxx::work tx(c);
               tx.exec_params("DELETE FROM node_measurement_log WHERE node_id = $1", node.node_id);
               tx.exec_params("DELETE FROM node_spool_ledger WHERE node_id = $1", node.node_id);
               // A replaced binding starts with no clock and no log.
               tx.exec_params(
                   "INSERT INTO enrolled_nodes (node_id, ek_public, ak_public, ak_name, "
                   "enrolled_unix_nano, srk_public, ak_qualified_name, tpm_simulated) VALUES ($1, "
                   "$2, $3, $4, $5, NULLIF($6, ''::bytea), NULLIF($7, ''::bytea), $8) ON "
                   "CONFLICT (node_id) DO "
                   "UPDATE SET ek_public = "
                   "excluded.ek_public, ak_public = excluded.ak_public, ak_name = "
                   "excluded.ak_name, enrolled_unix_nano = excluded.enrolled_unix_nano, "
                   "srk_public = excluded.srk_public, ak_qualified_name = "
                   "excluded.ak_qualified_name, tpm_simulated = excluded.tpm_simulated, "
                   "clock = NULL, reset_count = NULL, "
                   "restart_count = NULL, qualified_signer = NULL, log_entries = NULL, "
                   "log_epoch_start = NULL, log_pcrs = NULL",
                   node.node_id, pqxx::binarystring(node.ek_public),
                   pqxx::binarystring(node.ak_public), pqxx::binarystring(node.ak_name),
                   absl::ToUnixNanos(node.enrolled), pqxx::binarystring(node.srk_public),
                   pqxx::binarystring(node.ak_qualified_name), node.tpm_simulated);
               tx.commit();
               return true;
             })
      .status();
}

absl::Status NodeRegistry::SetApprovedPostgres(const std::string& node_id, bool approved) {
  absl::MutexLock db_lock(&db_mu_);
  return WithConnection<bool>(*pg_, "node registry: approval",
                              [&](pqxx::connection& c) -> absl::StatusOr<bool> {
                                pqxx::work tx(c);
                                if (approved) {
                                  tx.exec_params(
                                      "INSERT INTO node_approvals (node_id, approved_unix_nano) "
                                      "VALUES ($1, $2) ON CONFLICT (node_id) DO UPDATE SET "
                                      "approved_unix_nano = excluded.approved_unix_nano",
                                      node_id, absl::ToUnixNanos(absl::Now()));
                                } else {
                                  tx.exec_params("DELETE FROM node_approvals WHERE node_id = $1",
                                                 node_id);
                                }
                                tx.commit();
                                return true;
                              })
      .status();
}

absl::StatusOr<bool> NodeRegistry::IsApprovedPostgres(const std::string& node_id) const {
  absl::MutexLock db_lock(&db_mu_);
  return WithConnection<bool>(*pg_, "node registry: reading an approval",
                              [&](pqxx::connection& c) -> absl::StatusOr<bool> {
                                pqxx::read_transaction tx(c);
                                return !tx.exec_params(
                                              "SELECT 1 FROM node_approvals WHERE "
                                              "node_id = $1",
                                              node_id)
                                            .empty();
                              });
}

absl::StatusOr<std::vector<std::string>> NodeRegistry::ListApprovedPostgres() const {
  absl::MutexLock db_lock(&db_mu_);
  return WithConnection<std::vector<std::string>>(
      *pg_, "node registry: listing approvals",
      [&](pqxx::connection& c) -> absl::StatusOr<std::vector<std::string>> {
        pqxx::read_transaction tx(c);
        std::vector<std::string> out;
        for (const pqxx::row& r : tx.exec("SELECT node_id FROM node_approvals ORDER BY node_id")) {
          out.push_back(r[0].as<std::string>());
        }
        return out;
      });
}

absl::StatusOr<std::vector<EnrolledNode>> NodeRegistry::ListNodesPostgres() const {
  absl::MutexLock db_lock(&db_mu_);
  return WithConnection<std::vector<EnrolledNode>>(
      *pg_, "node registry: listing nodes",
      [&](pqxx::connection& c) -> absl::StatusOr<std::vector<EnrolledNode>> {
        pqxx::read_transaction tx(c);
        std::vector<EnrolledNode> out;
        for (const pqxx::row& r :
             tx.exec("SELECT node_id, ek_public, ak_public, ak_name, enrolled_unix_nano, "
                     "srk_public, ak_qualified_name, tpm_simulated FROM enrolled_nodes ORDER BY "
                     "node_id")) {
          EnrolledNode& n = out.emplace_back();
          n.node_id = r[0].as<std::string>();
          n.ek_public = Bytes(r[1]);
          n.ak_public = Bytes(r[2]);
          n.ak_name = Bytes(r[3]);
          n.enrolled = absl::FromUnixNanos(r[4].as<int64_t>());
          n.srk_public = Bytes(r[5]);
          n.ak_qualified_name = Bytes(r[6]);
          n.tpm_simulated = r[7].as<bool>();
        }
        return out;
      });
}

absl::StatusOr<std::string> NodeRegistry::NodeIdForAkPostgres(const std::string& ak_name) const {
  absl::MutexLock db_lock(&db_mu_);
  return WithConnection<std::string>(
      *pg_, "node registry: looking up an AK",
      [&](pqxx::connection& c) -> absl::StatusOr<std::string> {
        pqxx::read_transaction tx(c);
        const pqxx::binarystring name(ak_name);
        pqxx::result r = tx.exec_params(
            "SELECT node_id FROM enrolled_nodes WHERE ak_name = $1 OR ak_qualified_name = $1 OR "
            "qualified_signer = $1 LIMIT 1",
            name);
        return r.empty() ? std::string() : r[0][0].as<std::string>();
      });
}

void NodeRegistry::Refresh(const std::string& node_id) {
  if (pg_ == nullptr) return;
  absl::StatusOr<std::shared_ptr<NodeState>> stored;
  {
    absl::MutexLock db_lock(&db_mu_);
    stored = WithConnection<std::shared_ptr<NodeState>>(
        *pg_, "node registry: reading a node",
        [&](pqxx::connection& c) { return ReadNode(c, node_id); });
  }
  if (!stored.ok()) {
    // Appraisal goes on with what this replica holds; a stale clock is caught when its
    // state is written (the conditional update).
    spdlog::warn("node {}: {}; using this replica's state", node_id, stored.status().ToString());
    return;
  }
  if (*stored == nullptr) return;
  const std::shared_ptr<NodeState>& fresh = *stored;
  std::shared_ptr<NodeState> held;
  {
    absl::MutexLock lock(&mu_);
    auto it = nodes_.find(node_id);
    if (it != nodes_.end() && it->second->node().ak_name == fresh->node().ak_name &&
        it->second->node().enrolled == fresh->node().enrolled) {
      held = it->second;
    }
  }
  if (held == nullptr) {
    // Enrolled (again) at another replica: the stored binding replaces this replica's.
    {
      absl::MutexLock lock(&mu_);
      for (auto n = node_by_ak_.begin(); n != node_by_ak_.end();) {
        n = n->second == node_id ? node_by_ak_.erase(n) : std::next(n);
      }
      dirty_.erase(node_id);
    }
    Publish({fresh});
    return;
  }
  absl::MutexLock fresh_lock(&fresh->mu);
  absl::MutexLock held_lock(&held->mu);
  // This replica's state is kept only when it is ahead of the stored one (written soon).
  if (held->last_clock.has_value() &&
      (!fresh->last_clock.has_value() || fresh->last_clock->clock < held->last_clock->clock)) {
    return;
  }
  held->last_clock = fresh->last_clock;
  held->qualified_signer = fresh->qualified_signer;
  held->measurements = fresh->measurements;
  held->spool_batches = fresh->spool_batches;
}

absl::Status NodeRegistry::WriteStatesPostgres(
    const std::vector<std::shared_ptr<NodeState>>& states, std::set<std::string>* stale) {
  absl::MutexLock db_lock(&db_mu_);
  // The ledger changes each node's commit wrote, forgotten by its ledger once committed.
  std::vector<std::pair<std::shared_ptr<NodeState>, std::vector<MeasuredBatches::Change>>> written;
  absl::Status st =
      WithConnection<bool>(
          *pg_, "node registry: writing appraisal state",
          [&](pqxx::connection& c) -> absl::StatusOr<bool> {
            pqxx::work tx(c);
            std::set<std::string> refused;
            written.clear();
            for (const auto& state : states) {
              const std::string& id = state->node().node_id;
              std::optional<NodeState::Persisted> persisted = state->ToPersist();
              if (!persisted.has_value()) continue;
              const QuoteClock& clock = persisted->clock;
              const std::string& qualified_signer = persisted->qualified_signer;
              const MeasurementState& m = persisted->measurements;
              std::vector<MeasuredBatches::Change>& batches = persisted->batches;
              const pqxx::binarystring ak_name(state->node().ak_name);
              // Only over an older clock: a replica never moves the stored clock back.
              const pqxx::result updated = tx.exec_params(
                  "UPDATE enrolled_nodes SET clock = $1, reset_count = $2, restart_count = "
                  "$3, qualified_signer = $4, log_entries = $5, log_epoch_start = $6, "
                  "log_pcrs = $7 WHERE node_id = $8 AND ak_name = $9 AND (clock IS NULL OR "
                  "clock <= $1)",
                  static_cast<int64_t>(clock.clock), static_cast<int64_t>(clock.reset_count),
                  static_cast<int64_t>(clock.restart_count), pqxx::binarystring(qualified_signer),
                  static_cast<int64_t>(m.entries), static_cast<int64_t>(m.epoch_start),
                  pqxx::binarystring(EncodePcrs(m.pcrs)), id, ak_name);
              if (updated.affected_rows() == 0) {
                // Still this binding: another replica stored a newer clock. Otherwise
                // the node was enrolled again and this state is the old binding's.
                if (!tx.exec_params("SELECT 1 FROM enrolled_nodes WHERE node_id = $1 AND "
                                    "ak_name = $2",
                                    id, ak_name)
                         .empty()) {
                  refused.insert(id);
                }
                continue;
              }
              tx.exec_params("DELETE FROM node_measurement_log WHERE node_id = $1", id);
              for (const v1::MeasurementLogEntry& e : m.kept) {
                tx.exec_params(
                    "INSERT INTO node_measurement_log (node_id, recnum, pcr, digest, "
                    "event_type, content) VALUES ($1, $2, $3, $4, $5, $6)",
                    id, static_cast<int64_t>(e.recnum()), static_cast<int>(e.pcr()),
                    pqxx::binarystring(e.digest()), e.event_type(), e.content());
              }
              // The spool ledger changes incrementally: only digests added, delivered or forgotten.
              for (const MeasuredBatches::Change& c : batches) {
                if (c.entry.has_value()) {
                  tx.exec_params(
                      "INSERT INTO node_spool_ledger (node_id, digest, recnum, delivered) "
                      "VALUES ($1, $2, $3, $4) ON CONFLICT (node_id, digest) DO UPDATE SET "
                      "recnum = excluded.recnum, delivered = excluded.delivered",
                      id, pqxx::binarystring(c.digest), static_cast<int64_t>(c.entry->recnum),
                      c.entry->state == MeasuredBatches::State::kDelivered);
                } else {
                  tx.exec_params("DELETE FROM node_spool_ledger WHERE node_id = $1 AND digest = $2",
                                 id, pqxx::binarystring(c.digest));
                }
              }
              written.emplace_back(state, std::move(batches));
            }
            tx.commit();
            *stale = std::move(refused);
            return true;
          })
          .status();
  if (!st.ok()) return st;
  for (auto& [state, batches] : written) {
    absl::MutexLock node_lock(&state->mu);
    state->spool_batches.Written(batches);
  }
  return absl::OkStatus();
}

}  // namespace vigil::verifier
