#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/openssl_util.h"
#include "vigil/v1/attestation.pb.h"

struct sqlite3;

namespace vigil::verifier {

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
};

/// TPMS_CLOCK_INFO of an AK's latest accepted quote.
struct QuoteClock {
  uint64_t clock = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
};

/// The verifier's appraisal state for one enrolled node: its binding, its AK parsed once,
/// and (under `mu`) the clock of the AK's last accepted quote and the measurement log the
/// verifier holds. Appraisals of one node serialize on `mu`.
class NodeState {
 public:
  NodeState(EnrolledNode node, EvpPkeyPtr ak_key)
      : node_(std::move(node)), ak_key_(std::move(ak_key)) {}

  const EnrolledNode& node() const { return node_; }
  /// The AK's public key; EVP_PKEY verification is safe from many threads.
  EVP_PKEY* ak_key() const { return ak_key_.get(); }

  absl::Mutex mu;
  std::optional<QuoteClock> last_clock ABSL_GUARDED_BY(mu);
  /// The AK's qualified name as its TPM reports it in quotes (TPMS_ATTEST.qualifiedSigner),
  /// pinned at the first accepted quote; empty until then. Kept in memory only.
  std::string qualified_signer ABSL_GUARDED_BY(mu);
  std::vector<v1::MeasurementLogEntry> log ABSL_GUARDED_BY(mu);

 private:
  const EnrolledNode node_;
  const EvpPkeyPtr ak_key_;
};

/// Enrolled nodes, operator approvals and per-AK appraisal state, persisted in SQLite (WAL,
/// synchronous=NORMAL) and served from memory. Enrollment and approvals write through;
/// appraisal state is written behind by a background thread (every second and on
/// destruction), so the per-report path never touches the disk. Thread-safe.
class NodeRegistry {
 public:
  /// Opens (creating tables as needed) the database at `db_path` (":memory:" for none) and
  /// loads every node, parsing each AK once.
  static absl::StatusOr<std::unique_ptr<NodeRegistry>> Open(const std::string& db_path);
  ~NodeRegistry();

  NodeRegistry(const NodeRegistry&) = delete;
  NodeRegistry& operator=(const NodeRegistry&) = delete;

  /// Stores (or replaces) a node's binding after a successful credential activation. A
  /// replaced binding starts with no clock and no log.
  absl::Status Bind(const EnrolledNode& node);

  /// The node's state, or nullptr when it is not enrolled.
  std::shared_ptr<NodeState> Find(const std::string& node_id) const;

  /// The node whose bound AK has TPM name (or pinned qualified name) `ak_name`, or "" when
  /// no node's AK has it.
  std::string NodeIdForAk(const std::string& ak_name) const;
  /// Records `node_id`'s AK qualified name so NodeIdForAk finds it.
  void RecordQualifiedSigner(const std::string& node_id, const std::string& qualified_name);

  /// Every enrolled node, ordered by node_id.
  std::vector<EnrolledNode> ListNodes() const;

  /// Records that `node_id` (an EK digest) may enroll without an EK certificate.
  absl::Status Approve(const std::string& node_id);
  /// Withdraws an approval (the node's existing binding stays until it re-enrolls).
  absl::Status Revoke(const std::string& node_id);
  bool IsApproved(const std::string& node_id) const;
  /// Every approved node_id, ordered.
  std::vector<std::string> ListApproved() const;

  /// Marks `node_id`'s clock and log as changed; the writer persists them soon.
  void MarkDirty(const std::string& node_id);
  /// Writes every changed node's clock and log now.
  absl::Status Flush();

 private:
  explicit NodeRegistry(sqlite3* db);
  absl::Status Load();
  void WriterLoop();

  sqlite3* const db_;
  mutable absl::Mutex db_mu_;  // serializes use of db_

  mutable absl::Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<NodeState>> nodes_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::string> node_by_ak_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> approved_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace vigil::verifier
