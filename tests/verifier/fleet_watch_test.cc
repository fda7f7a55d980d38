// WatchVerdicts over a real mutual-TLS verifier: changes arrive as the store commits them,
// in order, each once across reconnects with a cursor; a cursor retention passed is
// OUT_OF_RANGE; watchers end when the client cancels or the server shuts down.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/verifier/fleet_test_fixture.h"
#include "verifier/fleet_service.h"

namespace vigil::verifier {
namespace {

class FleetWatchTest : public FleetFixture {
 protected:
  /// An open watch: created, with its start fixed on the verifier (the initial metadata
  /// arrived), so every change stored from now on reaches it.
  struct Watch {
    std::unique_ptr<v1::Fleet::Stub> stub;
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::VerdictChange>> reader;

    v1::VerdictChange Next() {
      v1::VerdictChange change;
      EXPECT_TRUE(reader->Read(&change)) << "the watch ended";
      return change;
    }
    grpc::Status Cancel() {
      ctx->TryCancel();
      v1::VerdictChange ignored;
      while (reader->Read(&ignored)) {
      }
      return reader->Finish();
    }
  };

  Watch Open(const std::string& cursor, const std::string& node_id = "",
             const std::string& role = "orchestrator") {
    Watch w;
    w.stub = Stub(role);
    w.ctx = std::make_unique<grpc::ClientContext>();
    v1::WatchVerdictsRequest request;
    request.set_cursor(cursor);
    request.set_node_id(node_id);
    w.reader = w.stub->WatchVerdicts(w.ctx.get(), request);
    w.reader->WaitForInitialMetadata();
    return w;
  }

  // Stores a verdict for `node` whose overall status is `status` (one change each time the
  // status differs from the node's previous one).
  void Change(const std::string& node, v1::TrustStatus status) {
    Record(node, FleetVerdict(node, status, absl::Now()));
  }

  std::vector<v1::VerdictChange> AllChanges() {
    auto page = store_->ChangesAfter("", "", 1000);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->changes : std::vector<v1::VerdictChange>{};
  }
};

TEST_F(FleetWatchTest, EmptyCursorStreamsOnlyChangesStoredFromNowOn) {
  const std::string a = FleetNodeId('a');
  ASSERT_NO_FATAL_FAILURE(Change(a, v1::TRUST_AFFIRMING));  // before the watch
  Watch w = Open("");
  ASSERT_NO_FATAL_FAILURE(Change(a, v1::TRUST_WARNING));
  v1::VerdictChange first = w.Next();
  EXPECT_EQ(first.node_id(), a);
  EXPECT_EQ(first.previous_status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(first.status(), v1::TRUST_WARNING);
  EXPECT_EQ(first.verdict().status(), v1::TRUST_WARNING);
  EXPECT_FALSE(first.cursor().empty());
  EXPECT_EQ(w.Cancel().error_code(), grpc::StatusCode::CANCELLED);
}

// A watcher that reconnects with the cursor of the last change it saw gets every later
// change exactly once, across pages (the service reads 2 at a time here) and live commits.
TEST_F(FleetWatchTest, ResumingWithACursorSeesEveryChangeOnce) {
  ASSERT_NO_FATAL_FAILURE(Start({}, [](FleetServiceOptions& o) { o.watch_page_size = 2; }));
  const std::string a = FleetNodeId('a');
  const std::string b = FleetNodeId('b');
  const v1::TrustStatus cycle[] = {v1::TRUST_AFFIRMING, v1::TRUST_WARNING,
                                   v1::TRUST_CONTRAINDICATED, v1::TRUST_AFFIRMING,
                                   v1::TRUST_REJECTED};
  for (v1::TrustStatus s : cycle) ASSERT_NO_FATAL_FAILURE(Change(a, s));
  std::vector<v1::VerdictChange> stored = AllChanges();
  ASSERT_EQ(stored.size(), 5u);

  std::vector<std::string> seen;
  Watch first = Open(stored[0].cursor());
  for (int i = 0; i < 2; ++i) seen.push_back(first.Next().cursor());
  EXPECT_EQ(first.Cancel().error_code(), grpc::StatusCode::CANCELLED);

  // Changes stored while nobody watches.
  ASSERT_NO_FATAL_FAILURE(Change(b, v1::TRUST_AFFIRMING));
  ASSERT_NO_FATAL_FAILURE(Change(a, v1::TRUST_AFFIRMING));

  Watch second = Open(seen.back());
  for (int i = 0; i < 4; ++i) seen.push_back(second.Next().cursor());
  // And live ones.
  ASSERT_NO_FATAL_FAILURE(Change(b, v1::TRUST_WARNING));
  seen.push_back(second.Next().cursor());
  EXPECT_EQ(second.Cancel().error_code(), grpc::StatusCode::CANCELLED);

  std::vector<v1::VerdictChange> all = AllChanges();
  ASSERT_EQ(all.size(), 8u);
  std::vector<std::string> expected;
  for (size_t i = 1; i < all.size(); ++i) expected.push_back(all[i].cursor());
  EXPECT_EQ(seen, expected);
}

TEST_F(FleetWatchTest, NodeFilterLeavesOtherNodesOut) {
  const std::string a = FleetNodeId('a');
  const std::string b = FleetNodeId('b');
  Watch w = Open("", b);
  ASSERT_NO_FATAL_FAILURE(Change(a, v1::TRUST_AFFIRMING));
  ASSERT_NO_FATAL_FAILURE(Change(b, v1::TRUST_WARNING));
  ASSERT_NO_FATAL_FAILURE(Change(a, v1::TRUST_WARNING));
  ASSERT_NO_FATAL_FAILURE(Change(b, v1::TRUST_AFFIRMING));
  v1::VerdictChange first = w.Next();
  v1::VerdictChange second = w.Next();
  EXPECT_EQ(first.node_id(), b);
  EXPECT_EQ(first.status(), v1::TRUST_WARNING);
  EXPECT_EQ(second.node_id(), b);
  EXPECT_EQ(second.status(), v1::TRUST_AFFIRMING);
  EXPECT_EQ(w.Cancel().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(FleetWatchTest, CursorPastRetentionIsOutOfRange) {
  SqliteStore::Options retention;
  retention.retention_max_age = absl::Hours(1);
  ASSERT_NO_FATAL_FAILURE(Start(retention));
  const std::string a = FleetNodeId('a');
  const absl::Time now = absl::Now();
  ASSERT_NO_FATAL_FAILURE(Record(a, FleetVerdict(a, v1::TRUST_REJECTED, now - absl::Hours(3))));
  ASSERT_NO_FATAL_FAILURE(Record(a, FleetVerdict(a, v1::TRUST_AFFIRMING, now - absl::Hours(2))));
  ASSERT_NO_FATAL_FAILURE(Record(a, FleetVerdict(a, v1::TRUST_WARNING, now)));
  std::vector<v1::VerdictChange> before = AllChanges();
  ASSERT_EQ(before.size(), 3u);
  auto deleted = store_->ApplyRetention();
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  ASSERT_EQ(deleted->changes, 2u);

  Watch stale = Open(before[0].cursor());
  v1::VerdictChange ignored;
  EXPECT_FALSE(stale.reader->Read(&ignored));
  grpc::Status st = stale.reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE) << st.error_message();

  // From the last pruned change on, nothing was lost.
  Watch kept = Open(before[1].cursor());
  EXPECT_EQ(kept.Next().cursor(), before[2].cursor());
  EXPECT_EQ(kept.Cancel().error_code(), grpc::StatusCode::CANCELLED);

  Watch forged = Open("not-a-cursor");
  EXPECT_FALSE(forged.reader->Read(&ignored));
  EXPECT_EQ(forged.reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Watchers that come and go while a node's status keeps changing: each sees consecutive
// changes in order (every change's previous status is the last one's status), and cancelling
// in the middle of the flow leaves nothing behind that a later commit could call.
TEST_F(FleetWatchTest, WatchersComingAndGoingWhileChangesFlow) {
  ASSERT_NO_FATAL_FAILURE(Start({}, [](FleetServiceOptions& o) { o.watch_page_size = 3; }));
  const std::string a = FleetNodeId('a');
  ASSERT_NO_FATAL_FAILURE(Change(a, v1::TRUST_AFFIRMING));
  const std::string start = AllChanges().back().cursor();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      Change(a, i % 2 == 0 ? v1::TRUST_WARNING : v1::TRUST_AFFIRMING);
    }
  });
  for (int round = 0; round < 12; ++round) {
    Watch w = Open(round % 2 == 0 ? "" : start, round % 3 == 0 ? a : "");
    v1::VerdictChange previous = w.Next();
    for (int i = 0; i < round % 4; ++i) {
      v1::VerdictChange next = w.Next();
      EXPECT_EQ(next.previous_status(), previous.status()) << "round " << round;
      EXPECT_NE(next.cursor(), previous.cursor());
      previous = next;
    }
    EXPECT_EQ(w.Cancel().error_code(), grpc::StatusCode::CANCELLED);
  }
  stop = true;
  writer.join();

  // Afterwards, a watch from the start sees the whole history once, in order.
  std::vector<v1::VerdictChange> all = AllChanges();
  Watch replay = Open(start);
  for (size_t i = 1; i < all.size(); ++i) {
    ASSERT_EQ(replay.Next().cursor(), all[i].cursor()) << i;
  }
  EXPECT_EQ(replay.Cancel().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(FleetWatchTest, ServerShutdownEndsOpenWatches) {
  const std::string a = FleetNodeId('a');
  Watch idle = Open("", FleetNodeId('b'));  // nothing is stored for b
  Watch busy = Open("");
  ASSERT_NO_FATAL_FAILURE(Change(a, v1::TRUST_AFFIRMING));
  EXPECT_EQ(busy.Next().node_id(), a);
  verifier_->Stop();
  v1::VerdictChange ignored;
  EXPECT_FALSE(idle.reader->Read(&ignored));
  EXPECT_FALSE(idle.reader->Finish().ok());
  EXPECT_FALSE(busy.reader->Read(&ignored));
  EXPECT_FALSE(busy.reader->Finish().ok());
  // Every reactor is gone (its subscription with it): commits call nobody back.
  ASSERT_NO_FATAL_FAILURE(Change(a, v1::TRUST_WARNING));
}

TEST_F(FleetWatchTest, CloseWatchersEndsOpenWatchesUnavailableWhileTheServerRuns) {
  const std::string a = FleetNodeId('a');
  Watch idle = Open("", FleetNodeId('b'));
  Watch busy = Open("");
  ASSERT_NO_FATAL_FAILURE(Change(a, v1::TRUST_AFFIRMING));
  EXPECT_EQ(busy.Next().node_id(), a);
  fleet_->CloseWatchers();
  for (Watch* w : {&idle, &busy}) {
    v1::VerdictChange ignored;
    while (w->reader->Read(&ignored)) {
    }
    grpc::Status st = w->reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  }
  // A watch opened afterwards ends the same way at once; other calls are still served.
  Watch late = Open("");
  v1::VerdictChange ignored;
  EXPECT_FALSE(late.reader->Read(&ignored));
  EXPECT_EQ(late.reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  grpc::ClientContext ctx;
  v1::ListNodesResponse nodes;
  EXPECT_TRUE(Stub("orchestrator")->ListNodes(&ctx, v1::ListNodesRequest(), &nodes).ok());
}

TEST_F(FleetWatchTest, NodeCertificateIsRefused) {
  Watch w = Open("", "", "node");
  v1::VerdictChange ignored;
  EXPECT_FALSE(w.reader->Read(&ignored));
  EXPECT_EQ(w.reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace vigil::verifier
