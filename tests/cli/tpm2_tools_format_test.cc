#include "cli/tpm2_tools_format.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/digest.h"

namespace vigil::cli {
namespace {

std::string Digest(char fill) { return std::string(32, fill); }

absl::StatusOr<PcrFile> NinePcrs() {
  // Nine values: more than one TPML_DIGEST list (8 digests each) is needed.
  std::vector<std::pair<uint32_t, std::string>> values;
  for (uint32_t i : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 15u}) values.emplace_back(i, Digest('a' + i));
  return Sha256PcrFile(values);
}

TEST(Tpm2ToolsFormatTest, SerializedPcrsHaveTpm2ToolsLayout) {
  auto pcrs = NinePcrs();
  ASSERT_TRUE(pcrs.ok()) << pcrs.status();
  auto bytes = SerializePcrs(*pcrs);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  // TPML_PCR_SELECTION (132) + UINT32 list count + two TPML_DIGEST (532 each).
  ASSERT_EQ(bytes->size(), 132u + 4u + 2u * 532u);
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[0]), 1);     // one bank
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[4]), 0x0b);  // TPM2_ALG_SHA256, little endian
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[6]), 3);     // sizeofSelect
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[7]), 0xff);  // PCRs 0-7
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[8]), 0x80);  // PCR 15
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[132]), 2);   // two digest lists
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[136]), 8);   // first list: 8 digests
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[136 + 532]), 1);
}

TEST(Tpm2ToolsFormatTest, SerializedPcrsRoundTrip) {
  auto pcrs = NinePcrs();
  ASSERT_TRUE(pcrs.ok());
  auto bytes = SerializePcrs(*pcrs);
  ASSERT_TRUE(bytes.ok());
  auto parsed = ParseSerializedPcrs(*bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(SameSelection(parsed->selection, pcrs->selection));
  EXPECT_EQ(parsed->digests, pcrs->digests);
  EXPECT_EQ(CountSelectedPcrs(parsed->selection), 9u);
}

TEST(Tpm2ToolsFormatTest, ValuesFormatUsesTheGivenSelection) {
  auto pcrs = NinePcrs();
  ASSERT_TRUE(pcrs.ok());
  std::string values;
  for (const std::string& d : pcrs->digests) values += d;
  auto parsed = ParsePcrsAuto(values, pcrs->selection);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->digests, pcrs->digests);
  // One digest short is refused, never padded.
  EXPECT_FALSE(ParseValuesPcrs(values.substr(32), pcrs->selection).ok());
  EXPECT_FALSE(ParseValuesPcrs(values + "x", pcrs->selection).ok());
}

TEST(Tpm2ToolsFormatTest, RejectsMalformedSerializedFiles) {
  auto pcrs = NinePcrs();
  ASSERT_TRUE(pcrs.ok());
  auto good = SerializePcrs(*pcrs);
  ASSERT_TRUE(good.ok());

  EXPECT_FALSE(ParseSerializedPcrs(good->substr(0, 100)).ok());  // truncated header
  EXPECT_FALSE(ParseSerializedPcrs(good->substr(0, good->size() - 1)).ok());

  std::string banks = *good;
  banks[0] = 17;  // more banks than TPM2_NUM_PCR_BANKS
  EXPECT_FALSE(ParseSerializedPcrs(banks).ok());

  std::string lists = *good;
  lists[132] = 3;  // claims a third list the file does not hold
  EXPECT_FALSE(ParseSerializedPcrs(lists).ok());

  std::string count = *good;
  count[136] = 9;  // a TPML_DIGEST holds at most 8
  EXPECT_FALSE(ParseSerializedPcrs(count).ok());

  std::string size = *good;
  size[140] = 20;  // a SHA-1-sized digest in the SHA-256 bank
  EXPECT_FALSE(ParseSerializedPcrs(size).ok());

  std::string select = *good;
  select[8] = 0xc0;  // selects PCR 14 too: one digest short
  EXPECT_FALSE(ParseSerializedPcrs(select).ok());
}

TEST(Tpm2ToolsFormatTest, CompositeDigestIsHashOfConcatenatedValues) {
  auto pcrs = Sha256PcrFile({{0, Digest('x')}, {15, Digest('y')}});
  ASSERT_TRUE(pcrs.ok());
  auto composite = PcrCompositeDigest(*pcrs, TPM2_ALG_SHA256);
  ASSERT_TRUE(composite.ok());
  EXPECT_EQ(*composite, std::string(DigestBytes(Sha256(Digest('x') + Digest('y')))));
}

TEST(Tpm2ToolsFormatTest, Sha256PcrFileRefusesBadInput) {
  EXPECT_FALSE(Sha256PcrFile({}).ok());
  EXPECT_FALSE(Sha256PcrFile({{3, Digest('a')}, {1, Digest('b')}}).ok());  // not ascending
  EXPECT_FALSE(Sha256PcrFile({{1, Digest('a')}, {1, Digest('b')}}).ok());  // duplicate
  EXPECT_FALSE(Sha256PcrFile({{32, Digest('a')}}).ok());                   // no such PCR
  EXPECT_FALSE(Sha256PcrFile({{1, "short"}}).ok());
}

TEST(Tpm2ToolsFormatTest, SelectionsCompareByContentNotEncoding) {
  TPML_PCR_SELECTION a = {};
  a.count = 1;
  a.pcrSelections[0] = {TPM2_ALG_SHA256, 3, {0x01, 0x00, 0x00}};
  TPML_PCR_SELECTION b = a;
  b.pcrSelections[0].sizeofSelect = 4;
  EXPECT_TRUE(SameSelection(a, b));
  b.pcrSelections[0].pcrSelect[1] = 0x80;
  EXPECT_FALSE(SameSelection(a, b));
}

TEST(Tpm2ToolsFormatTest, AkPublicRejectsGarbage) {
  EXPECT_FALSE(ParseAkPublic("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n").ok());
  EXPECT_FALSE(ParseAkPublic(std::string("\x00\x05hello", 7)).ok());
  EXPECT_FALSE(ParseAkPublic("").ok());
}

}  // namespace
}  // namespace vigil::cli
