#pragma once

// Reads the simulated fleet back through the verifier's Fleet API (as an operator): that every
// node is enrolled as a simulated TPM and that every stored verdict says so, in the verdict,
// its trust vector and its EAR token.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/pki.h"
#include "nlohmann/json.hpp"

namespace vigil::fleetsim {

struct FleetCheck {
  uint64_t nodes_listed = 0;
  uint64_t nodes_ek_trust_simulated = 0;
  uint64_t nodes_checked = 0;
  uint64_t verdicts = 0;
  uint64_t verdicts_tpm_simulated = 0;
  /// Verdicts with a hardware claim (must be 0 for simulated nodes).
  uint64_t verdicts_with_hardware_claim = 0;
  /// EAR tokens whose claims carry vigil.tpm-simulated: true and no hardware claim.
  uint64_t ear_tokens = 0;
  uint64_t ear_tokens_tpm_simulated = 0;
  /// Verdicts by TrustStatus name.
  std::map<std::string, uint64_t> statuses;
  nlohmann::json ToJson() const;
};

/// Checks `node_ids` (at most `max_nodes` of them, in order) at the verifier's Fleet API at
/// `address`, with the operator identity `identity` and the Vigil CA `ca_pem`.
absl::StatusOr<FleetCheck> CheckFleet(const std::string& address, const std::string& ca_pem,
                                      const CertAndKey& identity,
                                      const std::vector<std::string>& node_ids, size_t max_nodes);

}  // namespace vigil::fleetsim
