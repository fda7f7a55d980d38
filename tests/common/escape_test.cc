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

TEST(XmlEscapeTest, MarkupBecomesEntitiesAndUnsafeBytesBecomeHex) {
  EXPECT_EQ(XmlEscape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
  // Tab, newline and carriage return are XML characters; other controls, DEL and bytes that
  // need not be UTF-8 are not carried as such.
  EXPECT_EQ(XmlEscape("a\tb\nc\rd"), "a\tb\nc\rd");
  EXPECT_EQ(XmlEscape(std::string("\x1b[2J\0\x7f\xff", 7)), "\\x1b[2J\\x00\\x7f\\xff");
}

}  // namespace
}  // namespace vigil
