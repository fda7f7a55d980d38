#include "node/spool/batch_format.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/digest.h"

namespace vigil::node::spool {
namespace {

constexpr std::string_view kMagic("VGSPOOL1", 8);
constexpr std::string_view kSuffix = ".batch";
constexpr size_t kNameDigits = 20;

template <typename T>
void PutLe(std::string* out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out->push_back(static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xff));
  }
}

template <typename T>
T GetLe(std::string_view bytes, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  }
  return static_cast<T>(v);
}

}  // namespace

std::string EncodeBatch(const Batch& batch) {
  std::string out;
  out.reserve(kBatchHeaderBytes + batch.payload.size() + kBatchTrailerBytes);
  out.append(kMagic);
  PutLe<uint64_t>(&out, batch.sequence);
  PutLe<int64_t>(&out, batch.written_unix_nano);
  PutLe<uint64_t>(&out, batch.log_recnum);
  PutLe<uint32_t>(&out, batch.events);
  PutLe<uint32_t>(&out, static_cast<uint32_t>(batch.payload.size()));
  out.append(batch.payload);
  out.append(DigestBytes(Sha256(out)));
  return out;
}

absl::StatusOr<Batch> DecodeBatch(std::string_view bytes) {
  if (bytes.size() < kBatchHeaderBytes + kBatchTrailerBytes) {
    return absl::DataLossError(absl::StrCat("spool batch of ", bytes.size(),
                                            " bytes is shorter than its header and trailer"));
  }
  if (bytes.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError("spool batch does not start with VGSPOOL1");
  }
  const uint32_t length = GetLe<uint32_t>(bytes, 36);
  if (length > kMaxBatchPayloadBytes) {
    return absl::DataLossError(absl::StrCat("spool batch claims a payload of ", length,
                                            " bytes (limit ", kMaxBatchPayloadBytes, ")"));
  }
  if (bytes.size() != kBatchHeaderBytes + length + kBatchTrailerBytes) {
    return absl::DataLossError(absl::StrCat("spool batch is ", bytes.size(),
                                            " bytes but its header says ",
                                            kBatchHeaderBytes + length + kBatchTrailerBytes));
  }
  const size_t body = kBatchHeaderBytes + length;
  if (DigestBytes(Sha256(bytes.substr(0, body))) != bytes.substr(body)) {
    return absl::DataLossError("spool batch does not match its SHA-256 trailer");
  }
  Batch batch;
  batch.sequence = GetLe<uint64_t>(bytes, 8);
  batch.written_unix_nano = GetLe<int64_t>(bytes, 16);
  batch.log_recnum = GetLe<uint64_t>(bytes, 24);
  batch.events = GetLe<uint32_t>(bytes, 32);
  batch.payload = std::string(bytes.substr(kBatchHeaderBytes, length));
  return batch;
}

std::string BatchFileName(uint64_t sequence) {
  return absl::StrFormat("%020u%s", sequence, kSuffix);
}

std::optional<uint64_t> ParseBatchFileName(std::string_view name) {
  if (name.size() != kNameDigits + kSuffix.size() || name.substr(kNameDigits) != kSuffix) {
    return std::nullopt;
  }
  std::string_view digits = name.substr(0, kNameDigits);
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  uint64_t sequence = 0;
  if (!absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &sequence))
    return std::nullopt;
  return sequence;
}

}  // namespace vigil::node::spool
