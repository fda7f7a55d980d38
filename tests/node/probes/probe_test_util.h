#pragma once

// Helpers shared by the BPF probe tests: run a child process that performs syscalls once
// the test has set up monitoring, and collect the probes' events for it.

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "node/probes/bpf_event_source.h"

namespace vigil::node::testing {

/// Values a child reports back to the test (syscall results, pids), in shared memory.
struct SharedValues {
  static constexpr int kCount = 64;
  int64_t v[kCount];
};

/// A finished child: its pid, wait status and the values it reported.
struct ChildRun {
  int pid = 0;
  int wait_status = 0;
  SharedValues values{};
};

/// Forks a child that blocks until `prepare(child_pid)` has run in the parent (e.g. to
/// monitor it), then runs `body` and exits 0. Waits for the child to exit.
inline ChildRun RunChild(const std::function<void(SharedValues*)>& body,
                         const std::function<void(int)>& prepare) {
  ChildRun run;
  void* mem = mmap(nullptr, sizeof(SharedValues), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    ADD_FAILURE() << "mmap failed";
    return run;
  }
  auto* shared = static_cast<SharedValues*>(mem);
  int go[2];
  if (pipe(go) != 0) {
    ADD_FAILURE() << "pipe failed";
    munmap(mem, sizeof(SharedValues));
    return run;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(99);
    body(shared);
    _exit(0);
  }
  close(go[0]);
  run.pid = pid;
  if (pid > 0) {
    prepare(pid);
    (void)!write(go[1], "g", 1);
    waitpid(pid, &run.wait_status, 0);
  } else {
    ADD_FAILURE() << "fork failed";
  }
  close(go[1]);
  run.values = *shared;
  munmap(mem, sizeof(SharedValues));
  return run;
}

/// Accumulates events drained from a source.
class EventLog {
 public:
  explicit EventLog(BpfEventSource* source) : source_(source) {}

  /// Drains until `done(all events so far)` holds, or a generous safety limit passes (the
  /// caller then asserts on what arrived). Returns whether `done` held.
  bool WaitUntil(const std::function<bool(const std::vector<v1::RuntimeEvent>&)>& done) {
    absl::Time limit = absl::Now() + absl::Seconds(20);
    while (true) {
      source_->Drain(&events_);
      if (done(events_)) return true;
      if (absl::Now() > limit) return false;
      source_->WaitForEvents(absl::Milliseconds(50));
    }
  }

  /// Waits for the exit event of `pid` (events of one process arrive in order).
  bool WaitForExit(int pid) {
    return WaitUntil([pid](const std::vector<v1::RuntimeEvent>& all) {
      return std::any_of(all.begin(), all.end(), [pid](const v1::RuntimeEvent& e) {
        return e.pid() == pid && e.kind() == v1::EVENT_KIND_PROCESS_EXIT;
      });
    });
  }

  /// Events of process `pid`, optionally of one kind only, in arrival order.
  std::vector<v1::RuntimeEvent> Of(int pid, v1::EventKind kind = v1::EVENT_KIND_UNSPECIFIED) const {
    std::vector<v1::RuntimeEvent> out;
    for (const auto& e : events_) {
      if (e.pid() == pid && (kind == v1::EVENT_KIND_UNSPECIFIED || e.kind() == kind)) {
        out.push_back(e);
      }
    }
    return out;
  }

 private:
  BpfEventSource* source_;
  std::vector<v1::RuntimeEvent> events_;
};

}  // namespace vigil::node::testing
