// A verdict acknowledged as durable survives the verifier being killed at any moment.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>

#include "tests/verifier/store/store_test_util.h"
#include "verifier/store/sqlite_store.h"

namespace vigil::verifier {
namespace {

using testing::MakeEvidence;
using testing::MakeVerdict;

constexpr char kNode[] = "durability-node";

// The child: records verdicts as fast as the store takes them and writes the sequence of
// each one acknowledged durable to `ack_fd`, until it is killed.
[[noreturn]] void RecordUntilKilled(const std::string& path, uint64_t first_sequence, int ack_fd) {
  auto store = SqliteStore::Open(path);
  if (!store.ok()) _exit(2);
  std::atomic<uint64_t> acked{0};
  for (uint64_t seq = first_sequence;; ++seq) {
    // Bounded queue: a few hundred verdicts in flight, so batches hold many.
    while (seq - first_sequence > acked.load() + 512) std::this_thread::yield();
    (*store)->RecordVerdict(
        kNode, MakeEvidence("durability-host", seq),
        MakeVerdict(kNode, v1::TRUST_AFFIRMING, static_cast<int64_t>(seq), {}, seq),
        [ack_fd, seq, &acked](absl::Status st) {
          if (!st.ok()) _exit(3);
          if (write(ack_fd, &seq, sizeof(seq)) != static_cast<ssize_t>(sizeof(seq))) _exit(4);
          acked.fetch_add(1);
        });
  }
}

TEST(SqliteStoreDurabilityTest, AcknowledgedVerdictsSurviveSigkill) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/verifier.db";
  std::set<uint64_t> acknowledged;
  constexpr int kKills = 3;
  constexpr size_t kAcksBeforeKill = 400;
  for (int round = 0; round < kKills; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const uint64_t first = static_cast<uint64_t>(round + 1) * 1000000;
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      RecordUntilKilled(path, first, fds[1]);
    }
    close(fds[1]);
    size_t acks_this_round = 0;
    bool killed = false;
    for (;;) {
      pollfd p{fds[0], POLLIN, 0};
      // A bound on a hung child, not a timing expectation.
      const int ready = poll(&p, 1, 120000);
      if (ready <= 0) {
        ADD_FAILURE() << "no acknowledgement from the recording process";
        kill(child, SIGKILL);
        break;
      }
      uint64_t seq = 0;
      const ssize_t n = read(fds[0], &seq, sizeof(seq));
      if (n == 0) break;  // the child is gone and every ack it wrote was read
      ASSERT_EQ(n, static_cast<ssize_t>(sizeof(seq)));
      acknowledged.insert(seq);
      if (++acks_this_round == kAcksBeforeKill && !killed) {
        // Mid-load: the child is recording and committing as this lands.
        ASSERT_EQ(kill(child, SIGKILL), 0);
        killed = true;
      }
    }
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the recording process ended on its own, status " << status;

    auto store = SqliteStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    std::set<uint64_t> stored;
    VerdictQuery query = testing::Query(kNode, "", {}, 0, 0, 1000);
    do {
      auto page = (*store)->ListVerdicts(query);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const v1::Verdict& v : page->verdicts) stored.insert(v.report_sequence());
      query.page_token = page->next_page_token;
    } while (!query.page_token.empty());
    size_t missing = 0;
    for (uint64_t seq : acknowledged) missing += stored.count(seq) == 0 ? 1 : 0;
    EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged verdicts, round "
                           << round;
    // The store is whole: its latest verdict is one that was stored.
    auto latest = (*store)->Latest(kNode);
    ASSERT_TRUE(latest.ok()) << latest.status();
    EXPECT_EQ(stored.count(latest->verdict.report_sequence()), 1u);
  }
  EXPECT_GE(acknowledged.size(), kKills * kAcksBeforeKill);
}

}  // namespace
}  // namespace vigil::verifier
