// The user-space side of the probes' monitored-pid bitmap, on a real BPF array map (root).
#include "node/probes/monitored_bits.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/unique_fd.h"
#include "tests/testing/temp_dir.h"

namespace vigil::node {
namespace {

std::string WriteFile(const std::string& dir, const std::string& text) {
  std::string path = dir + "/pid_max";
  std::ofstream(path) << text;
  return path;
}

TEST(MonitoredBitsTest, WordsCoverEveryPidBelowPidMax) {
  auto made = vigil::testing::TestTempDir::Create("pidmax");
  ASSERT_TRUE(made.ok()) << made.status();
  const auto& dir = *made;
  EXPECT_EQ(MonitoredWordsFor(WriteFile(dir.path(), "32768\n"), 65536), 512u);
  EXPECT_EQ(MonitoredWordsFor(WriteFile(dir.path(), "100\n"), 65536), 2u);
  EXPECT_EQ(MonitoredWordsFor(WriteFile(dir.path(), "4194304\n"), 65536), 65536u);
}

TEST(MonitoredBitsTest, UnreadableOrMalformedPidMaxGivesTheFullSize) {
  auto made = vigil::testing::TestTempDir::Create("pidmax");
  ASSERT_TRUE(made.ok()) << made.status();
  const auto& dir = *made;
  EXPECT_EQ(MonitoredWordsFor(dir.path() + "/missing", 65536), 65536u);
  EXPECT_EQ(MonitoredWordsFor(WriteFile(dir.path(), "many\n"), 65536), 65536u);
  EXPECT_EQ(MonitoredWordsFor(WriteFile(dir.path(), "0\n"), 65536), 65536u);
  EXPECT_EQ(MonitoredWordsFor(WriteFile(dir.path(), "-5\n"), 65536), 65536u);
}

TEST(MonitoredBitsTest, SetBitsAreWhatTheMapHolds) {
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
  UniqueFd map(bpf_map_create(BPF_MAP_TYPE_ARRAY, "vigil_bits_test", sizeof(uint32_t),
                              sizeof(uint64_t), 8, &opts));
  ASSERT_TRUE(map.Valid()) << "creating a BPF array map needs root";
  auto bits = MonitoredBits::Map(map.Get(), 8);
  ASSERT_TRUE(bits.ok()) << bits.status();
  EXPECT_TRUE(bits->Set(1));
  EXPECT_TRUE(bits->Set(130));
  EXPECT_TRUE(bits->Set(511));
  EXPECT_FALSE(bits->Set(512)) << "beyond the bitmap: left to the hash";
  EXPECT_TRUE(bits->Test(130));
  EXPECT_FALSE(bits->Test(131));
  EXPECT_FALSE(bits->Test(512));
  uint32_t key = 2;
  uint64_t word = 0;
  ASSERT_EQ(bpf_map_lookup_elem(map.Get(), &key, &word), 0);
  EXPECT_EQ(word, uint64_t{1} << 2);  // pid 130 = word 2, bit 2
  key = 7;
  ASSERT_EQ(bpf_map_lookup_elem(map.Get(), &key, &word), 0);
  EXPECT_EQ(word, uint64_t{1} << 63);
  // A bit the kernel side sets is seen through the mapping.
  key = 0;
  word = uint64_t{1} << 5 | uint64_t{1} << 1;
  ASSERT_EQ(bpf_map_update_elem(map.Get(), &key, &word, BPF_ANY), 0);
  EXPECT_TRUE(bits->Test(5));
  EXPECT_TRUE(bits->Test(1));
}

TEST(MonitoredBitsTest, MappingAMapThatIsNotMappableFails) {
  UniqueFd map(bpf_map_create(BPF_MAP_TYPE_ARRAY, "vigil_bits_test", sizeof(uint32_t),
                              sizeof(uint64_t), 8, nullptr));
  ASSERT_TRUE(map.Valid());
  EXPECT_FALSE(MonitoredBits::Map(map.Get(), 8).ok());
  EXPECT_FALSE(MonitoredBits::Map(map.Get(), 0).ok());
}

}  // namespace
}  // namespace vigil::node
