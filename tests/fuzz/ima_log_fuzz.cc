// libFuzzer harness for the kernel's IMA ASCII measurement list (common/ima_log.h), which
// the node reads and the verifier compares with its measurement log. Must never crash or trip
// a sanitizer. Checks: each accepted entry re-parses from its own line to the same entry, has
// a PCR 0..23, a non-empty path and the input's line; the list's last entry for a path is the
// last such entry.
//
// Input: the list, as is (seeds are lines of the ima, ima-ng and ima-sig templates).

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "common/ima_log.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using ::vigil::fuzz::Check;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<vigil::ImaEntry>> entries = vigil::ParseImaAsciiLog(text);
  if (!entries.ok()) {
    Check(entries.status().code() == absl::StatusCode::kInvalidArgument);
    Check(absl::StartsWith(entries.status().message(), "line "));
    return 0;
  }
  for (const vigil::ImaEntry& e : *entries) {
    Check(e.pcr <= 23 && !e.path.empty() && !e.line.empty());
    Check(e.line.find('\n') == std::string::npos && absl::StrContains(text, e.line));
    absl::StatusOr<vigil::ImaEntry> again = vigil::ParseImaLine(e.line);
    Check(again.ok() && *again == e);
  }
  if (!entries->empty()) {
    const std::string& path = entries->back().path;
    std::optional<vigil::ImaEntry> last = vigil::LastImaEntryFor(*entries, path);
    Check(last.has_value() && *last == entries->back());
  }
  return 0;
}
