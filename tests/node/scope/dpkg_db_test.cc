#include "node/scope/dpkg_db.h"

#include <gtest/gtest.h>
#include <stdio.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/strip.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

using ::vigil::testing::TestTempDir;

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// A dpkg database in a temporary directory: status and info/*.list.
class FakeDpkgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TestTempDir::Create("dpkg");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::move(*dir);
    std::filesystem::create_directories(dir_.path() + "/info");
    Write(dir_.path() + "/status",
          "Package: tool\n"
          "Status: install ok installed\n"
          "Architecture: amd64\n"
          "Version: 1.2-3\n"
          "Description: a tool\n"
          " with a long description\n"
          "\n"
          "Package: libz\n"
          "Status: install ok installed\n"
          "Multi-Arch: same\n"
          "Architecture: amd64\n"
          "Version: 1:1.2.13\n"
          "\n"
          "Package: libz\n"
          "Status: install ok installed\n"
          "Multi-Arch: same\n"
          "Architecture: i386\n"
          "Version: 1:1.2.13-i\n"
          "\n"
          "Package: removed\n"
          "Status: deinstall ok config-files\n"
          "Architecture: all\n"
          "Version: 9\n");
    Write(dir_.path() + "/info/tool.list",
          "/.\n/bin\n/bin/tool\n/usr/sbin/toold\n/usr/share/doc/tool\n");
    Write(dir_.path() + "/info/libz:amd64.list", "/usr/lib/x86_64-linux-gnu/libz.so.1\n");
    Write(dir_.path() + "/info/libz:i386.list", "/usr/lib/i386-linux-gnu/libz.so.1\n");
    Write(dir_.path() + "/info/removed.list", "/usr/bin/removed\n");
    Write(dir_.path() + "/info/tool.md5sums", "0 /usr/bin/not-a-list\n");
  }

  TestTempDir dir_;
};

TEST_F(FakeDpkgTest, FindsOwnerVersionAndArchitecture) {
  DpkgDatabase db(dir_.path());
  auto p = db.Owner("/bin/tool");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name(), "tool");
  EXPECT_EQ(p->version(), "1.2-3");
  EXPECT_EQ(p->architecture(), "amd64");
  EXPECT_TRUE(db.error().empty()) << db.error();
}

TEST_F(FakeDpkgTest, IsUsrMergeAware) {
  DpkgDatabase db(dir_.path());
  auto p = db.Owner("/usr/bin/tool");  // listed as /bin/tool
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name(), "tool");
  p = db.Owner("/sbin/toold");  // listed as /usr/sbin/toold
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name(), "tool");
}

TEST_F(FakeDpkgTest, MultiArchListsCarryTheirArchitecture) {
  DpkgDatabase db(dir_.path());
  auto p = db.Owner("/usr/lib/i386-linux-gnu/libz.so.1");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name(), "libz");
  EXPECT_EQ(p->architecture(), "i386");
  EXPECT_EQ(p->version(), "1:1.2.13-i");
  p = db.Owner("/usr/lib/x86_64-linux-gnu/libz.so.1");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->architecture(), "amd64");
  EXPECT_EQ(p->version(), "1:1.2.13");
}

TEST_F(FakeDpkgTest, UnpackagedAndRemovedAndOutsideTheIndexedTrees) {
  DpkgDatabase db(dir_.path());
  EXPECT_FALSE(db.Owner("/opt/agent/bin/agent").has_value());
  EXPECT_FALSE(db.Owner("/usr/bin/removed").has_value()) << "config-files only: not installed";
  EXPECT_FALSE(db.Owner("/usr/share/doc/tool").has_value()) << "not an indexed tree";
  EXPECT_FALSE(db.Owner("").has_value());
  EXPECT_FALSE(db.Owner("relative/bin/tool").has_value());
  EXPECT_FALSE(db.Owner("/usr/bin/not-a-list").has_value());
}

TEST_F(FakeDpkgTest, ReloadsWhenStatusChanges) {
  DpkgDatabase db(dir_.path(), absl::ZeroDuration());
  ASSERT_TRUE(db.Owner("/bin/tool").has_value());
  EXPECT_FALSE(db.Owner("/usr/bin/newtool").has_value());
  EXPECT_EQ(db.loads(), 1u) << "unchanged status: not loaded again";
  Write(dir_.path() + "/info/newtool.list", "/usr/bin/newtool\n");
  Write(dir_.path() + "/status",
        "Package: newtool\nStatus: install ok installed\nArchitecture: all\nVersion: 2\n");
  auto p = db.Owner("/usr/bin/newtool");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->version(), "2");
  EXPECT_EQ(p->architecture(), "all");
  EXPECT_FALSE(db.Owner("/bin/tool").has_value()) << "tool is no longer installed";
  EXPECT_EQ(db.loads(), 2u);
}

TEST_F(FakeDpkgTest, UnreadableDatabaseDegradesToUnpackaged) {
  DpkgDatabase missing(dir_.path() + "/nonexistent");
  EXPECT_FALSE(missing.Owner("/bin/tool").has_value());
  EXPECT_NE(missing.error().find("unpackaged"), std::string::npos) << missing.error();

  std::filesystem::remove_all(dir_.path() + "/info");
  DpkgDatabase no_info(dir_.path());
  EXPECT_FALSE(no_info.Owner("/bin/tool").has_value());
  EXPECT_FALSE(no_info.error().empty());
}

TEST_F(FakeDpkgTest, MalformedFilesDoNotCrash) {
  std::string junk(1 << 16, '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>(i * 131 % 256);
  Write(dir_.path() + "/status", junk + "\nPackage:\nStatus:\n\n\n:::\n");
  Write(dir_.path() + "/info/:.list", junk);
  Write(dir_.path() + "/info/.list", "/usr/bin/x\n");
  DpkgDatabase db(dir_.path());
  EXPECT_FALSE(db.Owner("/usr/bin/x").has_value());
  EXPECT_FALSE(db.Owner(junk).has_value());
}

// The node's own dpkg database: /bin/sh is dash's (usr-merge: the kernel names it
// /usr/bin/dash), with the version dpkg-query reports.
std::string DpkgQuery(const std::string& args) {
  std::string out;
  FILE* p = popen(("dpkg-query " + args + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[256];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  pclose(p);
  return std::string(absl::StripTrailingAsciiWhitespace(out));
}

TEST(RealDpkgTest, OwnsTheShellAndPython) {
  DpkgDatabase db;
  std::error_code ec;
  const std::string sh = std::filesystem::canonical("/bin/sh", ec).string();
  ASSERT_FALSE(ec) << ec.message();
  auto p = db.Owner(sh);
  ASSERT_TRUE(p.has_value()) << sh << ": " << db.error();
  EXPECT_EQ(p->name(), "dash");
  EXPECT_EQ(p->version(), DpkgQuery("-W -f='${Version}' dash"));
  EXPECT_EQ(p->architecture(), DpkgQuery("-W -f='${Architecture}' dash"));

  const std::string python = std::filesystem::canonical("/usr/bin/python3", ec).string();
  ASSERT_FALSE(ec) << "Debian's python3 is installed by deploy/setup.sh";
  p = db.Owner(python);
  ASSERT_TRUE(p.has_value()) << python;
  const std::string owner = DpkgQuery("-S " + python);  // "python3.11-minimal: /usr/bin/..."
  EXPECT_EQ(owner.substr(0, owner.find(':')), p->name());
  EXPECT_FALSE(p->version().empty());
  EXPECT_GT(db.indexed_paths(), 1000u);
  EXPECT_FALSE(db.Owner("/usr/bin/vigil-surely-not-packaged").has_value());
}

}  // namespace
}  // namespace vigil::node
