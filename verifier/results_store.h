#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "verifier/result_sink.h"
#include "vigil/v1/attestation.pb.h"

struct sqlite3;

namespace vigil::verifier {

/// What the store knows about one node without touching the disk.
struct NodeResultSummary {
  std::string node_id;
  /// From the node's latest report (what the node claims; informational).
  std::string hostname;
  /// Whether an Attest stream of the node is open on this verifier now.
  bool connected = false;
  /// The latest verdict (status TRUST_STATUS_UNSPECIFIED when no report arrived yet).
  v1::Verdict latest_verdict;
  /// Last contact (a report or a stream opening), nanoseconds since the Unix epoch; 0 never.
  int64_t last_seen_unix_nano = 0;
};

/// A node's latest evidence and the verdict it got.
struct LatestResult {
  v1::Evidence evidence;
  v1::Verdict verdict;
};

/// The verifier's result store, in SQLite: per node the latest Evidence (as serialized on
/// the wire) and Verdict, a bounded verdict history, and whether the node is connected.
///
/// Record and SetConnected are called from gRPC's callback threads and never touch the
/// disk: they update an in-memory summary and hand the write to one background writer,
/// which commits everything pending in one transaction (WAL, synchronous=NORMAL: no fsync
/// per report; a crash loses at most the last commits, never half of one). Reads see
/// pending writes. Thread-safe.
///
/// The tables are prefixed `results_` and versioned in `results_schema`, so the file can be
/// shared with other components' tables (the node registry). A newer schema is refused.
class ResultsStore final : public ResultSink {
 public:
  struct Options {
    /// Verdicts kept per node in the history (oldest dropped first).
    size_t history_per_node = 100;
  };

  /// Opens or creates the database at `db_path` (created mode 0600, parent directories
  /// created), migrates the schema, loads the node summaries (every node disconnected) and
  /// starts the writer.
  static absl::StatusOr<std::unique_ptr<ResultsStore>> Open(const std::string& db_path,
                                                            Options options);
  static absl::StatusOr<std::unique_ptr<ResultsStore>> Open(const std::string& db_path) {
    return Open(db_path, Options{});
  }

  /// Writes what is pending, stops the writer and closes the database.
  ~ResultsStore() override;
  ResultsStore(const ResultsStore&) = delete;
  ResultsStore& operator=(const ResultsStore&) = delete;

  // ResultSink
  void Record(const std::string& node_id, const v1::Evidence& evidence,
              const v1::Verdict& verdict) override;
  void SetConnected(const std::string& node_id, bool connected) override;

  /// Every node that reported or connected, ordered by node_id.
  std::vector<NodeResultSummary> ListNodes() const;
  /// One node's summary, if the store knows it.
  std::optional<NodeResultSummary> FindNode(const std::string& node_id) const;
  /// The node's latest evidence and verdict; NOT_FOUND when it never reported.
  absl::StatusOr<LatestResult> Latest(const std::string& node_id) const;
  /// Up to `limit` of the node's most recent verdicts, newest first.
  absl::StatusOr<std::vector<v1::Verdict>> History(const std::string& node_id, size_t limit) const;

  /// Commits everything recorded so far; returns the writer's first error since the last
  /// call (a write that failed is logged and retried with the next batch).
  absl::Status Flush();

 private:
  // What is waiting to be written for one node.
  struct Pending {
    std::optional<std::string> evidence;  // serialized v1::Evidence
    std::optional<v1::Verdict> verdict;   // the latest
    std::vector<std::string> history;     // serialized verdicts, oldest first
    std::optional<bool> connected;
    int64_t last_seen_unix_nano = 0;
  };
  using PendingMap = std::map<std::string, Pending>;
  struct WriterStatements;

  ResultsStore(sqlite3* writer, sqlite3* reader, Options options);
  absl::Status LoadSummaries();
  void WriterLoop();
  absl::Status WriteBatch(const PendingMap& batch);
  // Pending evidence for `node_id` in pending_ or in_flight_ (caller holds mu_).
  std::optional<LatestResult> PendingLatest(const std::string& node_id) const;

  const Options options_;
  sqlite3* const writer_db_;  // used only by the writer thread (and Open/destructor)
  std::unique_ptr<WriterStatements> statements_;  // on writer_db_
  sqlite3* const reader_db_;                      // guarded by reader_mu_
  mutable std::mutex reader_mu_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::map<std::string, NodeResultSummary> summaries_;  // guarded by mu_
  PendingMap pending_;                                  // guarded by mu_
  PendingMap in_flight_;                                // guarded by mu_
  uint64_t enqueued_ = 0;                               // guarded by mu_
  uint64_t committed_ = 0;                              // guarded by mu_
  absl::Status write_error_;                            // guarded by mu_
  bool stopping_ = false;                               // guarded by mu_
  std::thread writer_;
};

}  // namespace vigil::verifier
