#pragma once

// The on-disk form of one spool batch: what the node observed during one batch window while
// its verifier was unreachable (docs/node.md, "Spool").
//
// A batch file holds, little-endian:
//   magic       8 bytes  "VGSPOOL1"
//   sequence    u64      the spool's batch number (also the file name)
//   written     i64      when the batch was written, nanoseconds since the Unix epoch
//   log_recnum  u64      the measurement-log record that measured SHA-256(payload), or
//                        kUnmeasured when the node runs without a TPM
//   events      u32      how many events the payload holds (counted when it is dropped)
//   length      u32      payload length in bytes
//   payload     length bytes: one serialized vigil.v1.RuntimeReport
//   trailer     32 bytes SHA-256 of everything before it
// The measured digest is SHA-256(payload): the verifier recomputes it from the payload it
// receives, so the header is bookkeeping the trailer protects against torn or rotted files,
// not against an attacker (who could recompute the trailer, but not the measured record).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vigil::node::spool {

/// The log_recnum of a batch no measurement recorded.
inline constexpr uint64_t kUnmeasured = UINT64_MAX;
/// Header bytes before the payload, and trailer bytes after it.
inline constexpr size_t kBatchHeaderBytes = 40;
inline constexpr size_t kBatchTrailerBytes = 32;
/// The largest payload a batch may hold.
inline constexpr size_t kMaxBatchPayloadBytes = 64u << 20;

/// One spooled batch.
struct Batch {
  uint64_t sequence = 0;
  int64_t written_unix_nano = 0;
  uint64_t log_recnum = kUnmeasured;
  uint32_t events = 0;
  std::string payload;

  friend bool operator==(const Batch&, const Batch&) = default;
};

/// The file contents for `batch`. `batch.payload` must not exceed kMaxBatchPayloadBytes.
std::string EncodeBatch(const Batch& batch);

/// Parses a batch file. Untrusted input: a short, torn, oversized or altered file is
/// DataLoss with what is wrong; never crashes.
absl::StatusOr<Batch> DecodeBatch(std::string_view bytes);

/// "00000000000000000042.batch" for sequence 42: names sort in sequence order.
std::string BatchFileName(uint64_t sequence);

/// The sequence a batch file name stands for; nullopt for any other name.
std::optional<uint64_t> ParseBatchFileName(std::string_view name);

}  // namespace vigil::node::spool
