// libFuzzer harness for the node's spool format (node/spool/batch_format.h: batch files, which
// the node reads back after a restart from a directory anything with root could have edited;
// node/spool/spool.h: the spool.state counters file). Must never crash or trip a sanitizer.
// Checks: an accepted batch encodes back to exactly the input bytes, within the payload
// limit; a refused one is DataLoss; a batch file name that parses is the name of its
// sequence; an accepted state file serializes to text that parses back to the same state.
//
// Input: the bytes of a batch file (seeds are files EncodeBatch wrote), also read as a
// spool.state text and, up to its first newline, as a file name.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "node/spool/batch_format.h"
#include "node/spool/spool.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using ::vigil::fuzz::Check;
namespace spool = ::vigil::node::spool;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<spool::Batch> batch = spool::DecodeBatch(bytes);
  if (batch.ok()) {
    Check(batch->payload.size() <= spool::kMaxBatchPayloadBytes);
    Check(spool::EncodeBatch(*batch) == bytes);
  } else {
    Check(batch.status().code() == absl::StatusCode::kDataLoss);
  }

  const std::string_view name = bytes.substr(0, bytes.find('\n'));
  if (std::optional<uint64_t> sequence = spool::ParseBatchFileName(name)) {
    Check(spool::BatchFileName(*sequence) == name);
  }

  absl::StatusOr<spool::SpoolState> state = spool::ParseSpoolState(bytes);
  if (state.ok()) {
    absl::StatusOr<spool::SpoolState> again =
        spool::ParseSpoolState(spool::SerializeSpoolState(*state));
    Check(again.ok() && again->counters == state->counters &&
          again->next_sequence == state->next_sequence);
  } else {
    Check(state.status().code() == absl::StatusCode::kInvalidArgument);
  }
  return 0;
}
