#include "verifier/store/postgres_store.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <limits>
#include <pqxx/pqxx>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "verifier/store/postgres_schema.h"
#include "verifier/store/postgres_util.h"
#include "verifier/store/store_internal.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

// The channel every replica's commits of status changes are announced on.
constexpr char kChangesChannel[] = "vigil_verdict_changes";
// Held from the first change id a transaction takes until its COMMIT ("vigil" + 2).
constexpr int64_t kChangesLock = 0x766967696c0002;
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::seconds(5);

}  // namespace

using store_internal::kRetentionRowsPerPass;
using store_internal::NowUnixNanos;

// LISTENs on the changes channel for as long as it lives; each notification wakes the
// store's subscribers.
class PostgresStore::Listener final : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection& connection, PostgresStore* store)
      : pqxx::notification_receiver(connection, kChangesChannel), store_(store) {}
  void operator()(const std::string&, int) override { store_->subscribers_.Notify(); }

 private:
  PostgresStore* const store_;
};

absl::StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& url,
                                                                   Options options) {
  if (!pg::IsPostgresUrl(url)) {
    return absl::InvalidArgumentError(
        absl::StrCat("store: not a PostgreSQL URL: ", pg::MaskPassword(url)));
  }
  std::unique_ptr<PostgresStore> store(new PostgresStore(url, options));
  ASSIGN_OR_RETURN(store->writer_conn_, pg::Connect(url, "store"));
  RETURN_IF_ERROR(pg::MigrateSchema(*store->writer_conn_));
  store->writer_pid_ = store->writer_conn_->backendpid();
  // Streams recorded by connections that are gone (a replica that was killed, or this one
  // before a restart) no longer count.
  RETURN_IF_ERROR(pg::Guard("store: clearing streams of closed connections", [&] {
    pqxx::work tx(*store->writer_conn_);
    tx.exec(
        "DELETE FROM node_streams s WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
        "WHERE a.pid = s.backend_pid AND a.backend_start = s.backend_start)");
    tx.commit();
    return absl::OkStatus();
  }));
  store->LatestCursor();  // caches the newest change id
  store->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (store->wake_fd_ < 0) return absl::InternalError("store: eventfd failed");
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  store->listener_ = std::thread([s = store.get()] { s->ListenLoop(); });
  return store;
}

PostgresStore::PostgresStore(std::string url, Options options)
    : url_(std::move(url)), options_(options) {}

PostgresStore::~PostgresStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (writer_.joinable()) writer_.join();
  if (listener_.joinable()) listener_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void PostgresStore::Enqueue(Op op) {
  absl::Status refused = absl::UnavailableError("store: closing");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (outage_ && !op.retry) {
      // A caller is waiting: it is told now rather than after the outage.
      refused = absl::UnavailableError(
          absl::StrCat("store: PostgreSQL at ", pg::DescribeTarget(url_), " is unavailable"));
    } else if (!stopping_) {
      queue_.push_back(std::move(op));
      op.done = nullptr;
    }
  }
  if (op.done) op.done(refused);
  work_cv_.notify_one();
}

absl::Status PostgresStore::RunWriteThrough(Apply apply) {
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  Enqueue(Op{std::move(apply), [done](absl::Status st) { done->set_value(std::move(st)); },
             /*retry=*/false});
  return result.get();
}

void PostgresStore::Record(const std::string& node_id, const v1::Evidence& evidence,
                           const v1::Verdict& verdict) {
  RecordVerdict(node_id, evidence, verdict, [node_id](absl::Status st) {
    if (!st.ok()) spdlog::error("store: verdict of node {} not stored: {}", node_id, st.ToString());
  });
}

void PostgresStore::RecordVerdict(const std::string& node_id, const v1::Evidence& evidence,
                                  const v1::Verdict& verdict, DurableCallback on_durable) {
  // Serialized here, on the caller's thread: the writer holds bytes, not the message tree.
  // A batch retried after an outage applies the same record again, so it is not moved from.
  Enqueue(
      Op{[this, record = store_internal::MakeVerdictRecord(node_id, evidence, verdict)](
             pqxx::transaction_base& tx, Batch& batch) { return ApplyVerdict(tx, batch, record); },
         std::move(on_durable)});
}

void PostgresStore::SetConnected(const std::string& node_id, bool connected) {
  const int64_t now = NowUnixNanos();
  int open_now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int& open = open_streams_[node_id];
    open = connected ? open + 1 : std::max(0, open - 1);
    open_now = open;
    if (open == 0) open_streams_.erase(node_id);
    int64_t& seen = local_seen_[node_id];
    seen = std::max(seen, now);
  }
  Enqueue(Op{[node_id, open_now, now](pqxx::transaction_base& tx, Batch&) -> absl::Status {
               tx.exec_params(
                   "INSERT INTO nodes (node_id, last_seen_unix_nano) VALUES ($1, $2) ON "
                   "CONFLICT (node_id) DO UPDATE SET last_seen_unix_nano = "
                   "GREATEST(nodes.last_seen_unix_nano, excluded.last_seen_unix_nano)",
                   node_id, now);
               if (open_now > 0) {
                 tx.exec_params(
                     "INSERT INTO node_streams (node_id, backend_pid, backend_start, streams) "
                     "SELECT $1, pid, backend_start, $2 FROM pg_stat_activity WHERE pid = "
                     "pg_backend_pid() ON CONFLICT (node_id, backend_pid, backend_start) DO "
                     "UPDATE SET streams = excluded.streams",
                     node_id, open_now);
               } else {
                 tx.exec_params(
                     "DELETE FROM node_streams WHERE node_id = $1 AND backend_pid = "
                     "pg_backend_pid()",
                     node_id);
               }
               return absl::OkStatus();
             },
             nullptr});
}

absl::Status PostgresStore::ApplyVerdict(pqxx::transaction_base& tx, Batch& batch,
                                         const store_internal::VerdictRecord& r) {
  const std::string& node_id = r.node_id;
  const int64_t now = NowUnixNanos();
  const int64_t appraised = r.appraised_unix_nano != 0 ? r.appraised_unix_nano : now;
  const pqxx::binarystring verdict_blob(r.verdict);
  const int64_t verdict_id =
      tx.exec_params1(
            "INSERT INTO verdicts (node_id, verdict, appraised_unix_nano, status, "
            "evidence_sha256, policy_digest) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            node_id, verdict_blob, appraised, static_cast<int>(r.status), r.evidence_sha256,
            r.policy_digest)[0]
          .as<int64_t>();
  for (const store_internal::VerdictRecord::Workload& wv : r.workloads) {
    tx.exec_params(
        "INSERT INTO verdict_workloads (verdict_id, workload_id, name, status) VALUES ($1, $2, "
        "$3, $4) ON CONFLICT DO NOTHING",
        verdict_id, wv.workload_id, wv.name, static_cast<int>(wv.status));
  }
  // A spooled batch's verdict is history: what the node observed during an outage must not
  // replace what it reports now (admission and status decide on the latest).
  if (r.from_spool) return absl::OkStatus();

  // The node's row is locked for the rest of the transaction: whichever replica appraises
  // the node, its changes are computed against the status committed before.
  tx.exec_params("INSERT INTO nodes (node_id) VALUES ($1) ON CONFLICT (node_id) DO NOTHING",
                 node_id);
  auto previous_status = static_cast<v1::TrustStatus>(
      tx.exec_params1("SELECT status FROM nodes WHERE node_id = $1 FOR UPDATE", node_id)[0]
          .as<int>());
  std::map<std::string, std::pair<v1::TrustStatus, std::string>> workloads;
  for (const pqxx::row& row : tx.exec_params(
           "SELECT workload_id, name, status FROM workload_status WHERE node_id = $1", node_id)) {
    workloads[row[0].as<std::string>()] = {static_cast<v1::TrustStatus>(row[2].as<int>()),
                                           row[1].as<std::string>()};
  }
  tx.exec_params(
      "UPDATE nodes SET hostname = $2, evidence = $3, verdict = $4, status = $5, "
      "last_seen_unix_nano = GREATEST(last_seen_unix_nano, $6), evidence_sha256 = $7, "
      "latest_verdict_id = $8 WHERE node_id = $1",
      node_id, r.hostname, pqxx::binarystring(r.evidence), verdict_blob, static_cast<int>(r.status),
      now, r.evidence_sha256, verdict_id);

  std::vector<Change> changes;
  if (previous_status != r.status) {
    changes.push_back({node_id, "", "", previous_status, r.status, appraised, r.verdict});
  }
  for (const store_internal::VerdictRecord::Workload& wv : r.workloads) {
    auto it = workloads.find(wv.workload_id);
    const bool known = it != workloads.end();
    const v1::TrustStatus previous = known ? it->second.first : v1::TRUST_STATUS_UNSPECIFIED;
    if (previous != wv.status) {
      changes.push_back(
          {node_id, wv.workload_id, wv.name, previous, wv.status, appraised, r.verdict});
    }
    if (!known || previous != wv.status || it->second.second != wv.name) {
      tx.exec_params(
          "INSERT INTO workload_status (node_id, workload_id, name, status) VALUES ($1, $2, $3, "
          "$4) ON CONFLICT (node_id, workload_id) DO UPDATE SET name = excluded.name, status = "
          "excluded.status",
          node_id, wv.workload_id, wv.name, static_cast<int>(wv.status));
    }
  }
  for (Change& c : changes) batch.changes.push_back(std::move(c));
  // This replica's view when the database cannot be read; the verdict stays serialized.
  batch.publish.push_back([this, node_id, hostname = r.hostname, verdict = r.verdict, now] {
    store_internal::CachedNode& n = cached_[node_id];
    n.summary.node_id = node_id;
    n.summary.hostname = hostname;
    n.latest_verdict = verdict;
    n.summary.last_seen_unix_nano = std::max(n.summary.last_seen_unix_nano, now);
  });
  return absl::OkStatus();
}

absl::StatusOr<RetentionResult> PostgresStore::RetentionPass(pqxx::transaction_base& tx) {
  RetentionResult result;
  if (options_.retention_max_age > absl::ZeroDuration()) {
    const int64_t cutoff = NowUnixNanos() - absl::ToInt64Nanoseconds(options_.retention_max_age);
    // A node's latest verdict stays whatever its age: it is what the node is judged by.
    result.verdicts += tx.exec_params(
                             "DELETE FROM verdicts WHERE id IN (SELECT id FROM verdicts WHERE "
                             "appraised_unix_nano < $1 AND id NOT IN (SELECT latest_verdict_id "
                             "FROM nodes WHERE latest_verdict_id IS NOT NULL) LIMIT $2)",
                             cutoff, kRetentionRowsPerPass)
                           .affected_rows();
    // Changes go oldest first and stop at the first one inside the window, so the kept log
    // is always a suffix (see SqliteStore).
    int64_t through = 0;
    for (const pqxx::row& r :
         tx.exec_params("SELECT id, appraised_unix_nano FROM verdict_changes ORDER BY id LIMIT $1",
                        kRetentionRowsPerPass)) {
      if (r[1].as<int64_t>() >= cutoff) break;
      through = r[0].as<int64_t>();
    }
    if (through != 0) {
      result.changes +=
          tx.exec_params("DELETE FROM verdict_changes WHERE id <= $1", through).affected_rows();
      tx.exec_params(
          "UPDATE store_meta SET value = GREATEST(value, $1) WHERE key = "
          "'changes_pruned_through'",
          through);
    }
  }
  if (options_.retention_max_verdicts_per_node > 0) {
    for (const pqxx::row& r : tx.exec("SELECT node_id FROM nodes ORDER BY node_id")) {
      if (result.verdicts >= static_cast<size_t>(kRetentionRowsPerPass)) break;
      result.verdicts +=
          tx.exec_params(
                "DELETE FROM verdicts WHERE id IN (SELECT id FROM verdicts WHERE node_id = $1 "
                "ORDER BY appraised_unix_nano DESC, id DESC LIMIT $3 OFFSET $2) AND id IS "
                "DISTINCT FROM (SELECT latest_verdict_id FROM nodes WHERE node_id = $1)",
                r[0].as<std::string>(),
                static_cast<int64_t>(options_.retention_max_verdicts_per_node),
                kRetentionRowsPerPass)
              .affected_rows();
    }
  }
  return result;
}

absl::StatusOr<RetentionResult> PostgresStore::ApplyRetention() {
  return store_internal::RetainUntilDone([this]() -> absl::StatusOr<RetentionResult> {
    RetentionResult pass;
    RETURN_IF_ERROR(RunWriteThrough([this, &pass](pqxx::transaction_base& tx, Batch&) {
      ASSIGN_OR_RETURN(pass, RetentionPass(tx));
      return absl::OkStatus();
    }));
    return pass;
  });
}

void PostgresStore::WriterLoop() {
  store_internal::RunWriterLoop(
      mu_, work_cv_, queue_, stopping_, options_,
      [this](std::chrono::steady_clock::time_point* next_retention) {
        return Op{[this, next_retention](pqxx::transaction_base& tx, Batch&) -> absl::Status {
                    ASSIGN_OR_RETURN(RetentionResult r, RetentionPass(tx));
                    if (r.verdicts + r.changes >= static_cast<size_t>(kRetentionRowsPerPass)) {
                      *next_retention = std::chrono::steady_clock::now();
                    }
                    return absl::OkStatus();
                  },
                  nullptr, /*retry=*/false};
      },
      [this](std::vector<Op>& ops) { CommitWithRetry(ops); });
}

void PostgresStore::CommitWithRetry(std::vector<Op>& ops) {
  auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstBackoff);
  bool outage = false;
  for (;;) {
    absl::Status transient;
    if (TryCommit(ops, &transient)) break;
    if (!outage) {
      // Once per outage; the batch waits, unacknowledged, until the server is back.
      spdlog::error("store: PostgreSQL at {} unavailable, retrying writes with backoff: {}",
                    pg::DescribeTarget(url_), transient.ToString());
      outage = true;
    }
    // Write-through calls have a caller waiting: they fail now and the caller decides.
    std::vector<Op> kept;
    for (Op& op : ops) {
      if (op.retry) {
        kept.push_back(std::move(op));
      } else if (op.done) {
        op.done(transient);
      }
    }
    ops.swap(kept);
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      lock.unlock();
      for (Op& op : ops) {
        if (op.done) op.done(absl::UnavailableError("store: closing while PostgreSQL is down"));
      }
      return;
    }
    outage_ = true;
    if (ops.empty()) {
      outage_ = false;
      return;
    }
    work_cv_.wait_for(lock, backoff, [this] { return stopping_; });
    // Writes queued meanwhile join the retried batch (write-through ones fail with it).
    for (Op& op : queue_) ops.push_back(std::move(op));
    queue_.clear();
    backoff =
        std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
  }
  if (outage) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      outage_ = false;
    }
    spdlog::info("store: PostgreSQL at {} is back", pg::DescribeTarget(url_));
  }
}

bool PostgresStore::TryCommit(std::vector<Op>& ops, absl::Status* transient) {
  Batch batch;
  std::vector<absl::Status> results(ops.size());
  absl::Status st;
  int64_t last_change_id = 0;
  try {
    if (writer_conn_ == nullptr || !writer_conn_->is_open()) {
      writer_conn_.reset();
      absl::StatusOr<std::unique_ptr<pqxx::connection>> c = pg::Connect(url_, "store");
      if (!c.ok()) {
        *transient = c.status();
        return false;
      }
      writer_conn_ = *std::move(c);
      writer_pid_ = writer_conn_->backendpid();
      std::lock_guard<std::mutex> lock(mu_);
      streams_dirty_ = true;
    }
    pqxx::work tx(*writer_conn_);
    std::map<std::string, int> streams;
    bool rewrite_streams;
    {
      std::lock_guard<std::mutex> lock(mu_);
      rewrite_streams = streams_dirty_;
      if (rewrite_streams) streams = open_streams_;
    }
    if (rewrite_streams) {
      // A new connection: the streams this replica has open are recorded under it.
      tx.exec("DELETE FROM node_streams WHERE backend_pid = pg_backend_pid()");
      for (const auto& [node_id, open] : streams) {
        tx.exec_params(
            "INSERT INTO node_streams (node_id, backend_pid, backend_start, streams) SELECT "
            "$1, pid, backend_start, $2 FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            node_id, open);
      }
    }
    for (size_t i = 0; i < ops.size(); ++i) {
      // Each write in its own savepoint: one that fails is undone alone and reported to its
      // caller; the rest of the batch commits.
      pqxx::subtransaction sub(tx, "op");
      try {
        results[i] = ops[i].apply(sub, batch);
      } catch (const std::exception& e) {
        if (pg::IsTransient(e)) throw;
        results[i] = pg::FromException(e, "store: write");
      }
      if (results[i].ok()) {
        sub.commit();
      } else {
        sub.abort();
      }
    }
    if (!batch.changes.empty()) {
      // Change ids are taken and committed in one order across replicas (see the class
      // comment); the lock is released by COMMIT.
      tx.exec_params("SELECT pg_advisory_xact_lock($1)", kChangesLock);
      for (const Change& c : batch.changes) {
        last_change_id =
            tx.exec_params1(
                  "INSERT INTO verdict_changes (node_id, workload_id, workload_name, "
                  "previous_status, status, appraised_unix_nano, verdict) VALUES ($1, $2, $3, "
                  "$4, $5, $6, $7) RETURNING id",
                  c.node_id, c.workload_id, c.workload_name, static_cast<int>(c.previous),
                  static_cast<int>(c.current), c.appraised_unix_nano,
                  pqxx::binarystring(c.verdict_bytes))[0]
                .as<int64_t>();
      }
      tx.exec_params("SELECT pg_notify($1, $2)", std::string(kChangesChannel),
                     std::to_string(last_change_id));
    }
    tx.commit();
    if (rewrite_streams) {
      std::lock_guard<std::mutex> lock(mu_);
      streams_dirty_ = false;
    }
  } catch (const std::exception& e) {
    if (pg::IsTransient(e)) {
      *transient = pg::FromException(e, "store: commit");
      if (writer_conn_ != nullptr && !writer_conn_->is_open()) writer_conn_.reset();
      // A commit whose outcome is unknown may have gone through: the retry writes the batch
      // again (a verdict may then be stored twice, never lost).
      if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) writer_conn_.reset();
      return false;
    }
    st = pg::FromException(e, "store: commit");
  }
  const absl::Status first_error = store_internal::SettleResults(st, results);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (st.ok()) {
      for (const std::function<void()>& publish : batch.publish) publish();
      last_change_id_ = std::max(last_change_id_, last_change_id);
    }
    if (!first_error.ok() && write_error_.ok()) write_error_ = first_error;
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].done) ops[i].done(results[i]);
  }
  return true;
}

void PostgresStore::ListenLoop() {
  auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstBackoff);
  bool outage = false;
  auto stopping = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  };
  // Waits for `fd` to be readable or the store to stop; false when stopping.
  auto wait = [this](int fd, int timeout_ms) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
    poll(fds, fd >= 0 ? 2 : 1, timeout_ms);
    return (fds[0].revents & POLLIN) == 0;
  };
  while (!stopping()) {
    try {
      absl::StatusOr<std::unique_ptr<pqxx::connection>> c = pg::Connect(url_, "store listener");
      if (!c.ok()) throw pqxx::broken_connection(std::string(c.status().message()));
      Listener listener(**c, this);
      if (outage) spdlog::info("store: listening for committed changes again");
      outage = false;
      backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstBackoff);
      // Whatever committed while nobody listened: watchers read from their cursors.
      subscribers_.Notify();
      while (wait((*c)->sock(), -1)) (*c)->get_notifs();
      return;
    } catch (const std::exception& e) {
      if (!outage) {
        spdlog::error("store: not listening for committed changes ({}); reconnecting",
                      pg::FromException(e, "listener").ToString());
        outage = true;
      }
    }
    if (!wait(-1, static_cast<int>(backoff.count()))) return;
    backoff =
        std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
  }
}

std::unique_ptr<Subscription> PostgresStore::Subscribe(std::function<void()> on_commit) {
  return subscribers_.Add(std::move(on_commit));
}

absl::Status PostgresStore::Flush() {
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  // Retried like the verdicts queued before it, so it returns once they are durable.
  Enqueue(Op{[](pqxx::transaction_base&, Batch&) { return absl::OkStatus(); },
             [done](absl::Status st) { done->set_value(std::move(st)); }});
  absl::Status st = result.get();
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status earlier = std::exchange(write_error_, absl::OkStatus());
  return earlier.ok() ? st : earlier;
}

absl::StatusOr<v1::PolicyInfo> PostgresStore::PutPolicy(const v1::PolicyInfo& policy) {
  ASSIGN_OR_RETURN(v1::PolicyInfo stored, store_internal::PolicyToStore(policy));
  RETURN_IF_ERROR(RunWriteThrough([&stored](pqxx::transaction_base& tx, Batch&) -> absl::Status {
    const auto revision = static_cast<int64_t>(stored.revision());
    // Replicas storing the same policy at once take turns on its name.
    tx.exec_params("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", stored.name());
    pqxx::result current =
        tx.exec_params("SELECT revision FROM policies WHERE name = $1", stored.name());
    if (!current.empty() && revision <= current[0][0].as<int64_t>()) {
      return absl::FailedPreconditionError(
          absl::StrCat("policy ", stored.name(), ": revision ", stored.revision(),
                       " is not greater than the stored revision ", current[0][0].as<int64_t>()));
    }
    tx.exec_params(
        "INSERT INTO policy_revisions (name, revision, sha256, updated_unix_nano, updated_by, "
        "yaml) VALUES ($1, $2, $3, $4, $5, $6)",
        stored.name(), revision, stored.sha256(), stored.updated_unix_nano(), stored.updated_by(),
        stored.yaml());
    tx.exec_params(
        "INSERT INTO policies (name, revision) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET "
        "revision = excluded.revision",
        stored.name(), revision);
    return absl::OkStatus();
  }));
  return stored;
}

absl::Status PostgresStore::RevokeNode(const std::string& node_id, const std::string& actor,
                                       const std::string& reason) {
  if (node_id.empty()) return absl::InvalidArgumentError("node_id is required");
  const int64_t now = NowUnixNanos();
  return RunWriteThrough([&](pqxx::transaction_base& tx, Batch& batch) -> absl::Status {
    tx.exec_params(
        "INSERT INTO nodes (node_id, revoked, revoked_by, revoked_unix_nano, revoked_reason) "
        "VALUES ($1, TRUE, $2, $3, $4) ON CONFLICT (node_id) DO UPDATE SET revoked = TRUE, "
        "revoked_by = excluded.revoked_by, revoked_unix_nano = excluded.revoked_unix_nano, "
        "revoked_reason = excluded.revoked_reason",
        node_id, actor, now, reason);
    batch.publish.push_back([this, node_id, actor, reason, now] {
      NodeResultSummary& s = cached_[node_id].summary;
      s.node_id = node_id;
      s.revoked = true;
      s.revoked_by = actor;
      s.revoked_unix_nano = now;
      s.revoked_reason = reason;
    });
    return absl::OkStatus();
  });
}

absl::Status PostgresStore::ClearRevocation(const std::string& node_id) {
  return RunWriteThrough([&](pqxx::transaction_base& tx, Batch& batch) -> absl::Status {
    tx.exec_params(
        "UPDATE nodes SET revoked = FALSE, revoked_by = '', revoked_unix_nano = 0, "
        "revoked_reason = '' WHERE node_id = $1",
        node_id);
    batch.publish.push_back([this, node_id] {
      auto it = cached_.find(node_id);
      if (it == cached_.end()) return;
      NodeResultSummary& s = it->second.summary;
      s.revoked = false;
      s.revoked_by.clear();
      s.revoked_unix_nano = 0;
      s.revoked_reason.clear();
    });
    return absl::OkStatus();
  });
}

absl::Status PostgresStore::AppendAudit(const v1::AuditRecord& record) {
  const int64_t time = record.time_unix_nano() != 0 ? record.time_unix_nano() : NowUnixNanos();
  return RunWriteThrough([&](pqxx::transaction_base& tx, Batch&) -> absl::Status {
    tx.exec_params(
        "INSERT INTO audit_log (time_unix_nano, actor, action, target, detail) VALUES ($1, $2, "
        "$3, $4, $5)",
        time, record.actor(), record.action(), record.target(), record.detail());
    return absl::OkStatus();
  });
}

}  // namespace vigil::verifier
