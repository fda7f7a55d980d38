#include "cli/time_flags.h"

#include <gtest/gtest.h>

namespace vigil::cli {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'780'000'000);

TEST(TimeFlagsTest, ReadsRfc3339AndDurationsBeforeNow) {
  EXPECT_EQ(*ParseTimeFlag("2026-05-28T20:26:40Z", kNow), kNow);
  EXPECT_EQ(*ParseTimeFlag("2026-05-28T21:26:40+01:00", kNow), kNow);
  EXPECT_EQ(*ParseTimeFlag("1h", kNow), kNow - absl::Hours(1));
  EXPECT_EQ(*ParseTimeFlag("1h30m", kNow), kNow - absl::Minutes(90));
  EXPECT_EQ(*ParseTimeFlag("7d", kNow), kNow - absl::Hours(24 * 7));
  EXPECT_EQ(*ParseTimeFlag("90s", kNow), kNow - absl::Seconds(90));
}

TEST(TimeFlagsTest, RefusesWhatIsNeither) {
  for (const char* bad : {"", "yesterday", "-1h", "0s", "2026-05-28", "d", "1.5d", "inf"}) {
    absl::StatusOr<absl::Time> t = ParseTimeFlag(bad, kNow);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(ParseTimeFlag("soon", kNow).status().message().find("\"soon\""),
            absl::string_view::npos);
}

TEST(TimeFlagsTest, FormatsAgesInTheLargestWholeUnit) {
  auto ago = [](absl::Duration d) { return ToUnixNano(kNow - d); };
  EXPECT_EQ(FormatAge(ago(absl::Seconds(4)), kNow), "4s");
  EXPECT_EQ(FormatAge(ago(absl::Seconds(59)), kNow), "59s");
  EXPECT_EQ(FormatAge(ago(absl::Minutes(3) + absl::Seconds(20)), kNow), "3m");
  EXPECT_EQ(FormatAge(ago(absl::Hours(5)), kNow), "5h");
  EXPECT_EQ(FormatAge(ago(absl::Hours(24 * 3)), kNow), "3d");
  EXPECT_EQ(FormatAge(ToUnixNano(kNow + absl::Seconds(5)), kNow), "0s");
  EXPECT_EQ(FormatAge(0, kNow), "never");
  EXPECT_EQ(FormatUnixNano(ToUnixNano(kNow)), "2026-05-28T20:26:40Z");
  EXPECT_EQ(FormatUnixNano(0), "never");
}

}  // namespace
}  // namespace vigil::cli
