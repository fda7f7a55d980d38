#include "common/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"

namespace vigil {
namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// OpenSSL 3 looks EVP_sha256()'s implementation up by name on every EVP_DigestInit_ex; the
// implementation fetched once skips that (it lives as long as the process).
const EVP_MD* FetchedSha256() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

MdCtx NewSha256Ctx() {
  MdCtx ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || FetchedSha256() == nullptr ||
      EVP_DigestInit_ex(ctx.get(), FetchedSha256(), nullptr) != 1) {
    // Out of memory or a broken libcrypto: an internal invariant, not input.
    std::abort();
  }
  return ctx;
}

Sha256Digest Finish(EVP_MD_CTX* ctx) {
  Sha256Digest d{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, d.data(), &len) != 1 || len != d.size()) std::abort();
  return d;
}

}  // namespace

Sha256Digest Sha256(std::string_view data) { return Sha256Concat({data}); }

Sha256Digest Sha256Concat(std::initializer_list<std::string_view> parts) {
  MdCtx ctx = NewSha256Ctx();
  for (std::string_view p : parts) EVP_DigestUpdate(ctx.get(), p.data(), p.size());
  return Finish(ctx.get());
}

absl::StatusOr<Sha256Digest> Sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  MdCtx ctx = NewSha256Ctx();
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof(buf));
    EVP_DigestUpdate(ctx.get(), buf, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return Finish(ctx.get());
}

std::string_view DigestBytes(const Sha256Digest& d) {
  return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<uint8_t>(bytes[i]);
    out[2 * i] = kHex[b >> 4];
    out[2 * i + 1] = kHex[b & 0xf];
  }
  return out;
}

std::string HexEncode(const Sha256Digest& d) { return HexEncode(DigestBytes(d)); }

absl::StatusOr<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return absl::InvalidArgumentError("hex string has odd length");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(absl::StrCat("not a hex digit at offset ", 2 * i));
    }
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace vigil
