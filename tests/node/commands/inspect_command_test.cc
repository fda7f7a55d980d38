#include "node/commands/inspect_command.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::node {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::SyscallVerdict Verdict(const std::string& syscall, const std::string& arch,
                           v1::SeccompAction action, uint32_t data, bool bypass) {
  v1::SyscallVerdict v;
  v.set_syscall(syscall);
  v.set_arch(arch);
  v.set_action(action);
  v.set_data(data);
  v.set_bypass(bypass);
  v.set_abi_available(arch != "x32");
  return v;
}

TEST(PrintSnapshotTest, PrintsFieldsVerdictsPerAbiAndGaps) {
  v1::ProcessSnapshot s;
  s.set_pid(42);
  s.set_comm("agent");
  s.set_ppid(1);
  s.set_exe_path("/opt/agent/bin/agent");
  s.set_exe_sha256("ab12");
  s.mutable_capabilities()->set_effective(0);
  s.mutable_capabilities()->set_bounding((uint64_t{1} << 41) - 1);  // every capability
  s.mutable_capabilities()->set_permitted(uint64_t{1} << 21);       // sys_admin
  v1::SeccompState* sec = s.mutable_seccomp();
  sec->set_mode(2);
  sec->set_filter_count(1);
  sec->set_no_new_privs(true);
  *sec->add_verdicts() = Verdict("ptrace", "x86_64", v1::SECCOMP_ACTION_ERRNO, 1, false);
  *sec->add_verdicts() = Verdict("ptrace", "i386", v1::SECCOMP_ACTION_ALLOW, 0, true);
  *sec->add_verdicts() = Verdict("ptrace", "x32", v1::SECCOMP_ACTION_KILL_PROCESS, 0, false);
  std::ostringstream out;
  PrintSnapshot(s, {"pid 42: /proc/42/maps: Permission denied"}, out);
  const std::string text = out.str();

  EXPECT_THAT(text, StartsWith("pid           42 (agent), parent 1\n"));
  EXPECT_THAT(text, HasSubstr("exe           /opt/agent/bin/agent  sha256 ab12\n"));
  EXPECT_THAT(text, HasSubstr("seccomp       filter, 1 filter(s), no_new_privs yes\n"));
  EXPECT_THAT(text, HasSubstr("  abis        x86_64 runs, i386 runs, x32 not on this kernel\n"));
  EXPECT_THAT(text, HasSubstr("  ptrace      x86_64 ERRNO(1)  i386 ALLOW  x32 KILL_PROCESS"
                              "  <- bypass via i386\n"));
  EXPECT_THAT(text, HasSubstr("  bypass      ptrace (denied natively, allowed through another "
                              "ABI)\n"));
  EXPECT_THAT(text, HasSubstr("cap effective 0x0000000000000000 (none)\n"));
  EXPECT_THAT(text, HasSubstr("cap permitted 0x0000000000200000 (sys_admin)\n"));
  EXPECT_THAT(text, HasSubstr("cap bounding  0x000001ffffffffff (all)\n"));
  EXPECT_THAT(text, HasSubstr("children      -\n"));
  EXPECT_THAT(text, HasSubstr("gap           pid 42: /proc/42/maps: Permission denied\n"));
}

TEST(RunInspectTest, PrintsThisProcessAsText) {
  InspectOptions options;
  options.pid = getpid();
  options.syscalls = {"ptrace"};
  std::ostringstream out, err;
  ASSERT_TRUE(RunInspect(options, out, err).ok());
  EXPECT_THAT(out.str(), StartsWith(absl::StrCat("pid           ", getpid(), " (")));
  EXPECT_THAT(out.str(), HasSubstr("\nexe           "));
}

TEST(RunInspectTest, PrintsThisProcessAsJson) {
  InspectOptions options;
  options.pid = getpid();
  options.json = true;
  std::ostringstream out, err;
  ASSERT_TRUE(RunInspect(options, out, err).ok());
  v1::ProcessSnapshot parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out.str(), &parsed).ok()) << out.str();
  EXPECT_EQ(parsed.pid(), getpid());
  // Every field is printed, zero values too (uid 0 is a finding).
  EXPECT_THAT(out.str(), HasSubstr("\"uid_effective\""));
}

TEST(RunInspectTest, AMissingProcessIsNotFoundNamingThePid) {
  InspectOptions options;
  options.pid = 1 << 30;  // above any pid_max
  std::ostringstream out, err;
  absl::Status st = RunInspect(options, out, err);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(st.message()), StartsWith(absl::StrCat("pid ", 1 << 30, ": ")));
  EXPECT_TRUE(out.str().empty());
}

}  // namespace
}  // namespace vigil::node
