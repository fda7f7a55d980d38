// The real `vigil-node check` binary against the real demo agents (deploy/demo/) and
// deploy/policies/strict.yaml, with the real probes: a hardened agent started by the check
// passes (exit 0) and a naive one fails (exit 1) naming the rules it breaks; --pid and
// --select check processes already running and leave them running; the JUnit file parses
// and its counts match the JSON; usage errors exit 2 with nothing on standard output; a
// command that exits at once is never a pass of the rules that need a live process; the
// command's own failure is exit 4; what it leaves running is killed when it exits; probes
// that cannot be loaded are exit 3, never 0. Needs root (BPF, PTRACE_SECCOMP_GET_FILTER) and
// setpriv(1) (util-linux).
//
// The agents run from copies in this test's own directory, so the selectors and the
// policy's exe globs cannot pick up demo agents other tests run on the machine.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tests/testing/build_paths.h"
#include "tests/testing/demo_agent.h"
#include "tests/testing/program_run.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

using nlohmann::json;
using testing::ProgramRun;
using testing::RunProgram;

const std::set<std::string> kNaiveBreaks = {
    "seccomp-denies-process-access", "capabilities-dropped", "no-new-privs",
    "secrets-locked-no-wx",          "no-user-namespaces",   "process-access-events"};

class CheckCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root";
    absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("check");
    ASSERT_TRUE(dir.ok()) << dir.status();
    tmp_ = *std::move(dir);
    // Each agent under its own name, in a directory of its own.
    for (const char* name : {"vigil-demo-hardened-agent", "vigil-demo-naive-agent"}) {
      std::filesystem::create_directory(tmp_.path() + "/" + name);
      const std::string to = tmp_.path() + "/" + name + "/" + name;
      std::filesystem::copy_file(testing::DemoAgent::BuiltPath(name), to);
      std::filesystem::permissions(to, std::filesystem::perms::owner_all);
    }
    hardened_ = tmp_.path() + "/vigil-demo-hardened-agent/vigil-demo-hardened-agent";
    naive_ = tmp_.path() + "/vigil-demo-naive-agent/vigil-demo-naive-agent";
  }

  ProgramRun Check(std::vector<std::string> args) {
    args.insert(args.begin(), {vigil::testing::BuildDir() + "/node/vigil-node", "check"});
    return RunProgram(args, tmp_.path());
  }

  // A policy file NAME.yaml of one workload (NAME, with `selectors` in YAML flow form) and
  // one rule (id NAME-rule, its kind and fields as `rule`), returning its path.
  std::string WritePolicy(const std::string& name, const std::string& selectors,
                          const std::string& rule) {
    const std::string path = tmp_.path() + "/" + name + ".yaml";
    std::ofstream(path) << "apiVersion: vigil.dev/v1\nkind: RuntimePolicy\nmetadata:\n  name: "
                        << name << "\n  revision: 1\nspec:\n  workloads:\n    - name: " << name
                        << "\n      selectors: " << selectors << "\n  rules:\n    - id: " << name
                        << "-rule\n      " << rule << "\n      controls: {nist_800_53: [AC-6]}\n";
    return path;
  }

  static json Parse(const ProgramRun& run) {
    json j = json::parse(run.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "stdout is not one JSON document:\n" << run.out;
    return j;
  }

  // Each rule's outcome.
  static std::map<std::string, std::string> Outcomes(const json& report) {
    std::map<std::string, std::string> out;
    if (!report.contains("rules")) return out;
    for (const json& r : report["rules"]) out[r["rule_id"]] = r["outcome"];
    return out;
  }

  const std::string strict_ = vigil::testing::SourceDir() + "/deploy/policies/strict.yaml";
  testing::TestTempDir tmp_;
  std::string hardened_;
  std::string naive_;
};

TEST_F(CheckCommandTest, HardenedAgentStartedByTheCheckPassesStrict) {
  const ProgramRun run = Check({"--policy", strict_, "--duration", "2", "--json", "--", hardened_});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const json report = Parse(run);
  EXPECT_EQ(report["result"], "pass");
  EXPECT_EQ(report["exit_code"], 0);
  EXPECT_EQ(report["attested"], false);
  const auto outcomes = Outcomes(report);
  EXPECT_EQ(outcomes.size(), 9u) << "every rule of strict.yaml spoke";
  for (const auto& [id, outcome] : outcomes) EXPECT_EQ(outcome, "pass") << id;
  EXPECT_EQ(report["summary"]["passed"], 9);
  // The command ran until the end of --duration and was then ended by the check.
  EXPECT_EQ(report["command"]["ended_by_check"], true);
  EXPECT_EQ(report["command"]["failed"], false);
  EXPECT_EQ(report["command"]["exit_code"], 0);
  // Its output went to standard error, not into the JSON.
  EXPECT_NE(run.err.find("hardened-agent pid="), std::string::npos) << run.err;
  // Monitored from its first syscall: its exec is among the events.
  EXPECT_GT(report["observation"]["events"].get<int>(), 0);
}

TEST_F(CheckCommandTest, NaiveAgentFailsStrictWithTheBrokenRulesNamedAndJunitCounts) {
  const std::string junit = tmp_.path() + "/junit.xml";
  const ProgramRun run =
      Check({"--policy", strict_, "--duration", "3", "--json", "--junit", junit, "--", naive_});
  ASSERT_EQ(run.exit_code, 1) << run.out << run.err;
  const json report = Parse(run);
  EXPECT_EQ(report["result"], "fail");
  const auto outcomes = Outcomes(report);
  for (const std::string& id : kNaiveBreaks) {
    ASSERT_EQ(outcomes.count(id), 1u) << id;
    EXPECT_EQ(outcomes.at(id), "fail") << id << "\n" << run.out;
  }
  // The sibling the agent forks is part of its workload.
  for (const json& r : report["rules"]) EXPECT_GE(r["pids"].size(), 2u) << r.dump();
  EXPECT_EQ(report["command"]["ended_by_check"], true);

  // The JUnit file: well-formed XML (python3's parser), one testcase per rule and workload,
  // one failure per rule that did not pass, each failure saying observed and expected.
  const std::string script = absl::StrCat(
      "import xml.etree.ElementTree as E; r = E.parse('", junit,
      "').getroot(); c = r.findall('.//testcase'); f = r.findall('.//testcase/failure'); "
      "print(r.tag, r.get('tests'), r.get('failures'), len(c), len(f), "
      "all('observed: ' in x.text and 'expected: ' in x.text for x in f), "
      "' '.join(sorted(x.get('name') for x in c if x.find('failure') is not None)))");
  const ProgramRun parsed = RunProgram({"/usr/bin/python3", "-c", script}, tmp_.path());
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err;
  const int failures = report["summary"]["failed"].get<int>() +
                       report["summary"]["warnings"].get<int>() +
                       report["summary"]["not_observed"].get<int>();
  std::vector<std::string> failed_ids;
  for (const auto& [id, outcome] : outcomes) {
    if (outcome != "pass") failed_ids.push_back(id);
  }
  EXPECT_EQ(parsed.out,
            absl::StrCat("testsuites ", outcomes.size(), " ", failures, " ", outcomes.size(), " ",
                         failures, " True ", absl::StrJoin(failed_ids, " "), "\n"));
  EXPECT_GE(failures, static_cast<int>(kNaiveBreaks.size()));
}

TEST_F(CheckCommandTest, PidOfARunningAgentIsCheckedAndLeftRunning) {
  testing::DemoAgent agent(hardened_);
  ASSERT_GT(agent.pid(), 0);
  ASSERT_NE(agent.ReadyLine(), "");
  const ProgramRun run = Check(
      {"--policy", strict_, "--pid", std::to_string(agent.pid()), "--duration", "1", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const json report = Parse(run);
  EXPECT_EQ(report["target"]["mode"], "pid");
  EXPECT_FALSE(report.contains("command"));
  const auto outcomes = Outcomes(report);
  EXPECT_EQ(outcomes.size(), 9u);
  for (const json& r : report["rules"]) {
    EXPECT_EQ(r["outcome"], "pass") << r.dump();
    EXPECT_EQ(r["pids"], json::array({agent.pid()})) << r.dump();
  }
  EXPECT_TRUE(agent.Alive()) << "--pid must not end the process it checks";
}

TEST_F(CheckCommandTest, SelectByExeGlobChecksOnlyTheMatchingProcesses) {
  testing::DemoAgent naive(naive_);
  ASSERT_GT(naive.pid(), 0);
  ASSERT_NE(naive.ReadyLine(), "");
  const ProgramRun run =
      Check({"--policy", strict_, "--select",
             absl::StrCat("exe=", tmp_.path(), "/vigil-demo-naive-agent/*"), "--duration", "1"});
  ASSERT_EQ(run.exit_code, 1) << run.out << run.err;
  // The table: one line per rule, naming the workload with the agent's pid, then FAIL.
  for (const std::string& id : kNaiveBreaks) {
    EXPECT_NE(run.out.find(absl::StrCat(id, " ")), std::string::npos) << id << "\n" << run.out;
  }
  EXPECT_NE(run.out.find(absl::StrCat("agent (pid ", naive.pid())), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("\nFAIL: 9 rule(s)"), std::string::npos) << run.out;
  EXPECT_TRUE(naive.Alive());

  // The same selector with --json: every pid of the workload is the agent, its sibling, or
  // one of the programs the agent shells out to (docs/demo.md: /bin/sh -c running curl, or
  // getent where curl is missing), followed as its descendants.
  const ProgramRun json_run = Check({"--policy", strict_, "--select",
                                     absl::StrCat("exe=", tmp_.path(), "/vigil-demo-naive-agent/*"),
                                     "--duration", "1", "--json"});
  ASSERT_EQ(json_run.exit_code, 1) << json_run.err;
  const json report = Parse(json_run);
  const std::set<std::string> shell_outs = {"/usr/bin/dash", "/bin/dash", "/usr/bin/curl",
                                            "/usr/bin/getent"};
  int agents = 0;
  for (const json& p : report["observation"]["processes"]) {
    const std::string exe = p["exe"];
    if (exe == naive_) {
      ++agents;
    } else {
      EXPECT_TRUE(shell_outs.contains(exe)) << p.dump();
    }
  }
  EXPECT_GE(agents, 1) << report.dump();
}

TEST_F(CheckCommandTest, UsageErrorsExitTwoWithNothingOnStandardOutput) {
  const std::string broken = WritePolicy("broken", "[exe=/x]", "kind: no_such_kind");
  const struct {
    std::vector<std::string> args;
    std::string in_stderr;
  } cases[] = {
      {{"--policy", strict_}, "exactly one way"},
      {{"--policy", strict_, "--pid", "1", "--", "/bin/true"}, "exactly one way"},
      {{"--policy", strict_, "--pid", "1", "--duration", "0"}, "needs a command"},
      {{"--policy", strict_, "--pid", "1", "--no-such-flag"}, "no-such-flag"},
      {{"--policy", strict_, "--select", "exe=/x,bogus=1"}, "--select"},
      {{"--policy", tmp_.path() + "/missing.yaml", "--pid", "1"}, "missing.yaml"},
      {{"--policy", broken, "--pid", "1"}, broken + ":12:"},
      {{"--policy", strict_, "--pid", "1073741000"}, "no such process"},
      {{"--policy", strict_, "--select", "exe=" + tmp_.path() + "/nothing-here/*"},
       "matches no running process"},
      {{"--policy", strict_, "--", tmp_.path() + "/no-such-program"}, "no-such-program"},
      // The node flags belong to --verifier, which needs the CA as `run` does.
      {{"--policy", strict_, "--pid", "1", "--tcti", "none"}, "--tcti: is for --verifier"},
      {{"--policy", strict_, "--pid", "1", "--verifier", "127.0.0.1:1"},
       "--verifier needs --ca-cert"},
  };
  for (const auto& c : cases) {
    const ProgramRun run = Check(c.args);
    EXPECT_EQ(run.exit_code, 2) << absl::StrJoin(c.args, " ") << "\n" << run.err;
    EXPECT_EQ(run.out, "") << absl::StrJoin(c.args, " ");
    EXPECT_NE(run.err.find(c.in_stderr), std::string::npos)
        << absl::StrJoin(c.args, " ") << "\nstderr: " << run.err;
  }
}

TEST_F(CheckCommandTest, CommandThatExitsAtOnceIsNeverAPassOfLiveProcessRules) {
  const std::string policy =
      WritePolicy("quick", "[exe=*/true]", "kind: capabilities\n      absent: [CAP_SYS_PTRACE]");
  const ProgramRun run = Check({"--policy", policy, "--json", "--", "/bin/true"});
  ASSERT_EQ(run.exit_code, 1) << run.out << run.err;
  const json report = Parse(run);
  // Either the exec-time snapshot caught it (root holds CAP_SYS_PTRACE: fail) or it was gone
  // first (not observed); never a pass.
  ASSERT_EQ(report["rules"].size(), 1u) << run.out;
  const std::string outcome = report["rules"][0]["outcome"];
  EXPECT_TRUE(outcome == "fail" || outcome == "not_observed") << outcome;
  EXPECT_EQ(report["command"]["exit_code"], 0);
  EXPECT_EQ(report["command"]["ended_by_check"], false);
  EXPECT_LT(report["observation"]["seconds"].get<double>(), 10.0)
      << "the observation ends when the command exits";
}

TEST_F(CheckCommandTest, CommandExitStatusPassesThroughWhenEveryRulePasses) {
  // Only an event rule, which a process that exits at once can pass.
  const std::string policy =
      WritePolicy("programs", "[exe=*/true, exe=*/false]", "kind: interpreters\n      allowed: []");
  const ProgramRun ok = Check({"--policy", policy, "--json", "--", "/bin/true"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  const ProgramRun failed = Check({"--policy", policy, "--json", "--", "/bin/false"});
  ASSERT_EQ(failed.exit_code, 4) << failed.out << failed.err;
  const json report = Parse(failed);
  EXPECT_EQ(report["summary"]["passed"], 1);
  EXPECT_EQ(report["command"]["exit_code"], 1);
  EXPECT_EQ(report["command"]["failed"], true);

  // A command the policy does not select: no rule applied, which is not a pass.
  const ProgramRun unselected = Check({"--policy", policy, "--json", "--", "/bin/echo", "hi"});
  EXPECT_EQ(unselected.exit_code, 1) << unselected.out;
  EXPECT_TRUE(Parse(unselected)["problem"].is_string());
  EXPECT_EQ(unselected.err.find("hi\n") != std::string::npos, true) << unselected.err;
}

TEST_F(CheckCommandTest, WhatTheCommandLeavesRunningIsKilledWhenItExits) {
  const std::string policy = WritePolicy("shell", "[exe=*/sleep]", "kind: no_new_privs");
  const ProgramRun run =
      Check({"--policy", policy, "--json", "--", "/bin/sh", "-c", "sleep 300 & echo \"bg=$!\""});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;  // root's sleep lacks no_new_privs
  const json report = Parse(run);
  EXPECT_EQ(report["command"]["exit_code"], 0);
  EXPECT_EQ(report["command"]["ended_by_check"], false);
  EXPECT_NE(run.err.find("killed what the command left running"), std::string::npos) << run.err;
  // The command's output is on standard error; the background sleep is gone.
  const size_t at = run.err.find("bg=");
  ASSERT_NE(at, std::string::npos) << run.err;
  const int bg = std::stoi(run.err.substr(at + 3));
  ASSERT_GT(bg, 1);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);  // init reaps it
  while (kill(bg, 0) == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_NE(kill(bg, 0), 0) << "the background sleep " << bg << " still runs";
}

TEST_F(CheckCommandTest, ProbesThatCannotLoadExitThreeAndSaySoInJsonAndJunit) {
  // vigil-node without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN: the kernel refuses the probes.
  const std::string junit = tmp_.path() + "/junit.xml";
  ProgramRun run = RunProgram(
      {"/usr/bin/setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin",
       "--inh-caps=-bpf,-perfmon,-sys_admin", vigil::testing::BuildDir() + "/node/vigil-node",
       "check", "--policy", strict_, "--json", "--junit", junit, "--", hardened_},
      tmp_.path());
  ASSERT_EQ(run.exit_code, 3) << run.out << run.err;
  const json report = Parse(run);
  EXPECT_EQ(report["result"], "error");
  EXPECT_TRUE(report["error"].is_string());
  EXPECT_TRUE(report["rules"].empty());
  EXPECT_NE(run.err.find("the probes could not be loaded"), std::string::npos) << run.err;
  const ProgramRun parsed = RunProgram(
      {"/usr/bin/python3", "-c",
       absl::StrCat("import xml.etree.ElementTree as E; r = E.parse('", junit,
                    "').getroot(); print(r.get('tests'), r.get('errors'), "
                    "len(r.findall('.//testcase/error')), len(r.findall('.//failure')))")},
      tmp_.path());
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err;
  EXPECT_EQ(parsed.out, "1 1 1 0\n");
}

}  // namespace
}  // namespace vigil::node
