#include "common/ima_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/digest.h"
#include "tests/testing/build_paths.h"

namespace vigil {
namespace {

std::string Fixture() {
  std::ifstream in(vigil::testing::SourceDir() +
                   "/tests/common/testdata/ima_ascii_runtime_measurements");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ImaLogTest, ParsesEveryTemplateOfTheFixture) {
  auto entries = ParseImaAsciiLog(Fixture());
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 5u);
  EXPECT_EQ((*entries)[0].path, "boot_aggregate");
  EXPECT_EQ((*entries)[0].pcr, 10u);
  EXPECT_EQ((*entries)[0].template_name, "ima-ng");
  // ima-sig: the trailing signature is not part of the path.
  EXPECT_EQ((*entries)[2].path, "/usr/local/bin/vigil-node");
  EXPECT_EQ((*entries)[2].file_hash_algorithm, "sha256");
  EXPECT_EQ((*entries)[2].file_hash, std::string(32, '\xaa'));
  // Legacy "ima": SHA-1 file hash, a path with a space.
  EXPECT_EQ((*entries)[3].file_hash_algorithm, "sha1");
  EXPECT_EQ((*entries)[3].file_hash.size(), 20u);
  EXPECT_EQ((*entries)[3].path, "/usr/bin/old template");
}

TEST(ImaLogTest, LastEntryForAPathWins) {
  auto entries = ParseImaAsciiLog(Fixture());
  ASSERT_TRUE(entries.ok()) << entries.status();
  auto last = LastImaEntryFor(*entries, "/usr/local/bin/vigil-node");
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->file_hash, std::string(32, '\xbb'));
  EXPECT_EQ(last->template_name, "ima-ng");
  EXPECT_FALSE(LastImaEntryFor(*entries, "/usr/local/bin/other").has_value());
  // The listed line round-trips through ParseImaLine.
  auto again = ParseImaLine(last->line);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *last);
}

TEST(ImaLogTest, RefusesMalformedLinesNamingTheLine) {
  const std::string good = Fixture();
  for (const std::string bad : {
           "x 91f3 ima-ng sha256:00 /p",           // PCR
           "10 zz ima-ng sha256:00 /p",            // template hash
           "10 91f3 ima-ng 00aa /p",               // no algorithm
           "10 91f3 ima-ng sha256:0g /p",          // file hash
           "10 91f3 ima-ng sha256:00",             // no path
           "10 91f3 weird-template sha256:00 /p",  // template
           "99 91f3 ima-ng sha256:00 /p",          // PCR out of range
       }) {
    auto parsed = ParseImaAsciiLog(good + bad + "\n");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(std::string(parsed.status().message()).find("line 6"), std::string::npos)
        << parsed.status();
  }
}

}  // namespace
}  // namespace vigil
