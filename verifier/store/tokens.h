#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace vigil::verifier {

/// A position in a newest-first listing: the last row returned, by time then row id.
struct PageKey {
  int64_t time_unix_nano = 0;
  int64_t id = 0;
};

/// Opaque page tokens and change cursors. They carry positions only (no secrets); a token
/// that does not decode is INVALID_ARGUMENT, never a crash.
std::string EncodePageToken(const PageKey& key);
absl::StatusOr<PageKey> DecodePageToken(const std::string& token);
std::string EncodeChangeCursor(int64_t id);
/// 0 for the empty cursor.
absl::StatusOr<int64_t> DecodeChangeCursor(const std::string& cursor);

}  // namespace vigil::verifier
