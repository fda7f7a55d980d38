#include "node/agent/ima_status.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/escape.h"
#include "common/ima_log.h"
#include "node/procfs/procfs.h"

namespace vigil::node {

v1::ImaStatus ReadImaStatus(const std::string& binary_path, const std::string& securityfs) {
  v1::ImaStatus status;
  const std::string dir = securityfs + "/ima";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    status.set_absent_reason(absl::StrCat(
        "no ", dir, ": kernel without IMA (CONFIG_IMA) or securityfs not mounted at ", securityfs));
    return status;
  }
  const std::string list = dir + "/ascii_runtime_measurements";
  absl::StatusOr<std::string> text = procfs::ReadFile(list);
  if (!text.ok()) {
    status.set_absent_reason(std::string(text.status().message()));
    return status;
  }
  absl::StatusOr<std::vector<ImaEntry>> entries = ParseImaAsciiLog(*text);
  if (!entries.ok()) {
    status.set_absent_reason(absl::StrCat(list, ": ", entries.status().message()));
    return status;
  }
  status.set_present(true);
  if (std::optional<ImaEntry> e = LastImaEntryFor(*entries, binary_path)) {
    status.set_node_binary_entry(EscapeUntrusted(e->line));
  }
  return status;
}

}  // namespace vigil::node
