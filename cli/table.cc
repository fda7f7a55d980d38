#include "cli/table.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace vigil::cli {
namespace {

// Width on a terminal: UTF-8 continuation bytes take no column.
size_t DisplayWidth(const std::string& s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

}  // namespace

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::AddRow(std::vector<Cell> cells) {
  cells.resize(headers_.size(), Cell(""));
  rows_.push_back(std::move(cells));
}

void Table::Render(std::ostream& out, bool color) const {
  std::vector<size_t> widths(headers_.size());
  for (size_t i = 0; i < headers_.size(); ++i) widths[i] = DisplayWidth(headers_[i]);
  for (const std::vector<Cell>& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i].text));
    }
  }
  auto line = [&](const std::vector<Cell>& cells) {
    std::string text;
    // The last non-empty cell ends the line: no trailing blanks.
    size_t last = cells.size();
    while (last > 0 && cells[last - 1].text.empty()) --last;
    for (size_t i = 0; i < last; ++i) {
      if (i > 0) text += "  ";
      text += color ? Colorize(cells[i].text, cells[i].color) : cells[i].text;
      if (i + 1 < last) text.append(widths[i] - DisplayWidth(cells[i].text), ' ');
    }
    out << text << "\n";
  };
  std::vector<Cell> header;
  for (const std::string& h : headers_) header.emplace_back(h);
  line(header);
  for (const std::vector<Cell>& row : rows_) line(row);
}

bool ShouldColor(int fd) {
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && no_color[0] != '\0') return false;
  return isatty(fd) == 1;
}

std::string Colorize(const std::string& text, Color color) {
  switch (color) {
    case Color::kGreen:
      return "\033[32m" + text + "\033[0m";
    case Color::kYellow:
      return "\033[33m" + text + "\033[0m";
    case Color::kRed:
      return "\033[31m" + text + "\033[0m";
    case Color::kNone:
      break;
  }
  return text;
}

}  // namespace vigil::cli
