#include "common/escape.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(EscapeUntrustedTest, EscapesControlBytesNonAsciiAndBackslash) {
  EXPECT_EQ(EscapeUntrusted("plain /usr/bin/x"), "plain /usr/bin/x");
  EXPECT_EQ(EscapeUntrusted("a\nb\r\x1b[2J"), "a\\x0ab\\x0d\\x1b[2J");
  EXPECT_EQ(EscapeUntrusted(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(EscapeUntrusted("\xff\xfe\x7f"), "\\xff\\xfe\\x7f");
  // A literal "\x41" in the input stays distinguishable from an escaped byte.
  EXPECT_EQ(EscapeUntrusted("\\x41"), "\\\\x41");
}

TEST(EscapeUntrustedTest, CutsLongTextAndSaysSo) {
  EXPECT_EQ(EscapeUntrusted("abcdef", 3), "abc...");
  EXPECT_EQ(EscapeUntrusted("abc", 3), "abc");
  EXPECT_EQ(EscapeUntrusted("\n\n\n\n", 2), "\\x0a\\x0a...");
}

}  // namespace
}  // namespace vigil
