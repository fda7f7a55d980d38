#pragma once

// Verdicts about nodes whose TPM is simulated (enrolled with an EK certificate of the
// --accept-simulated-tpm CA: the fleet simulator's software keys). Their quotes are checked
// exactly like a TPM's, but nothing vouches that a TPM holds the keys, so their results must
// never read as a hardware-backed node's.

#include <functional>
#include <string>

#include "verifier/node_registry.h"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// Marks `verdict` as one about a simulated TPM: Verdict.tpm_simulated, no hardware claim
/// (trust_vector.hardware = 0, whatever the appraisal put there) and a note in the detail. The
/// EAR (claim vigil.tpm-simulated, no hardware claim) and the OSCAL observation follow from
/// these fields.
void MarkTpmSimulated(v1::Verdict& verdict);

/// Whether a node is enrolled with a simulated TPM; empty: none is.
using IsTpmSimulated = std::function<bool(const std::string& node_id)>;

/// IsTpmSimulated from the node registry's bindings (`registry` must outlive it).
IsTpmSimulated TpmSimulatedIn(const NodeRegistry* registry);

}  // namespace vigil::verifier
