#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "common/tpm/software_ak.h"
#include "verifier/node_registry.h"

namespace vigil::testing {

/// A node registry (in memory, or in the database at `db_path`) in which `node_id` is
/// enrolled with a fresh software AK.
inline absl::StatusOr<std::unique_ptr<verifier::NodeRegistry>> RegistryWithNode(
    const std::string& node_id, const std::string& db_path = ":memory:") {
  ASSIGN_OR_RETURN(std::unique_ptr<verifier::NodeRegistry> registry,
                   verifier::NodeRegistry::Open(db_path));
  ASSIGN_OR_RETURN(tpm::SoftwareAk ak, tpm::SoftwareAk::Create());
  RETURN_IF_ERROR(registry->Bind({node_id, "ek", ak.tpm2b_public, ak.name, absl::Now()}));
  return registry;
}

}  // namespace vigil::testing
