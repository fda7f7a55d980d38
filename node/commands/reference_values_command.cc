#include "node/commands/reference_values_command.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "node/agent/node_runner.h"

namespace vigil::node {

absl::Status WriteReferenceValues(const NodeConfig& config, const std::string& out_path,
                                  std::ostream& out) {
  ASSIGN_OR_RETURN(std::vector<ReferenceValue> values, ComputeReferenceValues(config));
  const std::string text = RenderReferenceValues(values);
  if (out_path.empty()) {
    out << text;
    if (!out.flush()) return absl::UnavailableError("cannot write standard output");
    return absl::OkStatus();
  }
  std::ofstream file(out_path, std::ios::binary | std::ios::trunc);
  file << text;
  file.close();
  if (!file) return absl::UnavailableError(absl::StrCat("cannot write ", out_path));
  return absl::OkStatus();
}

}  // namespace vigil::node
