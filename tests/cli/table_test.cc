#include "cli/table.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <sstream>

namespace vigil::cli {
namespace {

TEST(TableTest, AlignsColumnsWithoutTrailingBlanks) {
  Table t({"A", "LONGER", "C"});
  t.AddRow({"wide-cell", "x", ""});
  t.AddRow({"", "y", "z"});
  t.AddRow({"é", "short"});  // missing cells are empty; é is one column
  std::ostringstream out;
  t.Render(out, /*color=*/false);
  EXPECT_EQ(out.str(),
            "A          LONGER  C\n"
            "wide-cell  x\n"
            "           y       z\n"
            "é          short\n");
}

TEST(TableTest, ColourWrapsOnlyColouredCellsAndKeepsAlignment) {
  Table t({"S", "N"});
  t.AddRow({Cell("OK", Color::kGreen), "1"});
  t.AddRow({Cell("BAD", Color::kRed), "2"});
  t.AddRow({"-", "3"});
  std::ostringstream out;
  t.Render(out, /*color=*/true);
  EXPECT_EQ(out.str(),
            "S    N\n"
            "\033[32mOK\033[0m   1\n"
            "\033[31mBAD\033[0m  2\n"
            "-    3\n");
}

TEST(TableTest, NoColorOrANonTerminalTurnsColourOff) {
  // The test's stdout may be a terminal or not; a pipe never is.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  unsetenv("NO_COLOR");
  EXPECT_FALSE(ShouldColor(fds[1]));
  close(fds[0]);
  close(fds[1]);
  // A pseudo-terminal is one, unless NO_COLOR says otherwise.
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  const int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(slave, 0);
  EXPECT_TRUE(ShouldColor(slave));
  setenv("NO_COLOR", "1", 1);
  EXPECT_FALSE(ShouldColor(slave));
  setenv("NO_COLOR", "", 1);  // empty: as if unset
  EXPECT_TRUE(ShouldColor(slave));
  unsetenv("NO_COLOR");
  close(slave);
  close(master);
}

}  // namespace
}  // namespace vigil::cli
