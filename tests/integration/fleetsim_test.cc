// vigil-fleetsim end to end: a small fleet against a spawned vigil-verifier with
// --accept-simulated-tpm, its JSON summary checked, and the fleet read back through the Fleet
// API by the simulator (every verdict says tpm_simulated, no hardware claim, in the EAR too).
// No timing is asserted.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "nlohmann/json.hpp"
#include "tests/testing/build_paths.h"
#include "tests/testing/program_run.h"
#include "tests/testing/temp_dir.h"

namespace vigil {
namespace {

TEST(FleetsimTest, SmallFleetEnrollsReportsAndIsMarkedSimulated) {
  absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("fleetsim");
  ASSERT_TRUE(dir.ok()) << dir.status();
  constexpr int kNodes = 20;
  testing::ProgramRun run =
      testing::RunProgram({testing::BuildDir() + "/bench/fleetsim/vigil-fleetsim",
                           "--spawn-verifier",
                           "--nodes",
                           std::to_string(kNodes),
                           "--interval",
                           "1",
                           "--duration",
                           "4",
                           "--rsa-every",
                           "5",
                           "--noncompliant-percent",
                           "30",
                           "--sentinels",
                           "4",
                           "--check-fleet",
                           std::to_string(kNodes),
                           "--verifier-log-level",
                           "info",
                           "--keep-dir",
                           "--json"},
                          dir->path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // The verifier ran at its own default level: one line per accepted report, none per process.
  std::smatch kept;
  ASSERT_TRUE(std::regex_search(run.err, kept, std::regex("verifier files in (\\S+)"))) << run.err;
  const std::string verifier_dir = kept[1].str();
  const std::string log = testing::ReadWholeFile(verifier_dir + "/verifier.log");
  std::filesystem::remove_all(verifier_dir);
  EXPECT_TRUE(std::regex_search(log, std::regex("report node=[0-9a-f]{12} seq=[0-9]+ "
                                                "verdict=AFFIRMING workloads=[^ ]*:AFFIRMING")))
      << log.substr(0, 4000);
  EXPECT_TRUE(
      std::regex_search(log, std::regex("verdict=CONTRAINDICATED workloads=[^ ]*:CONTRAINDICATED")))
      << log.substr(0, 4000);
  EXPECT_EQ(log.find(" pid="), std::string::npos) << log.substr(0, 4000);
  nlohmann::json out = nlohmann::json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(out.is_object()) << run.out;

  EXPECT_EQ(out["enrolled"], kNodes);
  EXPECT_EQ(out["connected"], kNodes);
  EXPECT_EQ(out["connected_at_end"], kNodes);
  EXPECT_TRUE(out["errors"].empty()) << out["errors"].dump();
  EXPECT_GT(out["acknowledged"].get<uint64_t>(), 0u);
  EXPECT_GT(out["reports_per_second"].get<double>(), 0);
  for (const char* key : {"p50", "p99", "max"}) EXPECT_TRUE(out["latency_ms"].contains(key));
  EXPECT_GT(out["verifier_cpu_seconds"].get<double>(), 0);
  EXPECT_GT(out["verifier_peak_rss_bytes"].get<uint64_t>(), 0u);
  // Every acknowledged verdict says the TPM is simulated; compliant workloads are affirmed
  // and the non-compliant ones are not.
  EXPECT_EQ(out["verdicts_not_marked_simulated"], 0);
  EXPECT_EQ(out["compliant_not_affirmed"], 0) << out["verdict_statuses"].dump();
  EXPECT_EQ(out["noncompliant_affirmed"], 0) << out["verdict_statuses"].dump();
  EXPECT_GT(out["verdict_statuses"].value("TRUST_AFFIRMING", 0), 0);
  EXPECT_GT(out["verdict_statuses"].value("TRUST_CONTRAINDICATED", 0), 0);
  // The sentinels' violations: each reached the WatchVerdicts client as the node's change.
  EXPECT_EQ(out["sentinels"], 4);
  EXPECT_GT(out["violations_sent"].get<uint64_t>(), 0u);
  EXPECT_EQ(out["violations_undetected"], 0);
  EXPECT_GT(out["violations_detected"].get<uint64_t>(), 0u);
  EXPECT_LE(out["violations_detected"].get<uint64_t>(), out["violations_sent"].get<uint64_t>());
  for (const char* key : {"p50", "p99", "max"}) {
    EXPECT_GT(out["detection_latency_ms"][key].get<double>(), 0) << key;
  }

  // Read back through the Fleet API.
  const nlohmann::json& fleet = out["fleet_api"];
  EXPECT_EQ(fleet["nodes_listed"], kNodes);
  EXPECT_EQ(fleet["nodes_checked"], kNodes);
  EXPECT_EQ(fleet["nodes_ek_trust_simulated"], kNodes);
  EXPECT_GT(fleet["verdicts"].get<uint64_t>(), 0u);
  EXPECT_EQ(fleet["verdicts_tpm_simulated"], fleet["verdicts"]);
  EXPECT_EQ(fleet["verdicts_with_hardware_claim"], 0);
  EXPECT_EQ(fleet["ear_tokens"], fleet["verdicts"]);
  EXPECT_EQ(fleet["ear_tokens_tpm_simulated"], fleet["ear_tokens"]);
  EXPECT_EQ(fleet["statuses"].value("TRUST_REJECTED", 0), 0) << fleet["statuses"].dump();
}

// A fleet whose latest verdicts do not fit one message of the verifier's listener
// (--max-message-bytes) is still listed whole: ListNodes pages within that limit.
TEST(FleetsimTest, AFleetLargerThanOneMessageIsListedWhole) {
  absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("fleetsim-pages");
  ASSERT_TRUE(dir.ok()) << dir.status();
  // ~4.6 KB of verdict per node: 40 nodes are about three messages of 64 KiB.
  constexpr int kNodes = 40;
  testing::ProgramRun run = testing::RunProgram(
      {testing::BuildDir() + "/bench/fleetsim/vigil-fleetsim", "--spawn-verifier", "--nodes",
       std::to_string(kNodes), "--interval", "1", "--duration", "2", "--check-fleet", "1",
       "--verifier-arg=--max-message-bytes=65536", "--json"},
      dir->path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  nlohmann::json out = nlohmann::json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(out.is_object()) << run.out;
  EXPECT_TRUE(out["errors"].empty()) << out["errors"].dump();
  EXPECT_EQ(out["fleet_api"]["nodes_listed"], kNodes) << out["fleet_api"].dump();
}

// The verifier a simulator spawned ends with it, even when the simulator is killed outright:
// left running it would hold the cores the next run measures.
TEST(FleetsimTest, TheSpawnedVerifierEndsWhenTheSimulatorIsKilled) {
  absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("fleetsim-kill");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string err_path = dir->path() + "/stderr";
  const std::string program = testing::BuildDir() + "/bench/fleetsim/vigil-fleetsim";
  const pid_t simulator = fork();
  ASSERT_GE(simulator, 0);
  if (simulator == 0) {
    FILE* err = std::freopen(err_path.c_str(), "w", stderr);
    if (err == nullptr) _exit(126);
    execl(program.c_str(), program.c_str(), "--spawn-verifier", "--nodes", "2", "--interval", "1",
          "--duration", "600", static_cast<char*>(nullptr));
    _exit(127);
  }
  // "vigil-fleetsim: vigil-verifier pid N on ADDRESS" once the verifier accepts connections.
  pid_t verifier = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (verifier == 0 && std::chrono::steady_clock::now() < deadline) {
    std::ifstream err(err_path);
    for (std::string line; std::getline(err, line);) {
      const std::string marker = "vigil-verifier pid ";
      if (auto at = line.find(marker); at != std::string::npos) {
        verifier = static_cast<pid_t>(std::stol(line.substr(at + marker.size())));
      }
    }
    if (verifier == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(verifier, 0) << testing::ReadWholeFile(err_path);
  ASSERT_EQ(::kill(verifier, 0), 0);
  ASSERT_EQ(::kill(simulator, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(simulator, &status, 0), simulator);
  // Gone, or a zombie waiting for whichever process adopted it: no longer running.
  auto running = [verifier] {
    std::ifstream stat("/proc/" + std::to_string(verifier) + "/stat");
    std::string pid, comm, state;
    if (!(stat >> pid >> comm >> state)) return false;
    return state != "Z" && state != "X";
  };
  const auto gone_by = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (running() && std::chrono::steady_clock::now() < gone_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(running()) << "vigil-verifier " << verifier << " outlived its simulator";
  if (running()) ::kill(verifier, SIGKILL);
}

}  // namespace
}  // namespace vigil
