#include "common/measurement_log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace vigil {
namespace {

MeasurementRecord Record(uint64_t recnum, uint32_t pcr, std::string_view measured,
                         std::string event) {
  return {recnum, pcr, Sha256(measured), std::move(event), "detail of " + std::string(measured)};
}

// A test's own directory, kept when the test fails.
testing::TestTempDir MakeTempDir() {
  auto dir = testing::TestTempDir::Create("mlog");
  EXPECT_TRUE(dir.ok()) << dir.status();
  return dir.ok() ? *std::move(dir) : testing::TestTempDir();
}

TEST(MeasurementLogTest, ReplayMatchesIndependentlyComputedPcr) {
  // Expected value from Python: sha256(sha256(zeros || sha256("one")) || sha256("two")).
  std::vector<MeasurementRecord> records = {Record(0, 15, "one", kEventNodeBinary),
                                            Record(1, 16, "other pcr", kEventBpfObject),
                                            Record(2, 15, "two", kEventPolicyBundle)};
  EXPECT_EQ(HexEncode(ReplayPcr(records, 15)),
            "b88f3f290fe4ac11da329c5515b418b937de9be1abffb4ff40de976ef83a28ee");
  EXPECT_EQ(ReplayPcr(std::vector<MeasurementRecord>{}, 15), Sha256Digest{});

  google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry> wire;
  for (const auto& r : records) *wire.Add() = ToProto(r);
  auto replayed = ReplayPcr(wire, 15);
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(*replayed, ReplayPcr(records, 15));
}

TEST(MeasurementLogTest, WireReplayRejectsShortDigest) {
  google::protobuf::RepeatedPtrField<v1::MeasurementLogEntry> wire;
  *wire.Add() = ToProto(Record(0, 15, "one", kEventNodeBinary));
  wire.Mutable(0)->set_digest("short");
  EXPECT_EQ(ReplayPcr(wire, 15).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MeasurementLogTest, ReplayPcrsReplaysEveryPcrTheEntriesExtend) {
  std::vector<MeasurementRecord> records = {Record(0, 15, "one", kEventNodeBinary),
                                            Record(1, 14, "two", kEventPolicyBundle),
                                            Record(2, 15, "three", kEventPolicyBundle)};
  std::vector<v1::MeasurementLogEntry> wire;
  for (const MeasurementRecord& r : records) wire.push_back(ToProto(r));
  auto pcrs = ReplayPcrs(wire);
  ASSERT_TRUE(pcrs.ok()) << pcrs.status();
  ASSERT_EQ(pcrs->size(), 2u);
  EXPECT_EQ(pcrs->at(15), ReplayPcr(records, 15));
  EXPECT_EQ(pcrs->at(14), ReplayPcr(records, 14));

  wire[1].set_digest("short");
  EXPECT_EQ(ReplayPcrs(wire).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MeasurementLogTest, SerializeParseRoundTrip) {
  MeasurementLog log{
      "8d3a0f5e-boot",
      {Record(0, 15, "one", kEventNodeBinary), Record(1, 15, "two", kEventNoPolicy)}};
  log.records[1].detail = "path with \"quotes\" and \\ backslash";
  auto parsed = ParseMeasurementLog(SerializeMeasurementLog(log));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, log);
}

TEST(MeasurementLogTest, ParseRejectsMalformedLogs) {
  MeasurementLog log{"b", {Record(0, 15, "one", kEventNodeBinary)}};
  std::string good = SerializeMeasurementLog(log);
  ASSERT_TRUE(ParseMeasurementLog(good).ok());
  auto replaced = [&](std::string_view from, std::string_view to) {
    std::string s = good;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    return s;
  };
  for (const std::string& bad :
       {std::string(""), std::string("[]"), good.substr(0, good.size() / 2),
        replaced("\"recnum\": 0", "\"recnum\": 1"), replaced("\"recnum\": 0", "\"recnum\": -1"),
        replaced("\"pcr\": 15", "\"pcr\": 24"), replaced("sha256", "sha1"),
        replaced(HexEncode(Sha256("one")), "abcd"),
        replaced(HexEncode(Sha256("one")), std::string(64, 'z')),
        replaced("\"content_type\": \"vigil\"", "\"content_type\": \"systemd\""),
        replaced("vigil-cel-json/1", "other")}) {
    EXPECT_EQ(ParseMeasurementLog(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(MeasurementLogTest, WriteIsPrivateAtomicAndReadable) {
  testing::TestTempDir tmp = MakeTempDir();
  ASSERT_FALSE(tmp.path().empty());
  std::string dir = tmp.path() + "/run/vigil";
  std::string path = dir + "/measurements.json";
  EXPECT_EQ(ReadMeasurementLog(path).status().code(), absl::StatusCode::kNotFound);

  MeasurementLog log{"boot-1", {Record(0, 15, "one", kEventNodeBinary)}};
  ASSERT_TRUE(WriteMeasurementLog(path, log).ok());
  log.records.push_back(Record(1, 15, "two", kEventBpfObject));
  ASSERT_TRUE(WriteMeasurementLog(path, log).ok());

  auto read = ReadMeasurementLog(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, log);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // No temporary file is left beside the log.
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1);
}

TEST(MeasurementLogTest, ReadReportsCorruptFileWithPath) {
  testing::TestTempDir tmp = MakeTempDir();
  ASSERT_FALSE(tmp.path().empty());
  std::string path = tmp.path() + "/m.json";
  std::ofstream(path) << "{\"format\": \"vigil-cel-json/1\", \"boot_id\": \"b\", \"records\": [";
  auto read = ReadMeasurementLog(path);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vigil
