// tests/deploy/validate_deploy.py over deploy/ and the binaries of this build: the units and
// the Kubernetes manifests are well formed, agree with each other (the node's capabilities
// in both), and use only flags the binaries' --help lists. Then the same check over a copy
// of deploy/ with drift put in (a renamed flag in a unit and in a manifest, a capability
// only the unit has) fails and names each, so the check cannot pass whatever the files say.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/program_run.h"
#include "tests/testing/temp_dir.h"

namespace vigil::deploy {
namespace {

using ::vigil::testing::ProgramRun;
using ::vigil::testing::ReadWholeFile;
using ::vigil::testing::RunProgram;
using ::vigil::testing::TestTempDir;

class DeployFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestTempDir> dir = TestTempDir::Create("deploy-files");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
  }

  ProgramRun Validate(const std::string& deploy_dir, const std::string& tag) {
    const std::string out = dir_.path() + "/" + tag;
    std::filesystem::create_directories(out);
    const std::string build = vigil::testing::BuildDir();
    return RunProgram(
        {"/usr/bin/python3", vigil::testing::SourceDir() + "/tests/deploy/validate_deploy.py",
         deploy_dir, build + "/node/vigil-node", build + "/verifier/vigil-verifier"},
        out);
  }

  // Replaces `from` by `to` in the copy's file `rel`, which must hold it.
  void Edit(const std::string& root, const std::string& rel, const std::string& from,
            const std::string& to) {
    const std::string path = root + "/" + rel;
    std::string text = ReadWholeFile(path);
    ASSERT_TRUE(absl::StrContains(text, from)) << rel << " holds no " << from;
    std::ofstream(path, std::ios::trunc) << absl::StrReplaceAll(text, {{from, to}});
  }

  TestTempDir dir_;
};

TEST_F(DeployFilesTest, UnitsAndManifestsMatchTheBinaries) {
  ProgramRun run = Validate(vigil::testing::SourceDir() + "/deploy", "repo");
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(run.out, "deploy files: all checks passed\n");
}

// The shipped manifests under vigilctl's own audit: the node DaemonSet's findings are exactly
// the ones docs/deploy.md lists (what observing other processes from outside takes), and the
// verifier Deployment has none.
TEST_F(DeployFilesTest, ManifestAuditFindsExactlyWhatDeployMdLists) {
  ProgramRun run = RunProgram(
      {"/usr/bin/python3", "-c",
       "import json, subprocess, sys\n"
       "p = subprocess.run([sys.argv[1], 'audit', 'manifests', '--json', sys.argv[2]],\n"
       "                   stdout=subprocess.PIPE)\n"
       "print(p.returncode)\n"
       "for f in json.loads(p.stdout)['findings']:\n"
       "    print(f['kind'], f['name'], f['rule'], f['severity'], f['message'].split()[-1])\n",
       vigil::testing::BuildDir() + "/cli/vigilctl",
       vigil::testing::SourceDir() + "/deploy/kubernetes"},
      dir_.path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out,
            "1\n"
            "DaemonSet vigil-node seccomp-unconfined high filtered\n"
            "DaemonSet vigil-node capability-added medium CAP_SYS_ADMIN\n"
            "DaemonSet vigil-node capability-added medium CAP_SYS_PTRACE\n"
            "DaemonSet vigil-node capability-added medium CAP_DAC_READ_SEARCH\n"
            "DaemonSet vigil-node capability-added medium CAP_BPF\n"
            "DaemonSet vigil-node capability-added medium CAP_PERFMON\n"
            "DaemonSet vigil-node capability-added medium CAP_SETPCAP\n"
            "DaemonSet vigil-node host-pid high namespace\n");
}

TEST_F(DeployFilesTest, DriftIsFoundAndNamed) {
  const std::string copy = dir_.path() + "/deploy";
  std::filesystem::copy(vigil::testing::SourceDir() + "/deploy", copy,
                        std::filesystem::copy_options::recursive);
  Edit(copy, "systemd/vigil-verifier.service", "--db ", "--database ");
  Edit(copy, "kubernetes/node.yaml", "--tcti=", "--tpm-tcti=");
  Edit(copy, "systemd/vigil-node.service", "CapabilityBoundingSet=CAP_SYS_ADMIN ",
       "CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_ADMIN ");
  Edit(copy, "kubernetes/verifier.yaml", "targetPort: enroll", "targetPort: 7445");
  Edit(copy, "systemd/vigil-node.service", "UMask=0077",
       "SystemCallArchitectures=native\nUMask=0077");
  ProgramRun run = Validate(copy, "drift");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_TRUE(absl::StrContains(run.out, "flag --database is not in `vigil-verifier --help`"))
      << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "flag --tpm-tcti is not in `vigil-node run --help`"))
      << run.out;
  EXPECT_TRUE(absl::StrContains(
      run.out, "lacks CAP_NET_ADMIN, which vigil-node.service's CapabilityBoundingSet has"))
      << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "targetPort 7445 is no container port")) << run.out;
  EXPECT_TRUE(absl::StrContains(
      run.out, "SystemCallArchitectures= installs a seccomp filter: the node could not read"))
      << run.out;
}

TEST_F(DeployFilesTest, AdmissionWebhookDriftIsFoundAndNamed) {
  const std::string copy = dir_.path() + "/deploy";
  std::filesystem::copy(vigil::testing::SourceDir() + "/deploy", copy,
                        std::filesystem::copy_options::recursive);
  Edit(copy, "kubernetes/admission-webhook.yaml", "resources: [pods, pods/binding]",
       "resources: [pods]");
  Edit(copy, "kubernetes/admission-webhook.yaml", "path: /validate", "path: /admit");
  Edit(copy, "kubernetes/verifier.yaml", "--admission-listen=0.0.0.0:8443",
       "--admission-listen=0.0.0.0:9443");
  ProgramRun run = Validate(copy, "admission-drift");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_TRUE(absl::StrContains(run.out, "no CREATE rule for pods/binding")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "clientConfig.service.path is not /validate")) << run.out;
  EXPECT_TRUE(absl::StrContains(
      run.out, "--admission-listen does not listen on the container port admission"))
      << run.out;
}

TEST_F(DeployFilesTest, StoreSecretDriftIsFoundAndNamed) {
  const std::string copy = dir_.path() + "/deploy";
  std::filesystem::copy(vigil::testing::SourceDir() + "/deploy", copy,
                        std::filesystem::copy_options::recursive);
  Edit(copy, "kubernetes/verifier.yaml", "key: url", "key: uri");
  Edit(copy, "kubernetes/verifier.yaml", "- --pki-dir=/etc/vigil/pki",
       "- --pki-dir=/etc/vigil/pki\n            - --store=postgresql://vigil:pw@db/vigil");
  ProgramRun run = Validate(copy, "store-drift");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_TRUE(absl::StrContains(run.out, "Secret vigil-verifier-store has no key uri")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "the PostgreSQL URL must come from a Secret")) << run.out;
}

TEST_F(DeployFilesTest, SqliteVerifierStaysOneReplica) {
  const std::string copy = dir_.path() + "/deploy";
  std::filesystem::copy(vigil::testing::SourceDir() + "/deploy", copy,
                        std::filesystem::copy_options::recursive);
  Edit(copy, "kubernetes/verifier.yaml", "- --ear-key-dir=/var/lib/vigil-verifier/ear-keys",
       "- --db=/var/lib/vigil-verifier/vigil.db");
  ProgramRun run = Validate(copy, "sqlite-replicas");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_TRUE(absl::StrContains(run.out, "--db and VIGIL_STORE_URL exclude each other")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "replicas must be 1 with the SQLite store")) << run.out;
}

}  // namespace
}  // namespace vigil::deploy
