// vigil-fleetsim end to end: a small fleet against a spawned vigil-verifier with
// --accept-simulated-tpm, its JSON summary checked, and the fleet read back through the Fleet
// API by the simulator (every verdict says tpm_simulated, no hardware claim, in the EAR too).
// No timing is asserted.

#include <gtest/gtest.h>

#include <string>

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
                           "--spawn-verifier", "--nodes", std::to_string(kNodes), "--interval", "1",
                           "--duration", "4", "--rsa-every", "5", "--noncompliant-percent", "30",
                           "--sentinels", "4", "--check-fleet", std::to_string(kNodes), "--json"},
                          dir->path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
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

}  // namespace
}  // namespace vigil
