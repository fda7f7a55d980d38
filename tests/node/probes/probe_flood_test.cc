// Real BPF: a monitored child generates far more events than a deliberately tiny ring
// buffer and consumer queue hold; every event is either delivered or counted as dropped.
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <atomic>
#include <new>
#include <thread>

#include "absl/time/clock.h"

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

// Set by the parent once both overflow counters moved; the child counts its calls.
struct FloodControl {
  std::atomic<int> stop{0};
  std::atomic<int64_t> calls{0};
};

TEST(ProbeFloodTest, EveryEventIsDeliveredOrCountedAsDropped) {
  ProbeOptions options;
  options.ring_buffer_bytes = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));  // ~10 events
  options.queue_capacity = 256;
  auto source = BpfEventSource::Start(options);
  ASSERT_TRUE(source.ok()) << source.status();

  // Shared with the child. It floods until the parent has seen both the ring buffer and the
  // consumer queue overflow (nothing is drained meanwhile), however the two threads that
  // fill them are scheduled; a cap bounds it if they never do.
  void* mem = mmap(nullptr, sizeof(FloodControl), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* control = new (mem) FloodControl;
  constexpr int64_t kMaxCalls = 20'000'000;
  auto overflowed = [&] {
    v1::ProbeStatus s = (*source)->Status();
    auto count = [&](const char* reason) {
      auto it = s.dropped_events().find(reason);
      return it == s.dropped_events().end() ? uint64_t{0} : it->second;
    };
    return count("ringbuf_full") > 0 && count("queue_full") > 0;
  };
  std::thread watcher;
  auto run = RunChild(
      [control](testing::SharedValues*) {
        while (control->stop.load() == 0 && control->calls.load() < kMaxCalls) {
          syscall(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0);
          control->calls.fetch_add(1);
        }
      },
      [&](int pid) {
        ASSERT_TRUE((*source)->Monitor(pid).ok());
        watcher = std::thread([&] {
          while (!overflowed() && control->calls.load() < kMaxCalls) {
            absl::SleepFor(absl::Milliseconds(5));
          }
          control->stop.store(1);
        });
      });
  if (watcher.joinable()) watcher.join();
  ASSERT_TRUE(WIFEXITED(run.wait_status));
  const int64_t calls = control->calls.load();
  munmap(mem, sizeof(FloodControl));

  // The child generated one prctl event per call and one exit event; only it was monitored.
  const uint64_t generated = static_cast<uint64_t>(calls) + 1;
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
