#pragma once

// Address ranges for the egress and listeners rules.

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vigil::policy {

/// An IPv4 or IPv6 address, IPv4 kept apart (an IPv4-mapped IPv6 address is read as the
/// IPv4 address it maps, so "::ffff:10.0.0.1" is in 10.0.0.0/8).
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 in the first four
};

/// Parses a dotted IPv4 or an IPv6 address (with or without brackets); nullopt otherwise.
std::optional<IpAddress> ParseIpAddress(absl::string_view text);

/// An address range: "10.0.0.0/8", "2001:db8::/32", or one address ("127.0.0.1" is /32).
struct Cidr {
  IpAddress base;
  int prefix_length = 0;

  /// Whether `address` is in the range (never across families).
  bool Contains(const IpAddress& address) const;
};

/// Parses a CIDR. Fails on a malformed address, a prefix longer than the family allows, or
/// host bits set below the prefix ("10.0.0.1/8": probably a typo for a /32 or a /8).
absl::StatusOr<Cidr> ParseCidr(absl::string_view text);

}  // namespace vigil::policy
