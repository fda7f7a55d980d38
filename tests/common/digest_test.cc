#include "common/digest.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "tests/testing/temp_dir.h"

namespace vigil {
namespace {

TEST(DigestTest, Sha256OfKnownVector) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, ConcatEqualsDigestOfJoinedParts) {
  EXPECT_EQ(Sha256Concat({"ab", "", "c"}), Sha256("abc"));
}

TEST(DigestTest, FileDigestMatchesBytesDigest) {
  auto tmp = testing::TestTempDir::Create("digest");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  std::string path = tmp->path() + "/digest_test_file";
  std::string content(200000, 'x');
  std::ofstream(path, std::ios::binary) << content;
  auto d = Sha256File(path);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, Sha256(content));
  std::remove(path.c_str());
  EXPECT_EQ(Sha256File(path).status().code(), absl::StatusCode::kNotFound);
}

TEST(DigestTest, HexRoundTripsAndRejectsBadInput) {
  std::string bytes("\x00\x01\xfe\xff", 4);
  EXPECT_EQ(HexEncode(bytes), "0001feff");
  EXPECT_EQ(*HexDecode("0001FEff"), bytes);
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
}

TEST(DigestTest, ConstantTimeEqualsComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace vigil
