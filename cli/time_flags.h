#pragma once

// Times and durations on vigilctl's command line and in its tables.

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vigil::cli {

/// A point in time given as RFC 3339 ("2026-12-06T03:00:00Z", "2026-12-06T04:00:00+01:00")
/// or as a duration before `now` ("90s", "15m", "1h", "1h30m", "7d"). INVALID_ARGUMENT
/// otherwise, naming the text.
absl::StatusOr<absl::Time> ParseTimeFlag(absl::string_view text, absl::Time now);

/// A duration as absl::ParseDuration reads it, plus whole days ("7d"). Must be positive.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text);

/// Nanoseconds since the Unix epoch as RFC 3339 UTC with seconds ("2026-12-06T03:00:00Z"),
/// or "never" for 0 and negative values.
std::string FormatUnixNano(int64_t unix_nano);

/// How long ago `then` was, in the largest whole unit: "4s", "3m", "5h", "2d"; "never" when
/// `then` is 0; "0s" for times in the future (clock skew).
std::string FormatAge(int64_t then_unix_nano, absl::Time now);

/// Nanoseconds since the Unix epoch of `t`.
int64_t ToUnixNano(absl::Time t);

}  // namespace vigil::cli
