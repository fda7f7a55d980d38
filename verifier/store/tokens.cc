#include "verifier/store/tokens.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace vigil::verifier {
namespace {

constexpr char kPagePrefix[] = "p1:";
constexpr char kCursorPrefix[] = "c1:";

}  // namespace

std::string EncodePageToken(const PageKey& key) {
  return absl::WebSafeBase64Escape(absl::StrCat(kPagePrefix, key.time_unix_nano, ":", key.id));
}

absl::StatusOr<PageKey> DecodePageToken(const std::string& token) {
  std::string raw;
  const absl::Status invalid = absl::InvalidArgumentError("invalid page_token");
  if (!absl::WebSafeBase64Unescape(token, &raw)) return invalid;
  absl::string_view rest = raw;
  if (!absl::ConsumePrefix(&rest, kPagePrefix)) return invalid;
  std::vector<std::string> parts = absl::StrSplit(rest, ':');
  PageKey key;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &key.time_unix_nano) ||
      !absl::SimpleAtoi(parts[1], &key.id) || key.id <= 0) {
    return invalid;
  }
  return key;
}

std::string EncodeChangeCursor(int64_t id) {
  return absl::WebSafeBase64Escape(absl::StrCat(kCursorPrefix, id));
}

absl::StatusOr<int64_t> DecodeChangeCursor(const std::string& cursor) {
  if (cursor.empty()) return 0;
  std::string raw;
  int64_t id = 0;
  absl::string_view rest;
  if (absl::WebSafeBase64Unescape(cursor, &raw)) rest = raw;
  if (!absl::ConsumePrefix(&rest, kCursorPrefix) || !absl::SimpleAtoi(rest, &id) || id <= 0) {
    return absl::InvalidArgumentError("invalid cursor");
  }
  return id;
}

}  // namespace vigil::verifier
