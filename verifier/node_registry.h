#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/openssl_util.h"
#include "verifier/measured_batches.h"
#include "verifier/measurement_state.h"
#include "vigil/v1/attestation.pb.h"

struct sqlite3;

namespace vigil::verifier::sqlite {
class WalCheckpointer;
}  // namespace vigil::verifier::sqlite

namespace vigil::verifier {

class PendingEnrollments;
class SqliteStore;

/// The EK <-> AK <-> node binding enrollment established.
struct EnrolledNode {
  std::string node_id;
  /// Marshalled TPM2B_PUBLIC of the endorsement key.
  std::string ek_public;
  /// Marshalled TPM2B_PUBLIC of the attestation key.
  std::string ak_public;
  /// The AK's TPM name (nameAlg || digest; no TPM2B size prefix).
  std::string ak_name;
  absl::Time enrolled;
  /// Marshalled TPM2B_PUBLIC of the storage root key the AK was created under ("" for a node
  /// enrolled without one: see ak_qualified_name).
  std::string srk_public = {};
  /// The AK's qualified name computed at enrollment from the SRK's (nameAlg || digest, no
  /// size prefix): every quote's qualifiedSigner must equal it. "" when the node enrolled
  /// without its SRK: its first accepted quote's qualifiedSigner is pinned instead
  /// (NodeState::qualified_signer) until it enrolls again.
  std::string ak_qualified_name = {};
  /// The EK is a simulated TPM's (EkTrust::kSimulated, --accept-simulated-tpm): every
  /// verdict about the node says tpm_simulated and makes no hardware claim.
  bool tpm_simulated = false;
};

/// TPMS_CLOCK_INFO of an AK's latest accepted quote.
struct QuoteClock {
  uint64_t clock = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
};

/// The verifier's appraisal state for one enrolled node: its binding, its AK parsed once,
/// and (under `mu`) the clock of the AK's last accepted quote, the qualified-signer pin,
/// what the verifier holds of the measurement log and the spooled batches it measured. Appraisals
/// of one node serialize on `mu`. Further per-node appraisal state goes here as members under `mu`,
/// persisted by NodeRegistry::WriteStates and read back by NodeRegistry::Load.
class NodeState {
 public:
  NodeState(EnrolledNode node, EvpPkeyPtr ak_key)
      : node_(std::move(node)), ak_key_(std::move(ak_key)) {}

  const EnrolledNode& node() const { return node_; }
  /// The AK's public key; EVP_PKEY verification is safe from many threads.
  EVP_PKEY* ak_key() const { return ak_key_.get(); }

  absl::Mutex mu;
  std::optional<QuoteClock> last_clock ABSL_GUARDED_BY(mu);
  /// The AK's qualified name every quote's TPMS_ATTEST.qualifiedSigner must equal: the one
  /// computed at enrollment (EnrolledNode::ak_qualified_name), or, for a node enrolled
  /// without its SRK, the one of its first accepted quote (persisted with the clock; empty
  /// until then).
  std::string qualified_signer ABSL_GUARDED_BY(mu);
  /// What the verifier holds of the node's measurement log for the current boot (bounded).
  MeasurementState measurements ABSL_GUARDED_BY(mu);
  /// The spooled batches the node measured and has not delivered, and those it delivered
  /// (SpoolLedger); written incrementally.
  MeasuredBatches spool_batches ABSL_GUARDED_BY(mu);

  /// How many measurement-log entries of the current boot the verifier holds: the record
  /// number the node sends entries from next.
  uint64_t log_entries() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return measurements.entries; }

  /// What the registry persists of this node's appraisal state, copied out under `mu` so
  /// appraisals do not wait for the database.
  struct Persisted {
    QuoteClock clock;
    std::string qualified_signer;
    MeasurementState measurements;
    /// The spool ledger's changes since its last write.
    std::vector<MeasuredBatches::Change> batches;
  };
  /// The state to write, or nullopt while the node has no accepted quote yet.
  std::optional<Persisted> ToPersist() ABSL_LOCKS_EXCLUDED(mu);

 private:
  const EnrolledNode node_;
  const EvpPkeyPtr ak_key_;
};

/// Enrolled nodes, operator approvals and per-AK appraisal state, persisted in SQLite (WAL,
/// synchronous=FULL) and served from memory. Enrollment and approvals write through.
/// Appraisal state (clock triple, qualified-signer pin, measurement log, spool ledger) is
/// group-committed
/// by a background writer: every node marked since the previous commit goes into one
/// transaction (one fsync), and PersistThen reports when a node's state as of the call is on
/// stable storage, so the Attest stream acknowledges nothing the registry could lose. With
/// CommitWith, that transaction is the result store's batch instead.
/// Thread-safe.
class NodeRegistry {
 public:
  /// Opens (creating tables as needed) the database at `db_path` (":memory:" for none) and
  /// loads every node, parsing each AK once.
  static absl::StatusOr<std::unique_ptr<NodeRegistry>> Open(const std::string& db_path);
  /// Opens the registry in the PostgreSQL database at `url`, shared by verifier replicas
  /// (node_registry_postgres.cc): appraisal state is written with a conditional update that
  /// never replaces a newer AK clock another replica stored, and Refresh reads a node's
  /// state again when its stream starts here.
  static absl::StatusOr<std::unique_ptr<NodeRegistry>> OpenPostgres(const std::string& url);
  ~NodeRegistry();

  NodeRegistry(const NodeRegistry&) = delete;
  NodeRegistry& operator=(const NodeRegistry&) = delete;

  /// Stores (or replaces) a node's binding after a successful credential activation. A
  /// replaced binding starts with no clock and no log.
  absl::Status Bind(const EnrolledNode& node);

  /// The node's state, or nullptr when it is not enrolled.
  std::shared_ptr<NodeState> Find(const std::string& node_id) const;

  /// With a database shared by replicas: reads `node_id`'s binding and appraisal state again
  /// (another replica may have enrolled it or appraised it since), keeping this replica's
  /// state only when it is newer (by AK clock) than what is stored. A no-op for SQLite.
  void Refresh(const std::string& node_id);

  /// The node whose bound AK has TPM name (or pinned qualified name) `ak_name`, or "" when
  /// no node's AK has it.
  std::string NodeIdForAk(const std::string& ak_name) const;
  /// Records `node_id`'s AK qualified name so NodeIdForAk finds it.
  void RecordQualifiedSigner(const std::string& node_id, const std::string& qualified_name);

  /// Every enrolled node, ordered by node_id.
  std::vector<EnrolledNode> ListNodes() const;
  /// ListNodes' node ids alone (without copying each node's keys).
  std::vector<std::string> NodeIds() const;

  /// Records that `node_id` (an EK digest) may enroll without an EK certificate.
  absl::Status Approve(const std::string& node_id);
  /// Withdraws an approval (the node's existing binding stays until it re-enrolls).
  absl::Status Revoke(const std::string& node_id);
  bool IsApproved(const std::string& node_id) const;
  /// Every approved node_id, ordered.
  std::vector<std::string> ListApproved() const;

  /// Marks `node_id`'s appraisal state as changed; the writer commits it at once (grouped
  /// with every other node marked meanwhile).
  void MarkDirty(const std::string& node_id);
  /// Calls `done` once `node_id`'s appraisal state as of this call is committed (OK), or its
  /// commit failed (the error; the node stays marked and is written again), from the writer's
  /// thread or, when nothing of the node's is pending, at once on the caller's. `done` must
  /// not block.
  void PersistThen(const std::string& node_id, std::function<void(absl::Status)> done);
  /// Writes every changed node's appraisal state now (with CommitWith, in a batch of the
  /// store's).
  absl::Status Flush();
  /// From now on writes the appraisal state inside `store`'s batch transactions, on its
  /// writer connection, instead of in commits of its own: one fsync and one page cache for
  /// both, where two connections to one WAL file each drop the other's cache at every commit.
  /// `store` must be on this registry's database file. A report's verdict and its node's state
  /// then commit together; state no verdict follows is committed within a second. Ends when
  /// either is destroyed (the registry commits on its own again). SQLite only.
  absl::Status CommitWith(SqliteStore* store);
  /// How long the writer lets state changes gather once it sees one, before it commits them
  /// together (as StoreOptions::commit_window for the result store; 0, the default: at once).
  void SetCommitWindow(absl::Duration window);

  /// The enrollments begun and not yet completed: this process's memory with SQLite; with
  /// PostgreSQL the database's, shared by the replicas (pending_enrollments.h).
  PendingEnrollments* pending_enrollments() const { return pending_enrollments_.get(); }

 private:
  struct PgBackend;
  explicit NodeRegistry(sqlite3* db);
  absl::Status Load();
  // The PostgreSQL counterparts (node_registry_postgres.cc).
  absl::Status LoadPostgres();
  absl::Status BindPostgres(const EnrolledNode& node);
  absl::Status SetApprovedPostgres(const std::string& node_id, bool approved);
  // Writes `states`; `stale` gets the nodes whose stored clock another replica advanced.
  absl::Status WriteStatesPostgres(const std::vector<std::shared_ptr<NodeState>>& states,
                                   std::set<std::string>* stale);
  absl::StatusOr<bool> IsApprovedPostgres(const std::string& node_id) const;
  absl::StatusOr<std::vector<std::string>> ListApprovedPostgres() const;
  absl::StatusOr<std::vector<EnrolledNode>> ListNodesPostgres() const;
  absl::StatusOr<std::string> NodeIdForAkPostgres(const std::string& ak_name) const;
  // Publishes loaded states into the maps (mu_ not held by the caller).
  void Publish(const std::vector<std::shared_ptr<NodeState>>& loaded);
  // One commit's nodes, numbered (waiters for commits up to `commit` are answered by it).
  struct Taken {
    std::vector<std::shared_ptr<NodeState>> states;
    uint64_t commit = 0;
  };
  // Takes the marked nodes for the next commit (into in_flight_).
  Taken TakeDirty() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends commit `commit`: its nodes stay marked when `st` failed, its waiters are answered,
  // and `stale` nodes (another replica's state is newer) are refreshed first.
  void FinishCommit(uint64_t commit, const absl::Status& st, const std::set<std::string>& stale)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Flush's commit on the registry's own connection (or PostgreSQL).
  absl::Status FlushOwn() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  // One transaction on db_ writing `states`' appraisal state.
  absl::Status WriteStates(const std::vector<std::shared_ptr<NodeState>>& states);
  // The writes' statements, prepared on one connection (node_registry.cc).
  struct Writer;
  // What a transaction wrote, to remember once it committed: the spool-ledger changes per
  // node and the measurement-log rows per node (serialized).
  struct Written {
    std::vector<std::pair<NodeState*, std::vector<MeasuredBatches::Change>>> ledger;
    std::vector<std::pair<std::string, std::string>> logs;
  };
  // The writes of `states` inside a transaction on `db` with `w` prepared on it.
  absl::Status WriteStatesIn(sqlite3* db, Writer& w,
                             const std::vector<std::shared_ptr<NodeState>>& states,
                             Written* written) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // After `written`'s transaction committed.
  void Remember(Written& written) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // The registry's side of SqliteStore::Join (node_registry.cc), on the store's writer thread.
  class StoreJoin;
  absl::Status WriteJoined(sqlite3* db);
  void JoinedCommitted(const absl::Status& st);
  void LeaveStore();
  void WriterLoop();

  // Runs db_'s checkpoints; closed after db_ (the destructor closes db_ first).
  std::shared_ptr<sqlite::WalCheckpointer> checkpointer_;
  sqlite3* const db_;                                              // nullptr with PostgreSQL
  mutable absl::Mutex db_mu_;                                      // serializes use of db_ and pg_
  std::unique_ptr<Writer> sqlite_writer_ ABSL_GUARDED_BY(db_mu_);  // on db_
  // The measurement-log rows each node has in the database as of the last commit (serialized),
  // so a log that did not change is not rewritten: most reports bring no new log entry.
  std::unordered_map<std::string, std::string> stored_log_ ABSL_GUARDED_BY(db_mu_);
  // With CommitWith: the store whose batches carry the appraisal state (nullptr: commits of
  // the registry's own). Set with flush_mu_ held, before the store's first joined write, and
  // cleared after its last: own commits (under flush_mu_) and joined ones never overlap.
  SqliteStore* commit_store_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::unique_ptr<StoreJoin> store_join_;
  std::unique_ptr<Writer> joined_writer_ ABSL_GUARDED_BY(db_mu_);  // on the store's connection
  // The joined write under way (the store's writer thread's, from WriteJoined to
  // JoinedCommitted), and the status of the last joined commit (for Flush).
  Taken joined_taken_;
  Written joined_written_;
  absl::Status joined_status_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<PgBackend> pg_;
  std::unique_ptr<PendingEnrollments> pending_enrollments_;

  mutable absl::Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<NodeState>> nodes_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::string> node_by_ak_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> approved_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  // Group commit: Flush calls take turns (flush_mu_); the n-th takes dirty_ into in_flight_
  // and, once committed, completes the waiters for commits up to n.
  absl::Mutex flush_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::set<std::string> in_flight_ ABSL_GUARDED_BY(mu_);
  uint64_t started_commits_ ABSL_GUARDED_BY(mu_) = 0;
  struct Waiter {
    uint64_t commit;
    std::string node_id;
    std::function<void(absl::Status)> done;
  };
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  // Nodes whose state a commit refused as behind another replica's before anyone waited for
  // it: the next PersistThen of each is answered ABORTED (what it appraised was behind).
  std::set<std::string> behind_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration commit_window_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  std::thread writer_;
};

}  // namespace vigil::verifier
