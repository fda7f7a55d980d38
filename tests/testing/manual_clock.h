#pragma once

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace vigil::testing {

/// A time source the test moves by hand, readable from any thread (gRPC's, an appraisal
/// pool's): nonce expiry and rate limits then need no sleeping.
struct AtomicManualClock {
  std::atomic<int64_t> unix_nanos{absl::ToUnixNanos(absl::FromUnixSeconds(1'800'000'000))};
  absl::Time Now() const { return absl::FromUnixNanos(unix_nanos.load()); }
  void Advance(absl::Duration d) { unix_nanos += absl::ToInt64Nanoseconds(d); }
};

}  // namespace vigil::testing
