#include "node/agent/ima_status.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace vigil::node {
namespace {

// This machine's kernel has no IMA (CONFIG_IMA unset): the node must say so, with a reason.
TEST(ImaStatusTest, ReportsAbsentImaOnThisKernel) {
  ASSERT_FALSE(std::filesystem::exists("/sys/kernel/security/ima"))
      << "this test documents a kernel without IMA; this one has it";
  v1::ImaStatus status = ReadImaStatus("/usr/local/bin/vigil-node");
  EXPECT_FALSE(status.present());
  EXPECT_NE(status.absent_reason().find("/sys/kernel/security/ima"), std::string::npos)
      << status.absent_reason();
  EXPECT_TRUE(status.node_binary_entry().empty());
}

TEST(ImaStatusTest, ReportsTheNodeBinarysEntryFromAMeasurementList) {
  char tmpl[] = "/tmp/vigil-ima-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::filesystem::create_directories(dir + "/ima");
  const std::string line =
      "10 4e0c3c8f3e5f7f9d1c2d3e4f5a6b7c8d9e0f1a2b ima-ng sha256:" + std::string(64, 'b') +
      " /opt/vigil/bin/vigil-node";
  std::ofstream(dir + "/ima/ascii_runtime_measurements")
      << "10 91f34b5c671d73504b274a919661cf80dab1e127 ima-ng sha256:" << std::string(64, 'a')
      << " boot_aggregate\n"
      << line << "\n";
  v1::ImaStatus status = ReadImaStatus("/opt/vigil/bin/vigil-node", dir);
  EXPECT_TRUE(status.present()) << status.absent_reason();
  EXPECT_EQ(status.node_binary_entry(), line);
  v1::ImaStatus unlisted = ReadImaStatus("/opt/vigil/bin/other", dir);
  EXPECT_TRUE(unlisted.present());
  EXPECT_TRUE(unlisted.node_binary_entry().empty());
  // A list the node cannot parse is reported as absent, with the reason.
  std::ofstream(dir + "/ima/ascii_runtime_measurements") << "garbage\n";
  v1::ImaStatus garbage = ReadImaStatus("/opt/vigil/bin/vigil-node", dir);
  EXPECT_FALSE(garbage.present());
  EXPECT_NE(garbage.absent_reason().find("line 1"), std::string::npos) << garbage.absent_reason();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vigil::node
