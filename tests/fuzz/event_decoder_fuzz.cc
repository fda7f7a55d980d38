// libFuzzer harness for the probe event decoder (node/probes/event_decoder.h): records from
// the BPF ring buffer, whose strings (comm, paths, socket addresses) the watched processes
// choose. Must never crash or trip a sanitizer. Checks: a record of any size other than
// struct vigil_event's is refused; a decoded event has a known, non-zero kind, escaped comm
// and path (printable ASCII only) and a port only with an address; its one-line rendering is
// one line.
//
// Input: the record; it is decoded as is, then cut or zero-padded to sizeof(vigil_event)
// and decoded again. Seeds are records the probes emit (tests/fuzz/corpus/event_decoder/).

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "bpf/events.h"
#include "node/probes/event_decoder.h"
#include "tests/fuzz/fuzz_check.h"
#include "vigil/v1/runtime.pb.h"

namespace {

using ::vigil::fuzz::Check;
using ::vigil::fuzz::PrintableAscii;

// CLOCK_REALTIME - CLOCK_BOOTTIME on a machine booted in December 2026: fixed, so that
// runs are reproducible.
constexpr int64_t kBootToWallNs = 1796515200LL * 1000000000LL;

void Decode(std::string_view record) {
  absl::StatusOr<vigil::v1::RuntimeEvent> event = vigil::node::DecodeEvent(record, kBootToWallNs);
  if (!event.ok()) {
    Check(event.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  Check(record.size() == sizeof(vigil_event));
  Check(vigil::v1::EventKind_IsValid(event->kind()) && event->kind() != 0);
  Check(PrintableAscii(event->comm()) && PrintableAscii(event->path()));
  Check(event->port() == 0 || !event->address().empty());
  const std::string line = vigil::node::FormatEvent(*event);
  Check(!line.empty() && line.find('\n') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string record(reinterpret_cast<const char*>(data), size);
  Decode(record);
  if (size != sizeof(vigil_event)) {
    record.resize(sizeof(vigil_event), '\0');
    Decode(record);
  }
  return 0;
}
