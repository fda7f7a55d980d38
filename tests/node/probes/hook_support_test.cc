// Hook detection against the running kernel (root): every kind is tried and ends up either
// available or refused with its errno, never assumed.
#include "node/probes/hook_support.h"

#include <unistd.h>

#include <algorithm>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vigil::node {
namespace {

using ::testing::MatchesRegex;

TEST(HookSupportTest, EveryKindIsEitherAvailableOrRefusedWithItsErrno) {
  HookSupport s = DetectHookSupport();
  const std::pair<const char*, bool> kinds[] = {{"fentry", s.fentry},
                                                {"fexit", s.fexit},
                                                {"lsm", s.lsm},
                                                {"kprobe_multi", s.kprobe_multi},
                                                {"kprobe", s.kprobe}};
  EXPECT_EQ(s.available.size() + s.refused.size(), std::size(kinds));
  for (const auto& [kind, ok] : kinds) {
    const std::string prefix = std::string(kind) + ": ";
    const bool listed_available =
        std::find(s.available.begin(), s.available.end(), kind) != s.available.end();
    const auto refused = std::find_if(s.refused.begin(), s.refused.end(),
                                      [&](const std::string& r) { return r.starts_with(prefix); });
    EXPECT_EQ(listed_available, ok) << kind;
    EXPECT_EQ(refused != s.refused.end(), !ok) << kind;
    if (refused != s.refused.end()) {
      EXPECT_THAT(*refused, MatchesRegex(prefix + "E[A-Z0-9]+( \\(.+\\))?")) << kind;
    }
  }
}

// The kprobe PMU exists exactly when the kernel has kprobes; without it the kind is refused
// with ENOENT and that reason, whatever else the kernel allows.
TEST(HookSupportTest, KprobesWithoutAKprobePmuAreRefusedSayingSo) {
  HookSupport s = DetectHookSupport();
  const std::string no_pmu = "kprobe: ENOENT (no kprobe PMU: kernel built without kprobes)";
  if (access("/sys/bus/event_source/devices/kprobe/type", F_OK) != 0) {
    EXPECT_FALSE(s.kprobe);
    EXPECT_THAT(s.refused, ::testing::Contains(no_pmu));
  } else {
    EXPECT_THAT(s.refused, ::testing::Not(::testing::Contains(no_pmu)));
  }
}

TEST(HookSupportTest, SyscallFunctionNamesTheArchitecturesEntryPoint) {
#if defined(__x86_64__)
  EXPECT_EQ(SyscallFunction("ptrace"), "__x64_sys_ptrace");
#elif defined(__aarch64__)
  EXPECT_EQ(SyscallFunction("ptrace"), "__arm64_sys_ptrace");
#endif
}

}  // namespace
}  // namespace vigil::node
