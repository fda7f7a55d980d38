#include "common/ima_log.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/digest.h"
#include "common/escape.h"

namespace vigil {
namespace {

// Splits off the first space-separated field of `*rest`.
absl::string_view NextField(absl::string_view* rest) {
  size_t space = rest->find(' ');
  absl::string_view field = rest->substr(0, space);
  *rest = space == absl::string_view::npos ? absl::string_view() : rest->substr(space + 1);
  return field;
}

bool IsHex(absl::string_view s) {
  if (s.empty() || s.size() % 2 != 0) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

absl::Status Bad(absl::string_view line, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("IMA entry ", what, ": \"", EscapeUntrusted(line, 200), "\""));
}

}  // namespace

absl::StatusOr<ImaEntry> ParseImaLine(absl::string_view line) {
  ImaEntry e;
  e.line = std::string(line);
  absl::string_view rest = line;
  if (!absl::SimpleAtoi(NextField(&rest), &e.pcr) || e.pcr > 23) return Bad(line, "bad PCR");
  absl::string_view template_hash = NextField(&rest);
  if (!IsHex(template_hash)) return Bad(line, "bad template hash");
  e.template_hash = std::string(template_hash);
  e.template_name = std::string(NextField(&rest));
  absl::string_view hash = NextField(&rest);
  if (e.template_name == "ima-ng" || e.template_name == "ima-sig" || e.template_name == "ima-buf" ||
      e.template_name == "ima-modsig") {
    size_t colon = hash.find(':');
    if (colon == absl::string_view::npos) return Bad(line, "file hash without algorithm");
    e.file_hash_algorithm = std::string(hash.substr(0, colon));
    hash = hash.substr(colon + 1);
  } else if (e.template_name == "ima") {
    e.file_hash_algorithm = "sha1";
  } else {
    return Bad(line, "of an unknown template");
  }
  absl::StatusOr<std::string> bytes = HexDecode(std::string(hash));
  if (!IsHex(hash) || !bytes.ok()) return Bad(line, "bad file hash");
  e.file_hash = *std::move(bytes);
  if (e.template_name == "ima-sig" || e.template_name == "ima-modsig") {
    // A trailing signature field, when present, is hex after the last space.
    size_t space = rest.rfind(' ');
    if (space != absl::string_view::npos && IsHex(rest.substr(space + 1))) {
      rest = rest.substr(0, space);
    }
  }
  if (rest.empty()) return Bad(line, "without a path");
  e.path = std::string(rest);
  return e;
}

absl::StatusOr<std::vector<ImaEntry>> ParseImaAsciiLog(absl::string_view text) {
  std::vector<ImaEntry> out;
  size_t number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (line.empty()) continue;
    absl::StatusOr<ImaEntry> e = ParseImaLine(line);
    if (!e.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("line ", number, ": ", e.status().message()));
    }
    out.push_back(*std::move(e));
  }
  return out;
}

std::optional<ImaEntry> LastImaEntryFor(const std::vector<ImaEntry>& entries,
                                        absl::string_view path) {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->path == path) return *it;
  }
  return std::nullopt;
}

}  // namespace vigil
