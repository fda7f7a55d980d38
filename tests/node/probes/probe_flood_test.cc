// Real BPF: a monitored child generates far more events than a deliberately tiny ring
// buffer and consumer queue hold; every event is either delivered or counted as dropped.
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "tests/node/probes/probe_test_util.h"

namespace vigil::node {
namespace {

using testing::EventLog;
using testing::RunChild;

uint64_t TotalDrops(const v1::ProbeStatus& status) {
  uint64_t total = 0;
  for (const auto& [reason, n] : status.dropped_events()) total += n;
  return total;
}

TEST(ProbeFloodTest, EveryEventIsDeliveredOrCountedAsDropped) {
  ProbeOptions options;
  options.ring_buffer_bytes = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));  // ~10 events
  options.queue_capacity = 256;
  auto source = BpfEventSource::Start(options);
  ASSERT_TRUE(source.ok()) << source.status();

  constexpr int kCalls = 20000;
  // Nothing is drained while the child runs, so both the ring buffer and the queue fill.
  auto run = RunChild(
      [](testing::SharedValues*) {
        for (int i = 0; i < kCalls; ++i) syscall(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0);
      },
      [&](int pid) { ASSERT_TRUE((*source)->Monitor(pid).ok()); });
  ASSERT_TRUE(WIFEXITED(run.wait_status));

  // The child generated kCalls prctl events and one exit event; only it was monitored.
  const uint64_t generated = kCalls + 1;
  EventLog log(source->get());
  uint64_t delivered = 0;
  log.WaitUntil([&](const std::vector<v1::RuntimeEvent>& all) {
    delivered = all.size();
    return delivered + TotalDrops((*source)->Status()) >= generated;
  });
  auto status = (*source)->Status();
  EXPECT_EQ(delivered + TotalDrops(status), generated);
  EXPECT_EQ(log.Of(run.pid).size(), delivered) << "every delivered event is the child's";
  EXPECT_GT(status.dropped_events().at("ringbuf_full"), 0u);
  EXPECT_GT(status.dropped_events().at("queue_full"), 0u);
  EXPECT_EQ(status.dropped_events().at("stash_full"), 0u);
  EXPECT_EQ(status.dropped_events().at("malformed"), 0u);
  EXPECT_GE(delivered, 1u);
}

}  // namespace
}  // namespace vigil::node
