#include "verifier/simulated_tpm.h"

#include "absl/strings/str_cat.h"

namespace vigil::verifier {

void MarkTpmSimulated(v1::Verdict& verdict) {
  verdict.set_tpm_simulated(true);
  // No claim, rather than affirming or contraindicating: a software key proves nothing about
  // hardware either way.
  verdict.mutable_trust_vector()->set_hardware(0);
  absl::StrAppend(verdict.mutable_detail(), verdict.detail().empty() ? "" : "; ",
                  "simulated TPM (--accept-simulated-tpm): no hardware claim");
}

IsTpmSimulated TpmSimulatedIn(const NodeRegistry* registry) {
  return [registry](const std::string& node_id) {
    std::shared_ptr<NodeState> state = registry->Find(node_id);
    return state != nullptr && state->node().tpm_simulated;
  };
}

}  // namespace vigil::verifier
