#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vigil {

using Sha256Digest = std::array<uint8_t, 32>;

/// SHA-256 of `data`.
Sha256Digest Sha256(std::string_view data);

/// SHA-256 of the concatenation of `parts`, without copying them together.
Sha256Digest Sha256Concat(std::initializer_list<std::string_view> parts);

/// SHA-256 of a file's contents, read in chunks. Fails with the path in the message.
absl::StatusOr<Sha256Digest> Sha256File(const std::string& path);

/// The digest's bytes as a string_view (no copy).
std::string_view DigestBytes(const Sha256Digest& d);

/// Lowercase hex of `bytes`.
std::string HexEncode(std::string_view bytes);
std::string HexEncode(const Sha256Digest& d);

/// Bytes from hex (either case). Fails on odd length or a non-hex character.
absl::StatusOr<std::string> HexDecode(std::string_view hex);

/// Compares two byte strings in time that depends only on their lengths. Use for every
/// comparison of secrets (activation secrets, nonces, MACs).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace vigil
