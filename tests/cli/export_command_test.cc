#include "cli/export_command.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli/output_file.h"
#include "tests/cli/fake_fleet.h"
#include "tests/testing/temp_dir.h"

namespace vigil::cli {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ExportCommandFleetTest : public testing::FakeFleetTest {};

TEST_F(ExportCommandFleetTest, WritesTheDocumentAndRefusesToOverwriteWithoutForce) {
  fleet_.oscal_json = R"({"assessment-results":{"uuid":"1"}})";
  const std::string path = pki_->dir() + "/ar.json";
  const std::string args =
      "export oscal --since 2026-11-01T00:00:00Z --until "
      "2026-12-01T00:00:00+01:00 --out " +
      path + ConnectionFlags();
  std::string out, err;
  ASSERT_EQ(RunVigilctl(args, &out, &err), 0) << err;
  EXPECT_EQ(Slurp(path), fleet_.oscal_json);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  auto requests = fleet_.Requests<v1::ExportAssessmentRequest>("ExportAssessment");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].since_unix_nano(), 1'793'491'200'000'000'000);
  EXPECT_EQ(requests[0].until_unix_nano(), 1'796'079'600'000'000'000);

  fleet_.oscal_json = R"({"assessment-results":{"uuid":"2"}})";
  EXPECT_EQ(RunVigilctl(args, &out, &err), 2);
  EXPECT_NE(err.find("exists; give --force"), std::string::npos) << err;
  EXPECT_EQ(Slurp(path), R"({"assessment-results":{"uuid":"1"}})");
  EXPECT_EQ(fleet_.CallCount("ExportAssessment"), 1);  // refused before asking

  ASSERT_EQ(RunVigilctl(args + " --force", &out, &err), 0) << err;
  EXPECT_EQ(Slurp(path), fleet_.oscal_json);
}

TEST_F(ExportCommandFleetTest, VerifierFailureLeavesNoFile) {
  fleet_.errors["ExportAssessment"] = grpc::Status(grpc::StatusCode::INTERNAL, "store closed");
  ExportOptions options;
  options.connection = Connection();
  options.since = "2026-11-01T00:00:00Z";
  options.until = "2026-11-02T00:00:00Z";
  options.out_path = pki_->dir() + "/none.json";
  std::ostringstream out, err;
  EXPECT_EQ(RunExportOscal(options, out, err), 1);
  EXPECT_EQ(err.str(), "vigilctl: ExportAssessment: INTERNAL: store closed\n");
  struct stat st;
  EXPECT_NE(stat(options.out_path.c_str(), &st), 0);

  options.until = "2026-10-01T00:00:00Z";  // before --since
  EXPECT_EQ(RunExportOscal(options, out, err), 2);
  EXPECT_EQ(fleet_.CallCount("ExportAssessment"), 1);
}

TEST(OutputFileTest, NoReplaceFailsOnAnExistingFileAndLeavesNoTemporaries) {
  absl::StatusOr<vigil::testing::TestTempDir> tmp =
      vigil::testing::TestTempDir::Create("vigilctl-out");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  const std::string* dir = &tmp->path();
  const std::string path = *dir + "/doc.json";
  ASSERT_TRUE(WriteFileAtomically(path, "one", /*replace=*/false).ok());
  const absl::Status again = WriteFileAtomically(path, "two", /*replace=*/false);
  EXPECT_TRUE(absl::IsAlreadyExists(again)) << again;
  EXPECT_EQ(Slurp(path), "one");
  ASSERT_TRUE(WriteFileAtomically(path, "three", /*replace=*/true).ok());
  EXPECT_EQ(Slurp(path), "three");
  EXPECT_FALSE(WriteFileAtomically(*dir + "/missing/doc.json", "x", false).ok());
  // Only the document is left in the directory.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(*dir)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

}  // namespace
}  // namespace vigil::cli
