#include "common/policy/net.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace vigil::policy {

std::optional<IpAddress> ParseIpAddress(absl::string_view text) {
  if (absl::ConsumePrefix(&text, "[") && !absl::ConsumeSuffix(&text, "]")) return std::nullopt;
  // inet_pton needs a NUL-terminated string; addresses are short.
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  IpAddress a;
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    std::memcpy(a.bytes.data(), &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6.s6_addr, kMappedPrefix, sizeof(kMappedPrefix)) == 0) {
    std::memcpy(a.bytes.data(), v6.s6_addr + 12, 4);
    return a;
  }
  a.v6 = true;
  std::memcpy(a.bytes.data(), v6.s6_addr, 16);
  return a;
}

namespace {

// Whether the first `bits` bits of `a` and `b` agree.
bool PrefixEqual(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int bits) {
  int i = 0;
  for (; bits >= 8; bits -= 8, ++i) {
    if (a[i] != b[i]) return false;
  }
  if (bits == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (a[i] & mask) == (b[i] & mask);
}

}  // namespace

bool Cidr::Contains(const IpAddress& address) const {
  return address.v6 == base.v6 && PrefixEqual(base.bytes, address.bytes, prefix_length);
}

absl::StatusOr<Cidr> ParseCidr(absl::string_view text) {
  absl::string_view address = text;
  absl::string_view prefix;
  if (size_t slash = text.find('/'); slash != absl::string_view::npos) {
    address = text.substr(0, slash);
    prefix = text.substr(slash + 1);
  }
  std::optional<IpAddress> base = ParseIpAddress(address);
  if (!base) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not an IPv4 or IPv6 address"));
  }
  Cidr cidr;
  cidr.base = *base;
  const int max_length = base->v6 ? 128 : 32;
  cidr.prefix_length = max_length;
  if (text.find('/') != absl::string_view::npos) {
    int length = -1;
    if (!absl::SimpleAtoi(prefix, &length) || length < 0 || length > max_length) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': prefix length must be 0 to ", max_length));
    }
    cidr.prefix_length = length;
  }
  std::array<uint8_t, 16> masked = base->bytes;
  for (int bit = cidr.prefix_length; bit < max_length; ++bit) {
    masked[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  if (masked != base->bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' has address bits set below its prefix length"));
  }
  return cidr;
}

}  // namespace vigil::policy
