// vigil-verifier warns at startup when its store keeps every verdict (no retention limit):
// at fleet scale the store grows by gigabytes a day.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "tests/testing/killable_verifier.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/program_run.h"
#include "tests/testing/reserved_port.h"
#include "tests/testing/temp_dir.h"

namespace vigil {
namespace {

// Starts vigil-verifier with a store at a fresh --db and `extra` flags, waits until it
// listens, kills it and returns its whole log.
std::string StartupLog(const std::vector<std::string>& extra) {
  absl::StatusOr<std::unique_ptr<testing::TestPki>> pki = testing::TestPki::Create();
  EXPECT_TRUE(pki.ok()) << pki.status();
  absl::StatusOr<testing::TestTempDir> dir = testing::TestTempDir::Create("retention-warning");
  EXPECT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<testing::ReservedPort> port = testing::ReservedPort::Create();
  EXPECT_TRUE(port.ok()) << port.status();
  if (!pki.ok() || !dir.ok() || !port.ok()) return "";
  const std::string log = dir->path() + "/verifier.log";
  std::vector<std::string> args = {"--pki-dir",     (*pki)->dir(), "--listen",
                                   port->address(), "--db",        dir->path() + "/vigil.db"};
  args.insert(args.end(), extra.begin(), extra.end());
  testing::KillableVerifier verifier(args, log, port->port());
  absl::Status started = verifier.Start();
  EXPECT_TRUE(started.ok()) << started;
  // The port accepts before the verifier logs that it listens (the last startup line): wait
  // for that line, so the log read after the kill is the whole startup.
  std::string text = testing::ReadWholeFile(log);
  for (int i = 0; i < 200 && started.ok() && text.find("listening") == std::string::npos; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    text = testing::ReadWholeFile(log);
  }
  EXPECT_TRUE(verifier.Kill().ok());
  return testing::ReadWholeFile(log);
}

constexpr char kWarning[] = "store: no retention limit, so every verdict is kept";

TEST(VerifierRetentionWarningTest, AStoreWithoutALimitIsWarnedAbout) {
  const std::string log = StartupLog({});
  EXPECT_NE(log.find(kWarning), std::string::npos) << log;
  EXPECT_NE(log.find("--retention-max-age or --retention-per-node"), std::string::npos) << log;
}

TEST(VerifierRetentionWarningTest, EitherLimitSilencesIt) {
  for (const std::vector<std::string>& limit :
       {std::vector<std::string>{"--retention-max-age", "720h"},
        std::vector<std::string>{"--retention-per-node", "1000"}}) {
    const std::string log = StartupLog(limit);
    EXPECT_NE(log.find("listening"), std::string::npos) << limit[0] << ":\n" << log;
    EXPECT_EQ(log.find(kWarning), std::string::npos) << limit[0] << ":\n" << log;
  }
}

}  // namespace
}  // namespace vigil
