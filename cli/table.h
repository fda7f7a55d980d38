#pragma once

// Aligned text tables for vigilctl's human output, with optional colour on single cells.

#include <ostream>
#include <string>
#include <vector>

namespace vigil::cli {

/// The colours vigilctl uses: green for affirming results, yellow for warnings, red for
/// contraindicated or rejected ones.
enum class Color { kNone, kGreen, kYellow, kRed };

/// One table cell: its text and, when colour is on, the colour it is drawn in.
struct Cell {
  Cell(std::string t, Color c = Color::kNone) : text(std::move(t)), color(c) {}
  Cell(const char* t, Color c = Color::kNone) : text(t), color(c) {}
  std::string text;
  Color color = Color::kNone;
};

/// Columns separated by two spaces, each as wide as its widest cell; the last column is not
/// padded, so lines carry no trailing blanks. Colour codes never count towards the width.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  /// Adds a row; missing cells are empty, extra cells are dropped.
  void AddRow(std::vector<Cell> cells);

  /// Writes the header line and every row, colouring cells when `color` is set.
  void Render(std::ostream& out, bool color) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<Cell>> rows_;
};

/// Whether output to `fd` should be coloured: it is a terminal and NO_COLOR is unset or empty
/// (https://no-color.org).
bool ShouldColor(int fd);

/// `text` wrapped in the ANSI escape codes of `color` (unchanged for Color::kNone).
std::string Colorize(const std::string& text, Color color);

}  // namespace vigil::cli
