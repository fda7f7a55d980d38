#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vigil/v1/attestation.pb.h"
#include "vigil/v1/fleet.pb.h"

namespace vigil::verifier {

/// What the store knows about one node, served from memory.
struct NodeResultSummary {
  std::string node_id;
  /// From the node's latest report (what the node claims; informational).
  std::string hostname;
  /// Whether at least one Attest stream of the node is open on this verifier now (with
  /// PostgreSQL: on any live replica sharing the database).
  bool connected = false;
  /// The latest durable verdict (status TRUST_STATUS_UNSPECIFIED when none yet).
  v1::Verdict latest_verdict;
  /// Last contact (a durable report or a stream opening), nanoseconds since the Unix epoch.
  int64_t last_seen_unix_nano = 0;
  /// Whether an operator revoked the node, who, when and why.
  bool revoked = false;
  std::string revoked_by;
  int64_t revoked_unix_nano = 0;
  std::string revoked_reason;
};

/// A node's id and the hostname of its latest report (empty when it has none).
struct NodeName {
  std::string node_id;
  std::string hostname;
};

/// A node's latest evidence and the verdict it got.
struct LatestResult {
  v1::Evidence evidence;
  v1::Verdict verdict;
};

/// ListVerdicts filters; an empty or zero field matches everything.
struct VerdictQuery {
  std::string node_id;
  /// A WorkloadVerdict.workload_id or WorkloadIdentity.name. When set, `statuses` match
  /// that workload's status; otherwise the verdict's overall status.
  std::string workload;
  std::vector<v1::TrustStatus> statuses;
  /// Appraisal time range, nanoseconds since the Unix epoch: since inclusive, until exclusive.
  int64_t since_unix_nano = 0;
  int64_t until_unix_nano = 0;
  /// 0 means the default (100); more than 1000 is capped at 1000.
  uint32_t page_size = 0;
  /// From a previous VerdictPage; empty for the first page.
  std::string page_token;
  /// When not 0, a page also ends before its verdicts' serialized bytes would pass this
  /// many (never before its first verdict), so that it fits one message.
  size_t max_bytes = 0;
};

struct VerdictPage {
  /// Newest first (by appraisal time, then by storage order).
  std::vector<v1::Verdict> verdicts;
  /// Empty when there are no more.
  std::string next_page_token;
};

struct AuditPage {
  /// Newest first.
  std::vector<v1::AuditRecord> records;
  std::string next_page_token;
};

struct ChangesPage {
  /// Oldest first, each with its cursor.
  std::vector<v1::VerdictChange> changes;
  /// Where the next call resumes: the last change's cursor, or the cursor given when there
  /// was none.
  std::string cursor;
};

/// Retention limits, shared by every Store implementation.
struct StoreOptions {
  /// Verdicts and status changes appraised longer ago than this are deleted (0: kept).
  absl::Duration retention_max_age = absl::ZeroDuration();
  /// At most this many verdicts are kept per node (0: no limit).
  size_t retention_max_verdicts_per_node = 0;
  /// How often the writer applies retention when one of the limits is set.
  absl::Duration retention_interval = absl::Minutes(1);
  /// How long the writer lets verdict writes gather once it sees one, before it commits
  /// them together (0: commit at once). Every commit pays an fsync and rewrites the pages
  /// its writes share; a short window turns many small commits into one.
  absl::Duration commit_window = absl::ZeroDuration();
};

/// What one ApplyRetention call deleted.
struct RetentionResult {
  size_t verdicts = 0;
  size_t changes = 0;
};

/// Cancels a change subscription when destroyed; after the destructor returns the
/// callback is not running and never runs again.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

/// The verifier's durable store: nodes and their latest evidence, verdict history with
/// per-workload rows, the status-change log watchers read, policies and their revisions,
/// node revocations and the operators' audit log.
///
/// Verdicts are written by group commit: RecordVerdict queues, one writer commits whatever
/// is queued in one transaction with one fsync, then reports durability. Readers only see
/// committed data. Policies, revocations and audit records are written through (durable
/// when the call returns). Implementations are thread-safe. See docs/store.md.
class Store {
 public:
  using DurableCallback = std::function<void(absl::Status)>;

  virtual ~Store() = default;

  /// Queues `verdict` (about `evidence`) from `node_id`. `on_durable` runs on the writer
  /// thread once the verdict is on stable storage (OK) or could not be written (error);
  /// it must not block and must not call back into the store's write methods and wait.
  virtual void RecordVerdict(const std::string& node_id, const v1::Evidence& evidence,
                             const v1::Verdict& verdict, DurableCallback on_durable) = 0;

  /// A node's Attest stream opened (true) or closed (false). Streams are counted: the node
  /// is connected while at least one is open.
  virtual void SetConnected(const std::string& node_id, bool connected) = 0;

  /// Every node that reported, connected or was revoked, ordered by node_id.
  virtual std::vector<NodeResultSummary> ListNodes() const = 0;
  virtual std::optional<NodeResultSummary> FindNode(const std::string& node_id) const = 0;
  /// ListNodes' nodes by id and hostname only, ordered by node_id: no verdict is read, so
  /// finding a node by name costs a scan of names, not of the fleet's latest verdicts.
  virtual std::vector<NodeName> NodeNames() const = 0;
  /// Whether an operator revoked the node: FindNode's `revoked`, which a store may answer
  /// without copying the node's latest verdict (every appraisal asks).
  virtual bool IsRevoked(const std::string& node_id) const {
    std::optional<NodeResultSummary> n = FindNode(node_id);
    return n.has_value() && n->revoked;
  }
  /// The node's latest evidence and verdict; NOT_FOUND when it never reported.
  virtual absl::StatusOr<LatestResult> Latest(const std::string& node_id) const = 0;

  /// Stored verdicts, newest first, filtered and paginated (keyset on appraisal time and
  /// storage order, so pages stay stable while verdicts arrive). INVALID_ARGUMENT for a
  /// token this store did not issue.
  virtual absl::StatusOr<VerdictPage> ListVerdicts(const VerdictQuery& query) const = 0;

  /// Up to `limit` status changes after `cursor` (empty: from the oldest kept), oldest
  /// first, only `node_id`'s when it is not empty. OUT_OF_RANGE when retention already
  /// removed changes after `cursor`; INVALID_ARGUMENT for a cursor this store did not issue.
  virtual absl::StatusOr<ChangesPage> ChangesAfter(const std::string& cursor,
                                                   const std::string& node_id,
                                                   size_t limit) const = 0;
  /// The cursor of the newest committed change ("" when there is none): resuming from it
  /// yields only changes stored from now on.
  virtual std::string LatestCursor() const = 0;
  /// Calls `on_commit` (on a thread of the store's, after readers can see the data) each
  /// time a commit stored at least one status change: SQLite's writer thread; with
  /// PostgreSQL, the thread that listens for the commits of every replica. It must not
  /// block.
  virtual std::unique_ptr<Subscription> Subscribe(std::function<void()> on_commit) = 0;

  /// Stores a new revision of `policy.name()` with the given revision, sha256, yaml and
  /// updated_by (updated_unix_nano is set here when 0). FAILED_PRECONDITION unless the
  /// revision is greater than the stored one. Returns what was stored.
  virtual absl::StatusOr<v1::PolicyInfo> PutPolicy(const v1::PolicyInfo& policy) = 0;
  /// The current revision of every policy, ordered by name.
  virtual absl::StatusOr<std::vector<v1::PolicyInfo>> ListPolicies() const = 0;
  /// Every kept revision of one policy, newest first; NOT_FOUND for an unknown policy.
  virtual absl::StatusOr<std::vector<v1::PolicyInfo>> PolicyRevisions(
      const std::string& name) const = 0;

  /// Marks the node revoked by `actor` for `reason` (the node need not have reported).
  virtual absl::Status RevokeNode(const std::string& node_id, const std::string& actor,
                                  const std::string& reason) = 0;
  /// Clears a revocation (an operator approved the node again); OK when none.
  virtual absl::Status ClearRevocation(const std::string& node_id) = 0;

  /// Appends one operator action (time_unix_nano set here when 0). The log is append-only.
  virtual absl::Status AppendAudit(const v1::AuditRecord& record) = 0;
  /// The audit log, newest first; page_size as for ListVerdicts.
  virtual absl::StatusOr<AuditPage> ListAudit(uint32_t page_size,
                                              const std::string& page_token) const = 0;

  /// Waits until everything queued before the call is committed; returns the first write
  /// error since the last call.
  virtual absl::Status Flush() = 0;

  /// Applies the retention limits now, through the writer, until nothing more is due.
  virtual absl::StatusOr<RetentionResult> ApplyRetention() = 0;
};

/// Whether an item of `item_bytes` serialized bytes still joins a page (a repeated field of
/// one message) that holds `used` bytes so far under `max_bytes` (0: no limit); adds it to
/// `used` when it does. The first item always joins, so a page is never empty while items
/// remain. ListVerdicts' and ListNodes' pages.
bool JoinsPage(size_t item_bytes, size_t max_bytes, size_t& used);

/// Every verdict appraised in [since, until), oldest first, read page by page (for the
/// OSCAL export). RESOURCE_EXHAUSTED when there are more than `max_verdicts`.
absl::StatusOr<std::vector<v1::Verdict>> VerdictsInRange(const Store& store,
                                                         int64_t since_unix_nano,
                                                         int64_t until_unix_nano,
                                                         size_t max_verdicts);

}  // namespace vigil::verifier
