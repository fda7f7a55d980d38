#include "cli/time_flags.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vigil::cli {

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text) {
  absl::Duration d;
  bool parsed = false;
  if (text.size() > 1 && text.back() == 'd') {
    int64_t days = 0;
    if (absl::SimpleAtoi(text.substr(0, text.size() - 1), &days) && days > 0 && days < 100 * 365) {
      d = absl::Hours(24 * days);
      parsed = true;
    }
  } else {
    parsed = absl::ParseDuration(text, &d);
  }
  if (!parsed || d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a positive duration (e.g. 90s, 15m, 1h30m, 7d)"));
  }
  return d;
}

absl::StatusOr<absl::Time> ParseTimeFlag(absl::string_view text, absl::Time now) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return t;
  if (absl::StatusOr<absl::Duration> d = ParseDurationFlag(text); d.ok()) return now - *d;
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", text,
      "\" is neither an RFC 3339 time (2026-12-06T03:00:00Z) nor a duration before now "
      "(90s, 15m, 1h, 7d)"));
}

std::string FormatUnixNano(int64_t unix_nano) {
  if (unix_nano <= 0) return "never";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixNanos(unix_nano),
                          absl::UTCTimeZone());
}

std::string FormatAge(int64_t then_unix_nano, absl::Time now) {
  if (then_unix_nano <= 0) return "never";
  const absl::Duration age = now - absl::FromUnixNanos(then_unix_nano);
  if (age < absl::Seconds(1)) return "0s";
  if (age < absl::Minutes(1)) return absl::StrCat(absl::ToInt64Seconds(age), "s");
  if (age < absl::Hours(1)) return absl::StrCat(absl::ToInt64Minutes(age), "m");
  if (age < absl::Hours(48)) return absl::StrCat(absl::ToInt64Hours(age), "h");
  return absl::StrCat(absl::ToInt64Hours(age) / 24, "d");
}

int64_t ToUnixNano(absl::Time t) { return absl::ToUnixNanos(t); }

}  // namespace vigil::cli
