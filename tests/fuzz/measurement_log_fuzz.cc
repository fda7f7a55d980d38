// libFuzzer harness for the node's measurement log (vigil-cel-json/1, common/measurement_log.h;
// the node reads it back at start, vigilctl reads one an operator hands it). Must never crash
// or trip a sanitizer. Checks: every accepted log serializes to text that parses back to the
// same log; records are numbered 0, 1, 2, ... with PCRs 0..23; replaying the records and
// their wire form gives the same PCR values; the current epoch starts inside the log.
//
// Input: the JSON text, as is (seeds are logs written by SerializeMeasurementLog).

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "common/measurement_log.h"
#include "tests/fuzz/fuzz_check.h"
#include "vigil/v1/runtime.pb.h"

namespace {

using ::vigil::fuzz::Check;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<vigil::MeasurementLog> log = vigil::ParseMeasurementLog(json);
  if (!log.ok()) {
    Check(log.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  google::protobuf::RepeatedPtrField<vigil::v1::MeasurementLogEntry> wire;
  for (size_t i = 0; i < log->records.size(); ++i) {
    const vigil::MeasurementRecord& r = log->records[i];
    Check(r.recnum == i && r.pcr <= 23);
    *wire.Add() = vigil::ToProto(r);
  }
  Check(vigil::CurrentEpochStart(log->records) <= log->records.size());

  absl::StatusOr<vigil::MeasurementLog> again =
      vigil::ParseMeasurementLog(vigil::SerializeMeasurementLog(*log));
  Check(again.ok() && *again == *log);

  for (uint32_t pcr : {0u, 15u, 23u}) {
    absl::StatusOr<vigil::Sha256Digest> replayed = vigil::ReplayPcr(wire, pcr);
    Check(replayed.ok() && *replayed == vigil::ReplayPcr(log->records, pcr));
  }
  return 0;
}
