#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "node/agent/config.h"

namespace vigil::node {

/// `vigil-node reference-values`: computes the measurements a genuine start of this binary
/// with `config` makes (ComputeReferenceValues) and writes them as the verifier's
/// --reference-values file (RenderReferenceValues) to the file `out_path` (replaced), or to
/// `out` when `out_path` is empty. Fails as ComputeReferenceValues does, or when the output
/// cannot be written.
absl::Status WriteReferenceValues(const NodeConfig& config, const std::string& out_path,
                                  std::ostream& out);

}  // namespace vigil::node
