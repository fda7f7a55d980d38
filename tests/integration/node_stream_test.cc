// End to end: the real vigil-node binary streams reports of a real process over mutual TLS
// to a real verifier, which labels them TRUST_UNVERIFIED (no TPM); the node survives a
// verifier restart on the same port and exits 0 on SIGTERM.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/reserved_port.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/attestation_service.h"
#include "verifier/server.h"
#include "verifier/unverified_appraiser.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil {
namespace {

using testing::RecordingResultSink;
using testing::TestPki;

// Only keeps a broken node from hanging the suite; no assertion depends on speed.
constexpr absl::Duration kProgressBound = absl::Seconds(60);

// A verifier on a chosen address, so a restarted one can take over the same port.
struct LocalVerifier {
  RecordingResultSink sink;
  verifier::UnverifiedAppraiser appraiser;
  std::unique_ptr<verifier::AttestationService> attestation;
  std::unique_ptr<verifier::VerifierServer> server;

  static absl::StatusOr<std::unique_ptr<LocalVerifier>> Start(const TestPki& pki,
                                                              const std::string& address) {
    auto v = std::make_unique<LocalVerifier>();
    verifier::AttestationOptions a;
    a.trust_domain = pki.ca().trust_domain;
    a.report_interval = absl::Milliseconds(200);
    a.pcr_selection = {0, 1, 2, 3, 4, 5, 6, 7, 15};
    v->attestation = std::make_unique<verifier::AttestationService>(a, &v->appraiser, &v->sink);
    verifier::ServerOptions s;
    s.listen_address = address;
    s.tls = testing::VerifierTlsFiles(pki);
    s.services.push_back(v->attestation.get());
    auto server = verifier::VerifierServer::Start(s);
    if (!server.ok()) return server.status();
    v->server = std::move(*server);
    return v;
  }
  ~LocalVerifier() { Stop(); }
  void Stop() {
    if (server == nullptr) return;
    attestation->CloseStreams();
    server->Shutdown(absl::Now() + absl::Seconds(5));
    server.reset();
  }
  // Waits until `n` verdicts were recorded; returns them (fewer if the bound passed).
  std::vector<RecordingResultSink::Entry> AwaitRecords(size_t n) {
    absl::Time give_up = absl::Now() + kProgressBound;
    while (sink.records().size() < n && absl::Now() < give_up)
      absl::SleepFor(absl::Milliseconds(50));
    return sink.records();
  }
};

class NodeStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::move(*pki);
    // The workload: a child that waits until the test ends. It reports once it carries its
    // name, so the node never sees it under the test's.
    int hold[2], ready[2];
    ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
    workload_ = fork();
    ASSERT_GE(workload_, 0);
    if (workload_ == 0) {
      close(hold[1]);
      close(ready[0]);
      prctl(PR_SET_NAME, "vigil-workload", 0, 0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      if (write(ready[1], "r", 1) != 1) _exit(1);
      close(ready[1]);
      char c;
      while (read(hold[0], &c, 1) > 0) {
      }
      _exit(0);
    }
    close(hold[0]);
    close(ready[1]);
    hold_ = hold[1];
    char c = 0;
    ASSERT_EQ(read(ready[0], &c, 1), 1) << "the workload died before it was ready";
    close(ready[0]);
  }

  void TearDown() override {
    if (node_ > 0) {
      kill(node_, SIGKILL);
      waitpid(node_, nullptr, 0);
    }
    if (hold_ >= 0) close(hold_);
    if (workload_ > 0) {
      kill(workload_, SIGKILL);
      waitpid(workload_, nullptr, 0);
    }
  }

  void StartNode(const std::string& address) {
    const std::string dir = pki_->dir();
    const std::string node = absl::StrCat(dir, "/node-", TestPki::kNodeId);
    std::vector<std::string> args = {vigil::testing::BuildDir() + "/node/vigil-node",
                                     "run",
                                     "--verifier",
                                     address,
                                     "--ca-cert",
                                     dir + "/ca.crt",
                                     "--cert",
                                     node + ".crt",
                                     "--key",
                                     node + ".key",
                                     "--state-dir",
                                     dir,
                                     "--tcti",
                                     "none",
                                     "--no-probes",
                                     "--select",
                                     absl::StrCat("pid=", workload_),
                                     "--syscalls",
                                     "ptrace,process_vm_readv"};
    node_ = fork();
    ASSERT_GE(node_, 0);
    if (node_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }

  // The node's exit code after SIGTERM, or -1 if it did not exit normally.
  int StopNode() {
    kill(node_, SIGTERM);
    int status = 0;
    waitpid(node_, &status, 0);
    node_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  void ExpectRealUnverifiedReports(const std::vector<RecordingResultSink::Entry>& records) {
    for (const auto& r : records) {
      EXPECT_EQ(r.node_id, TestPki::kNodeId);
      EXPECT_EQ(r.verdict.status(), v1::TRUST_UNVERIFIED);
      EXPECT_FALSE(r.evidence.has_quote());
      v1::RuntimeReport report;
      ASSERT_TRUE(report.ParseFromString(r.evidence.payload()));
      EXPECT_EQ(report.node_id(), TestPki::kNodeId);
      ASSERT_EQ(report.processes_size(), 1);
      const v1::ProcessSnapshot& p = report.processes(0);
      EXPECT_EQ(p.pid(), workload_);
      EXPECT_EQ(p.ppid(), getpid());
      EXPECT_EQ(p.comm(), "vigil-workload");
      EXPECT_EQ(p.matched_by(0), absl::StrCat("pid=", workload_));
      EXPECT_EQ(p.exe_sha256().size(), 64u);
      EXPECT_TRUE(p.has_capabilities());
      EXPECT_TRUE(p.seccomp().filters_inspected()) << p.seccomp().inspection_error();
      // Each named syscall, through every ABI that has it.
      std::set<std::string> evaluated;
      for (const auto& v : p.seccomp().verdicts()) {
        evaluated.insert(absl::StrCat(v.syscall(), "/", v.arch()));
      }
      EXPECT_EQ(evaluated,
                (std::set<std::string>{"ptrace/x86_64", "ptrace/i386", "ptrace/x32",
                                       "process_vm_readv/x86_64", "process_vm_readv/i386",
                                       "process_vm_readv/x32"}));
      EXPECT_FALSE(report.has_probes());  // --no-probes
    }
  }

  std::unique_ptr<TestPki> pki_;
  pid_t workload_ = -1;
  pid_t node_ = -1;
  int hold_ = -1;
};

TEST_F(NodeStreamTest, StreamsRealSnapshotsLabelledUnverifiedAndStopsCleanly) {
  auto v = LocalVerifier::Start(*pki_, "127.0.0.1:0");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_NO_FATAL_FAILURE(StartNode(absl::StrCat("127.0.0.1:", (*v)->server->port())));
  auto records = (*v)->AwaitRecords(3);
  ASSERT_GE(records.size(), 3u);
  ExpectRealUnverifiedReports(records);
  // Sequence numbers count up within one node process.
  v1::RuntimeReport first, third;
  ASSERT_TRUE(first.ParseFromString(records[0].evidence.payload()));
  ASSERT_TRUE(third.ParseFromString(records[2].evidence.payload()));
  EXPECT_EQ(third.sequence(), first.sequence() + 2);
  EXPECT_EQ(StopNode(), 0);
}

TEST_F(NodeStreamTest, SurvivesAVerifierRestartOnTheSamePort) {
  // Reserved for the whole test: while no verifier listens, no other process can take it.
  auto port = testing::ReservedPort::Create();
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string address = port->address();
  auto first = LocalVerifier::Start(*pki_, address);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_NO_FATAL_FAILURE(StartNode(address));
  auto before = (*first)->AwaitRecords(2);
  ASSERT_GE(before.size(), 2u);
  (*first)->Stop();

  auto second = LocalVerifier::Start(*pki_, address);
  ASSERT_TRUE(second.ok()) << second.status();
  auto after = (*second)->AwaitRecords(2);
  ASSERT_GE(after.size(), 2u);
  ExpectRealUnverifiedReports(after);
  v1::RuntimeReport last_before, first_after;
  ASSERT_TRUE(last_before.ParseFromString(before.back().evidence.payload()));
  ASSERT_TRUE(first_after.ParseFromString(after.front().evidence.payload()));
  // The same node process carried on: its sequence kept counting.
  EXPECT_GT(first_after.sequence(), last_before.sequence());
  EXPECT_EQ(first_after.node_started_unix_nano(), last_before.node_started_unix_nano());
  EXPECT_EQ(StopNode(), 0);
}

}  // namespace
}  // namespace vigil
